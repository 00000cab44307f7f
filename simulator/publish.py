"""The simulator's one paho-mqtt adapter: publish a simulated ward, and subscribe for recording.

Paho runs its own network thread (``loop_start``) and its own reconnects; callbacks only set
events or hand messages to a bounded queue. Every socket gets TCP_NODELAY, since paho leaves
Nagle's algorithm on and small messages would otherwise wait 40-60 ms in the kernel.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from types import TracebackType
from typing import Any, Self

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ingest.mqtt import MqttEndpoint, make_client
from simulator.stream import check_accel_hz, check_ecg_hz, check_ppg_hz, stream
from simulator.timeline import DEFAULT_HISTORY, Timeline
from simulator.ward import SimPatient

log = logging.getLogger(__name__)

_KEEPALIVE_S = 30


class BrokerError(Exception):
    """The broker could not be reached, refused us, or did not acknowledge in time."""


def _set_nodelay(_client: mqtt.Client, _userdata: Any, sock: Any) -> None:
    if isinstance(sock, socket.socket):  # SSLSocket included; a websocket wrapper is not
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _Connection:
    """A paho client connected to one broker, its network loop in a background thread."""

    def __init__(
        self,
        mqtt_url: str,
        *,
        timeout_s: float,
        on_connected: Callable[[mqtt.Client], None] | None = None,
    ) -> None:
        try:
            self.address = MqttEndpoint.from_url(mqtt_url)
        except ValueError as error:
            raise BrokerError(f"broker URL {error}") from error
        self.timeout_s = timeout_s
        self._on_connected = on_connected
        client = make_client(self.address)
        client.on_socket_open = _set_nodelay
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        self.client = client
        self.connected = threading.Event()
        self._refused: ReasonCode | None = None

    def open(self) -> None:
        """Connect, and wait for the broker to accept us."""
        try:
            self.client.connect(self.address.host, self.address.port, keepalive=_KEEPALIVE_S)
        except OSError as error:
            raise BrokerError(f"cannot reach {self.address}: {error}") from error
        self.client.loop_start()
        if not self.connected.wait(self.timeout_s) or self._refused is not None:
            self.close()
            reason = "no answer" if self._refused is None else str(self._refused)
            raise BrokerError(f"broker {self.address} did not accept us: {reason}")
        log.info("connected to broker %s:%d", self.address.host, self.address.port)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self._refused = reason_code
        elif self._on_connected is not None:
            self._on_connected(client)  # e.g. subscribe, on every (re)connection
        self.connected.set()

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        self.connected.clear()
        if reason_code.is_failure:
            log.warning("disconnected from broker %s: %s", self.address.host, reason_code)


class Publisher:
    """Publish at QoS 1, blocking while ``max_inflight`` messages await their PUBACK.

    That window is the backpressure: paho itself would queue without bound. Use as a context
    manager; leaving it waits (at most ``timeout_s``) for outstanding acknowledgements, then
    disconnects cleanly.
    """

    def __init__(self, mqtt_url: str, *, max_inflight: int = 100, timeout_s: float = 10.0) -> None:
        self._connection = _Connection(mqtt_url, timeout_s=timeout_s)
        self._client = self._connection.client
        self._client.max_inflight_messages_set(max_inflight)
        self._max_inflight = max_inflight
        self._window: deque[mqtt.MQTTMessageInfo] = deque()

    def __enter__(self) -> Self:
        self._connection.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                self.flush()
        finally:
            self._connection.close()

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish one message; block while the in-flight window is full."""
        if not self._connection.connected.wait(self._connection.timeout_s):
            raise BrokerError(f"not connected to {self._connection.address.host}")
        info = self._client.publish(topic, payload, qos=1)
        if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
            return  # lost the connection just now: paho keeps the message and resends it
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise BrokerError(f"publish failed: {mqtt.error_string(info.rc)}")
        self._window.append(info)
        while self._window and self._window[0].is_published():
            self._window.popleft()
        while len(self._window) >= self._max_inflight:
            self._await(self._window.popleft())

    def flush(self) -> None:
        """Wait (``timeout_s`` at most in all) until everything published so far is acknowledged."""
        deadline = time.monotonic() + self._connection.timeout_s
        while self._window:
            self._await(self._window.popleft(), deadline)

    def _await(self, info: mqtt.MQTTMessageInfo, deadline: float | None = None) -> None:
        if deadline is None:
            deadline = time.monotonic() + self._connection.timeout_s
        try:
            info.wait_for_publish(max(deadline - time.monotonic(), 0.0))
        except RuntimeError as error:
            raise BrokerError(f"publish failed: {error}") from error
        if not info.is_published():
            raise BrokerError(f"no acknowledgement within {self._connection.timeout_s} s")


