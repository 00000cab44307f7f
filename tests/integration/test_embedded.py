"""The embedded services start, serve, and stop without leaving a process behind."""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest

from ingest.mqtt import MqttEndpoint, make_client
from wardwatch import embedded

pytestmark = pytest.mark.integration


def _roundtrip(url: str) -> bytes:
    endpoint = MqttEndpoint.from_url(url)
    got: list[bytes] = []
    ready, arrived = threading.Event(), threading.Event()
    sub = make_client(endpoint, "rt-sub")
    # Ready means SUBACK received: publishing after CONNACK alone races the subscription.
    sub.on_connect = lambda c, *_: c.subscribe("rt/#", qos=1)
    sub.on_subscribe = lambda *_: ready.set()
    sub.on_message = lambda _c, _u, m: (got.append(m.payload), arrived.set())
    sub.connect(endpoint.host, endpoint.port)
    sub.loop_start()
    try:
        assert ready.wait(10), "subscription not granted"
        pub = make_client(endpoint, "rt-pub")
        pub.connect(endpoint.host, endpoint.port)
        pub.loop_start()
        info = pub.publish("rt/x", b"hello", qos=1)
        info.wait_for_publish(10)
        pub.loop_stop()
        pub.disconnect()
        assert arrived.wait(10), "message did not arrive"
    finally:
        sub.loop_stop()
        sub.disconnect()
    return got[0]


@pytest.mark.parametrize("prefer_installed", [True, False], ids=["installed", "pip-fallback"])
def test_services_start_serve_and_stop(prefer_installed: bool) -> None:
    if prefer_installed and not (embedded.mosquitto_binary() and embedded.postgres_bindir()):
        pytest.fail("this machine should have mosquitto and PostgreSQL installed")
    base = Path(tempfile.mkdtemp(prefix="wardwatch-emb-", dir="/tmp"))
    try:
        with embedded.services(base, prefer_installed=prefer_installed) as urls:
            expected = ("mosquitto", "postgresql") if prefer_installed else ("amqtt", "pgserver")
            assert (urls.mqtt_kind, urls.database_kind) == expected
            with psycopg.connect(urls.database_url) as conn:
                row = conn.execute("select current_database()").fetchone()
            assert row == ("wardwatch",)
            assert _roundtrip(urls.mqtt_url) == b"hello"
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(urls.database_url, connect_timeout=2)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_amqtt_url_selects_mqtt_311() -> None:
    # amqtt speaks MQTT 3.1.1 only; the URL it hands out says so, and the client follows.
    with embedded.amqtt_broker() as url:
        assert MqttEndpoint.from_url(url).protocol == mqtt.MQTTv311
