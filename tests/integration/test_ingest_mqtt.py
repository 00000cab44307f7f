"""Ingest over a real Mosquitto: persistent session, QoS 1, acknowledge only after commit."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import orjson
import paho.mqtt.client as mqtt
import psycopg
import pytest
from prometheus_client import CollectorRegistry

from ingest import pipeline as pipe
from ingest.mqtt import Message, MqttEndpoint, MqttSource, make_client
from storage import assignments

pytestmark = pytest.mark.integration


def _publish(url: str, device: str, n: int, start: datetime) -> None:
    endpoint = MqttEndpoint.from_url(url)
    client = make_client(endpoint, f"pub-{device}")
    client.connect(endpoint.host, endpoint.port)
    client.loop_start()
    try:
        infos = []
        for i in range(n):
            ts = (start + timedelta(minutes=i)).isoformat()
            infos.append(
                client.publish(
                    f"wardwatch/v1/devices/{device}/vitals",
                    orjson.dumps([{"ts": ts, "heart_rate": 60 + i % 30}]),
                    qos=1,
                )
            )
        for info in infos:
            info.wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()


def _drain(source: MqttSource, want: int, timeout_s: float) -> list[Message]:
    got: list[Message] = []
    stop = threading.Event()
    timer = threading.Timer(timeout_s, stop.set)
    timer.start()
    try:
        for batch in source.batches(max_batch=100, max_wait_s=0.05, stop=stop):
            got += batch
            if len(got) >= want:
                stop.set()
    finally:
        timer.cancel()
    return got


def test_unacknowledged_messages_are_redelivered_and_stored_once(
    mqtt_url: str, database_url: str, uid: str
) -> None:
    device = f"dev-{uid}"
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    with psycopg.connect(database_url) as conn:
        assignments.enrol(
            conn,
            device_id=device,
            patient_id=f"pt-{uid}",
            ward="w",
            valid_from=start - timedelta(hours=1),
        )
    endpoint = MqttEndpoint.from_url(mqtt_url)
    client_id = f"ingest-{uid}"

    # First run: the session is created, 50 messages arrive; the worker "crashes" before commit.
    first = MqttSource(endpoint, client_id=client_id)
    first.start()
    assert first.connected.wait(10)
    _publish(mqtt_url, device, 50, start)
    seen = _drain(first, 50, 10)
    assert len(seen) == 50
    first.stop()  # nothing acknowledged

    # Second run on the same persistent session: the broker redelivers; we commit and ack.
    registry = CollectorRegistry()
    p = pipe.Pipeline(
        database_url,
        settings=pipe.Settings(),
        metrics=pipe.PipelineMetrics.create(registry),
        clock=lambda: datetime.now(UTC),
    )
    second = MqttSource(endpoint, client_id=client_id)
    second.start()
    try:
        redelivered = _drain(second, 50, 10)
        assert len(redelivered) == 50
        result = p.process([(m.topic, m.payload, m.received_us) for m in redelivered])
        assert result.stored == 50
        assert second.ack(redelivered) == 50
    finally:
        time.sleep(0.3)  # let paho flush the PUBACKs before disconnecting
        second.stop()
        p.close()

    # Third run: nothing left to redeliver, because everything was acknowledged after commit.
    third = MqttSource(endpoint, client_id=client_id)
    third.start()
    try:
        assert third.connected.wait(10)
        assert _drain(third, 1, 2) == []
    finally:
        third.stop()
    with psycopg.connect(database_url) as conn:
        assert conn.execute("select count(*) from readings").fetchone() == (50,)


def test_endpoint_parsing_names_the_problem() -> None:
    e = MqttEndpoint.from_url("mqtts://dev%40ward:s3cret@broker.nhs.example:8884?ca=/etc/ca.pem")
    assert (e.host, e.port, e.username, e.password, e.tls, e.ca_file) == (
        "broker.nhs.example",
        8884,
        "dev@ward",
        "s3cret",
        True,
        "/etc/ca.pem",
    )
    assert e.protocol == mqtt.MQTTv5
    assert MqttEndpoint.from_url("mqtt://localhost").port == 1883
    for bad, words in [
        ("http://x", "mqtt://"),
        ("mqtt://", "no host"),
        ("mqtt://h:99999", "port"),
        ("mqtt://h?protocol=4", "protocol"),
    ]:
        with pytest.raises(ValueError, match=words):
            MqttEndpoint.from_url(bad)