class Subscriber:
    """Subscribe at QoS 1 (again after each reconnect) and queue what arrives, boundedly.

    When the queue is full paho's thread waits, which stops reading the socket and pushes back
    on the broker. ``subscribed`` is set once the broker has acknowledged the subscription.
    """

    def __init__(
        self,
        mqtt_url: str,
        topic_filter: str,
        *,
        queue_size: int = 10_000,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.topic_filter = topic_filter
        self.subscribed = threading.Event()
        self._clock = clock
        self._queue: queue.Queue[tuple[str, bytes, float]] = queue.Queue(queue_size)
        self._closing = threading.Event()
        self._connection = _Connection(mqtt_url, timeout_s=timeout_s, on_connected=self._subscribe)
        self._connection.client.on_subscribe = self._on_subscribe
        self._connection.client.on_message = self._on_message
        self._refused: ReasonCode | None = None

    def __enter__(self) -> Self:
        self._connection.open()
        timeout_s = self._connection.timeout_s
        if not self.subscribed.wait(timeout_s) or self._refused is not None:
            self._connection.close()
            raise BrokerError(f"subscription to {self.topic_filter!r} refused: {self._refused}")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closing.set()
        self._connection.close()

    def get(self, timeout_s: float) -> tuple[str, bytes, float] | None:
        """The next ``(topic, payload, received_at)``, or None if none comes within ``timeout_s``.

        ``received_at`` is the injected clock's reading when paho handed the message over.
        """
        try:
            return self._queue.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def _subscribe(self, client: mqtt.Client) -> None:
        client.subscribe(self.topic_filter, qos=1)

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _mid: int,
        reason_codes: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        failed = [rc for rc in reason_codes if rc.is_failure]
        if failed:
            self._refused = failed[0]
        self.subscribed.set()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        item = (message.topic, bytes(message.payload), self._clock())
        while not self._closing.is_set():
            try:
                self._queue.put(item, timeout=0.5)
            except queue.Full:
                continue
            return


@dataclass(frozen=True, slots=True)
class SimulationStats:
    """What a simulation run published, and the span of event time it covered.

    ``messages`` counts every message, waveform chunks included; ``samples`` the vital-sign
    samples; ``accel_messages`` / ``accel_samples``, ``ppg_messages`` / ``ppg_samples`` and
    ``ecg_messages`` / ``ecg_samples`` the waveforms' chunks and samples.
    """

    messages: int
    samples: int
    event_start: datetime
    event_end: datetime
    accel_messages: int = 0
    accel_samples: int = 0
    ppg_messages: int = 0
    ppg_samples: int = 0
    ecg_messages: int = 0
    ecg_samples: int = 0


def simulate(
    patients: Sequence[SimPatient],
    *,
    mqtt_url: str,
    speed: float,
    minutes: float | None,
    history: timedelta = DEFAULT_HISTORY,
    seed: int = 0,
    stop: threading.Event,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    rr_intervals: bool = False,
    tz: tzinfo | None = None,
    accel_hz: float | None = None,
    accel_patients: int | None = None,
    ppg_hz: float | None = None,
    ppg_patients: int | None = None,
    ecg_hz: float | None = None,
    ecg_patients: int | None = None,
) -> SimulationStats:
    """Publish the patients' devices to the broker, paced by a :class:`Timeline`, until done.

    Runs ``minutes`` of wall time (None: until ``stop`` is set) at ``speed`` times real time;
    see ``simulator.timeline`` for how event time is kept behind the wall clock, and
    ``simulator.stream`` for how samples become messages. With ``accel_hz`` the first
    ``accel_patients`` devices (None: all) also publish their raw wrist accelerometer; with
    ``ppg_hz`` the first ``ppg_patients`` stream their PPG instead of a heart and breathing rate;
    with ``ecg_hz`` the next ``ecg_patients`` wear a patch streaming its ECG, not a heart rate.
    """
    if accel_hz is not None:
        check_accel_hz(accel_hz)  # before connecting: a bad rate is the caller's mistake
    if ppg_hz is not None:
        check_ppg_hz(ppg_hz)
    if ecg_hz is not None:
        check_ecg_hz(ecg_hz)
    timeline = Timeline.plan(now_s=clock(), speed=speed, minutes=minutes, history=history)
    messages = samples = 0
    chunks = {"accel": [0, 0], "ppg": [0, 0], "ecg": [0, 0]}  # kind: [messages, samples]
    with Publisher(mqtt_url) as publisher:
        feed = stream(
            patients,
            timeline=timeline,
            seed=seed,
            stop=stop,
            clock=clock,
            sleep=sleep,
            tz=tz,
            rr_intervals=rr_intervals,
            accel_hz=accel_hz,
            accel_patients=accel_patients,
            ppg_hz=ppg_hz,
            ppg_patients=ppg_patients,
            ecg_hz=ecg_hz,
            ecg_patients=ecg_patients,
        )
        for message in feed:
            publisher.publish(message.topic, message.payload)
            messages += 1
            samples += message.samples
            for kind, n in (("accel", message.accel_samples), ("ppg", message.ppg_samples),
                            ("ecg", message.ecg_samples)):  # fmt: skip
                if n:
                    chunks[kind][0] += 1
                    chunks[kind][1] += n
    reached = timeline.event_at(clock() - timeline.wall_start_s)
    return SimulationStats(
        messages=messages,
        samples=samples,
        event_start=datetime.fromtimestamp(timeline.event_start_s, UTC),
        event_end=datetime.fromtimestamp(reached, UTC),
        accel_messages=chunks["accel"][0],
        accel_samples=chunks["accel"][1],
        ppg_messages=chunks["ppg"][0],
        ppg_samples=chunks["ppg"][1],
        ecg_messages=chunks["ecg"][0],
        ecg_samples=chunks["ecg"][1],
    )
