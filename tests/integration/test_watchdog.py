"""The watchdog against the real service: it sees a stall and says so through its own channel.

The service runs on the suite's Mosquitto and PostgreSQL; the watchdog is a thread here (in
production its own process) that reads the service's /metrics and sends to a real HTTP receiver,
a channel that needs neither the broker nor the database.
"""

from __future__ import annotations

import http.server
import json
import queue
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from alerts.notify import WebhookChannel
from alerts.watchdog import Watch
from ingest.mqtt import MqttEndpoint
from storage import assignments, migrate
from wardwatch import watchdog
from wardwatch.service import Options, running
from wardwatch.settings import Settings

pytestmark = pytest.mark.integration


class Receiver(http.server.BaseHTTPRequestHandler):
    got: queue.Queue[dict[str, object]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.got.put(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, queue.Queue[dict[str, object]]]]:
    got: queue.Queue[dict[str, object]] = queue.Queue()
    handler = type("Handler", (Receiver,), {"got": got})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/page", got
    server.shutdown()
    server.server_close()


def _next_text(got: queue.Queue[dict[str, object]], timeout: float = 20.0) -> str:
    return str(got.get(timeout=timeout)["text"])


def test_the_watchdog_alarms_through_its_own_channel_and_gives_the_all_clear(
    mqtt_url: str,
    database_url: str,
    uid: str,
    receiver: tuple[str, queue.Queue[dict[str, object]]],
) -> None:
    url, got = receiver
    device = f"dev-{uid}"
    migrate.upgrade(database_url)
    with psycopg.connect(database_url) as conn:
        assignments.enrol(
            conn, device_id=device, patient_id=f"pt-{uid}", ward="ward-w",
            valid_from=datetime.now(UTC) - timedelta(hours=1),
        )  # fmt: skip
    options = Options(client_id=f"ingest-{uid}", silence_tick_s=0.2, dispatch_tick_s=0.2)
    settings = Settings(mqtt_url, database_url, "127.0.0.1", 0)
    stop = threading.Event()
    with running(settings, options) as svc:
        dog = threading.Thread(
            target=watchdog.run,
            args=(f"{svc.dashboard_url}/metrics", [WebhookChannel(url)]),
            kwargs={
                "interval": timedelta(seconds=0.2),
                "no_batch_after": timedelta(seconds=1),
                "watch": Watch(for_=timedelta(seconds=0.5)),
                "stop": stop,
            },
            daemon=True,
        )
        dog.start()
        # An enrolled device and nothing processed since the start: a stall.
        stalled = _next_text(got)
        assert stalled.startswith("wardwatch stalled: no batch processed since start while 1")
        assert "patient alerts may not be reaching anyone" in stalled

        # The device speaks; ingest commits a batch; the watchdog gives the all-clear.
        endpoint = MqttEndpoint.from_url(mqtt_url)
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=endpoint.protocol)
        client.connect(endpoint.host, endpoint.port)
        client.loop_start()
        sample = {"ts": datetime.now(UTC).isoformat(), "heart_rate": 72}
        client.publish(f"wardwatch/v1/devices/{device}/vitals", json.dumps([sample]), qos=1)
        assert _next_text(got).startswith("wardwatch recovered after")
        client.loop_stop()
        client.disconnect()
    # The service is gone (as if it had died): the watchdog, a separate process, still alarms.
    down = _next_text(got)
    assert down.startswith("wardwatch stalled: wardwatch not answering (")
    stop.set()
    dog.join(5)
    assert not dog.is_alive()
