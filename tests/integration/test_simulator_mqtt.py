"""The simulator against a real Mosquitto started by this module on a free port."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from simulator.publish import BrokerError, Publisher, simulate
from simulator.recording import iter_recording, record, replay
from simulator.stream import topic_for
from simulator.ward import make_ward
from wardwatch.embedded import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def broker_url(mqtt_url: str) -> str:
    """The suite's Mosquitto (tests/conftest.py)."""
    return mqtt_url


class Collector:
    """A plain paho subscriber, independent of the code under test, keeping what arrives."""

    def __init__(self, url: str, topic_filter: str) -> None:
        self.messages: list[tuple[str, bytes, float]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        host, port = url.removeprefix("mqtt://").split(":")
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5
        )
        self._client.on_connect = lambda c, *_: c.subscribe(topic_filter, qos=1)
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.on_message = self._on_message
        self._client.connect(host, int(port))
        self._client.loop_start()
        assert self._subscribed.wait(5), "no SUBACK"

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), time.time()))

    def wait_for(self, count: int, timeout_s: float = 10) -> list[tuple[str, bytes, float]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and len(self.messages) < count:
            time.sleep(0.02)
        time.sleep(0.2)  # and nothing more
        with self._lock:
            return list(self.messages)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def test_simulating_three_patients_publishes_every_sample_once(broker_url: str) -> None:
    patients = make_ward(3, seed=5, first_number=1001)
    collector = Collector(broker_url, "wardwatch/v1/devices/+/vitals")
    try:
        started = time.time()
        stats = simulate(
            patients, mqtt_url=broker_url, speed=600, minutes=0.05, seed=1, stop=threading.Event()
        )
        took = time.time() - started
        received = collector.wait_for(stats.messages)
    finally:
        collector.close()

    assert 2.5 < took < 6  # 3 s of wall time, 30 simulated minutes
    assert 3 * 29 <= stats.samples <= 3 * 31
    assert len(received) == stats.messages
    devices = {topic_for(p.device_id) for p in patients}
    samples = 0
    for topic, payload, received_at in received:
        assert topic in devices
        batch = orjson.loads(payload)
        assert isinstance(batch, list)
        assert 1 <= len(batch) <= 60
        for sample in batch:
            assert datetime.fromisoformat(sample["ts"]).timestamp() <= received_at
            assert isinstance(sample["worn"], bool)
        samples += len(batch)
    assert samples == stats.samples
    assert {topic for topic, _, _ in received} == devices


def test_simulate_stops_promptly_when_asked(broker_url: str) -> None:
    stop = threading.Event()
    threading.Timer(2.5, stop.set).start()
    started = time.monotonic()
    stats = simulate(
        make_ward(2, seed=1, first_number=2001),
        mqtt_url=broker_url,
        speed=600,
        minutes=None,
        seed=1,
        stop=stop,
    )
    assert time.monotonic() - started < 3.0
    assert stats.samples >= 2 * 20  # 25 simulated minutes went by, published each second


def test_record_then_replay_keeps_topics_payloads_order_and_pace(
    broker_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "ward.jsonl"
    stop_recording = threading.Event()
    counted: list[int] = []
    recorder = threading.Thread(
        target=lambda: counted.append(record(broker_url, path, stop=stop_recording))
    )
    recorder.start()
    deadline = time.monotonic() + 5
    while not (path.exists() and path.read_bytes().endswith(b"\n")):  # header once subscribed
        assert time.monotonic() < deadline, "recorder never subscribed"
        time.sleep(0.02)

    # About 3 s of traffic: two devices, a message per device each second, plus a binary oddity.
    stats = simulate(
        make_ward(2, seed=9, first_number=3001),
        mqtt_url=broker_url,
        speed=300,
        minutes=0.05,
        seed=2,
        stop=threading.Event(),
    )
    with Publisher(broker_url) as publisher:
        publisher.publish("wardwatch/v1/devices/odd-0001/vitals", b"\xff\xfe not UTF-8")
    time.sleep(0.5)
    stop_recording.set()
    recorder.join(5)
    assert counted == [stats.messages + 1]

    recorded = list(iter_recording(path))
    assert len(recorded) == stats.messages + 1
    assert recorded[-1][1:] == ("wardwatch/v1/devices/odd-0001/vitals", b"\xff\xfe not UTF-8")
    span = recorded[-1][0] - recorded[0][0]
    assert 2.0 < span < 6.0
    assert [t for t, _, _ in recorded] == sorted(t for t, _, _ in recorded)

    # Replayed four times faster: same messages in the same order, in about a quarter the time.
    collector = Collector(broker_url, "wardwatch/v1/devices/+/vitals")
    try:
        started = time.time()
        sent = replay(path, broker_url, speed=4, stop=threading.Event())
        took = time.time() - started
        received = collector.wait_for(len(recorded))
    finally:
        collector.close()
    assert sent == len(recorded)
    assert [(topic, payload) for topic, payload, _ in received] == [
        (topic, payload) for _, topic, payload in recorded
    ]
    assert recorded[-1][0] / 4 - 0.1 <= took <= recorded[-1][0] / 4 + 1.0
    replayed_span = received[-1][2] - received[0][2]
    assert span / 4 * 0.5 < replayed_span < span / 4 + 1.0

    # As fast as possible: no waiting at all.
    collector = Collector(broker_url, "wardwatch/v1/devices/+/vitals")
    try:
        started = time.time()
        assert replay(path, broker_url, speed=0, stop=threading.Event()) == len(recorded)
        assert time.time() - started < span / 4
        assert len(collector.wait_for(len(recorded))) == len(recorded)
    finally:
        collector.close()


def test_an_unreachable_broker_is_a_broker_error() -> None:
    with (
        pytest.raises(BrokerError, match="cannot reach"),
        Publisher(f"mqtt://127.0.0.1:{free_port()}", timeout_s=2),
    ):
        pass
