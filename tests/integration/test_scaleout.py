"""Three ingest workers share one MQTT v5 shared subscription against a real Mosquitto.

Mosquitto deals one device's consecutive messages to different workers, so a patient's readings
are scored by whichever worker holds them, in any order. Afterwards every reading is stored once,
and each patient's latest NEWS2 equals the score of their latest vitals, as one worker would
have computed it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ingest.mqtt import MqttEndpoint, make_client
from signals.news2 import news2
from storage import assignments

pytestmark = pytest.mark.integration

DEVICES = 12
MESSAGES_PER_DEVICE = 60
SAMPLES_PER_MESSAGE = 5


def _vitals(device: int, minute: int) -> dict[str, object]:
    """Deterministic vitals that vary per device and minute (so the last one decides the score)."""
    k = (device * 7 + minute) % 11
    return {"heart_rate": 60 + 8 * k, "resp_rate": 10 + 2 * k, "spo2": 99 - k,
            "temperature": round(36.0 + 0.3 * k, 1)}  # fmt: skip


def _metric(text: str, name: str) -> float:
    return sum(
        s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name
    )


@pytest.fixture
def workers(mqtt_url: str, database_url: str, uid: str) -> Iterator[list[str]]:
    procs = []
    urls: list[str] = []
    env = {**os.environ, "WARDWATCH_MQTT_URL": mqtt_url, "WARDWATCH_DATABASE_URL": database_url}
    try:
        for i in range(3):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "wardwatch", "run", "--http-addr", "127.0.0.1:0",
                 "--client-id", f"ingest-{uid}-{i}", "--share-group", f"g{uid}"],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            ))  # fmt: skip
        for p in procs:
            assert p.stdout is not None
            line = p.stdout.readline()
            found = re.search(r"dashboard at (http://\S+)", line)
            assert found, f"worker did not start: {line!r} {p.stderr.read() if p.stderr else ''}"
            urls.append(found.group(1))
        deadline = time.monotonic() + 20
        for url in urls:
            while _metric(httpx.get(f"{url}/metrics").text, "wardwatch_mqtt_subscribed") != 1:
                assert time.monotonic() < deadline, "a worker never got its subscription"
                time.sleep(0.1)
        yield urls
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            p.communicate()


def test_shared_subscription_stores_once_and_scores_right(
    mqtt_url: str, database_url: str, uid: str, workers: list[str]
) -> None:
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=1)
    with psycopg.connect(database_url) as conn:
        for d in range(DEVICES):
            assignments.enrol(conn, device_id=f"dev-{uid}-{d}", patient_id=f"pt-{uid}-{d}",
                              ward="w", valid_from=start - timedelta(hours=1))  # fmt: skip

    endpoint = MqttEndpoint.from_url(mqtt_url)
    pub = make_client(endpoint, f"pub-{uid}")
    pub.connect(endpoint.host, endpoint.port)
    pub.loop_start()
    expected: set[tuple[str, str]] = set()  # (device, ts) per sample
    try:
        infos = []
        for m in range(MESSAGES_PER_DEVICE):
            for d in range(DEVICES):
                samples = []
                for k in range(SAMPLES_PER_MESSAGE):
                    minute = m * SAMPLES_PER_MESSAGE + k
                    ts = (start + timedelta(minutes=minute)).isoformat()
                    samples.append({"ts": ts, **_vitals(d, minute)})
                    expected.add((f"dev-{uid}-{d}", ts))
                infos.append(pub.publish(f"wardwatch/v1/devices/dev-{uid}-{d}/vitals",
                                         orjson.dumps(samples), qos=1))  # fmt: skip
        for info in infos:
            info.wait_for_publish(30)
    finally:
        pub.loop_stop()
        pub.disconnect()

    want = len(expected) * 4  # four metrics a sample
    deadline = time.monotonic() + 60
    stored = 0
    while stored < want and time.monotonic() < deadline:
        with psycopg.connect(database_url) as conn:
            stored = conn.execute("select count(*) from readings").fetchone()[0]  # type: ignore[index]
        time.sleep(0.3)
    assert stored == want

    # Every worker took part: Mosquitto really split the load.
    batches = [_metric(httpx.get(f"{u}/metrics").text, "wardwatch_ingest_batches_total")
               for u in workers]  # fmt: skip
    assert all(b > 0 for b in batches), batches

    last_minute = MESSAGES_PER_DEVICE * SAMPLES_PER_MESSAGE - 1
    with psycopg.connect(database_url) as conn:
        for d in range(DEVICES):
            row = conn.execute(
                "select total, ts from scores where patient_id = %s order by ts desc limit 1",
                (f"pt-{uid}-{d}",),
            ).fetchone()
            v = _vitals(d, last_minute)
            want_score = news2(resp_rate=v["resp_rate"], spo2=v["spo2"], on_oxygen=None,
                               temperature=v["temperature"], systolic_bp=None,
                               heart_rate=v["heart_rate"], consciousness=None)  # fmt: skip
            assert row == (want_score.total, start + timedelta(minutes=last_minute)), d
        open_per_patient = conn.execute(
            "select patient_id, count(*) from alerts where state <> 'resolved'"
            " group by patient_id having count(*) > 1"
        ).fetchall()
    assert open_per_patient == []
