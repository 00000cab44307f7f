"""The one paho-mqtt adapter of ingest: persistent session, QoS 1, manual acknowledgement.

paho's callbacks only hand messages to a bounded queue; the run loop takes them in batches and
acknowledges each message after its batch has been committed (at-least-once). When the queue is
full the network thread waits, TCP pushes back on the broker, and memory stays bounded.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

log = logging.getLogger(__name__)

VITALS_TOPIC = "wardwatch/v1/devices/+/vitals"
DEVICE_TOPICS = (VITALS_TOPIC, "wardwatch/v1/devices/+/waveform", "wardwatch/v1/devices/+/status")


def subscription(topic: str, share_group: str | None) -> str:
    """The topic filter to subscribe to; with a group, an MQTT v5 shared subscription.

    Workers in one group split the messages between them (Mosquitto deals them out in turn), so
    nothing they do may depend on which worker sees which reading (see docs/scaling.md).
    """
    if share_group is None:
        return topic
    if not share_group or any(c in share_group for c in "/+#"):
        raise ValueError(f"a share group is a plain name without / + #, got {share_group!r}")
    return f"$share/{share_group}/{topic}"


def redact_url(url: str) -> str:
    """The URL with its password replaced by ``***``, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


@dataclass(frozen=True, slots=True)
class MqttEndpoint:
    """Where the broker is and how to talk to it, parsed from ``mqtt://`` or ``mqtts://`` URLs.

    ``?protocol=3.1.1`` selects MQTT 3.1.1 for brokers without v5 (the embedded amqtt fallback).
    """

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5
    ca_file: str | None = None

    @classmethod
    def from_url(cls, url: str) -> MqttEndpoint:
        """Parse a broker URL; errors quote it with any password masked."""
        parts = urlsplit(url)
        shown = redact_url(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError(f"must start with mqtt:// or mqtts://, got {shown!r}")
        if not parts.hostname:
            raise ValueError(f"has no host: {shown!r}")
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"has an invalid port: {shown!r}") from exc
        query = parse_qs(parts.query)
        proto = query.get("protocol", ["5"])[0]
        if proto not in ("5", "3.1.1"):
            raise ValueError(f"protocol must be 5 or 3.1.1, got {proto!r}")
        tls = parts.scheme == "mqtts"
        return cls(
            host=parts.hostname,
            port=port or (8883 if tls else 1883),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
            protocol=MQTTProtocolVersion.MQTTv5 if proto == "5" else MQTTProtocolVersion.MQTTv311,
            ca_file=query.get("ca", [None])[0],
        )


def make_client(
    endpoint: MqttEndpoint,
    client_id: str = "",
    *,
    manual_ack: bool = False,
    persistent: bool = False,
) -> mqtt.Client:
    """A paho client configured for the endpoint (credentials, TLS, protocol, backoff).

    ``persistent`` asks MQTT 3.1.1 for a kept session (v5 sets it per connection instead).
    """
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=endpoint.protocol,
        clean_session=None if endpoint.protocol == mqtt.MQTTv5 else not persistent,
        manual_ack=manual_ack,
    )
    if endpoint.username:
        client.username_pw_set(endpoint.username, endpoint.password)
    if endpoint.tls:
        client.tls_set(ca_certs=endpoint.ca_file, cert_reqs=ssl.CERT_REQUIRED)
    # Capped at 5 s: after an outage the ward should be watched again within seconds.
    client.reconnect_delay_set(min_delay=1, max_delay=5)
    return client


def set_nodelay(client: mqtt.Client) -> None:
    """paho leaves Nagle on: small QoS 1 messages then wait 40-60 ms in the kernel."""
    sock = client.socket()
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    received_us: int
    mid: int
    generation: int  # connection it arrived on; an ack is only valid on that connection


class MqttSource:
    """Subscribed persistent session yielding batches of messages; ``ack`` after commit."""

    def __init__(
        self,
        endpoint: MqttEndpoint,
        *,
        client_id: str = "wardwatch-ingest",
        topics: tuple[str, ...] = DEVICE_TOPICS,
        queue_max: int = 20_000,
        session_expiry_s: int = 7 * 24 * 3600,
    ) -> None:
        self._endpoint = endpoint
        self._topics = topics
        self._queue: queue.Queue[Message] = queue.Queue(maxsize=queue_max)
        self._session_expiry_s = session_expiry_s
        self._stopping = threading.Event()
        self._generation = 0
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # the broker granted our subscriptions
        self._client = make_client(endpoint, client_id, manual_ack=True, persistent=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe

    # paho callbacks: run on paho's network thread; they only hand work on.
    def _on_connect(
        self, client: mqtt.Client, _u: object, flags: object, rc: ReasonCode, _p: object
    ) -> None:
        if rc.is_failure:
            log.warning("broker refused connection: %s", rc)
            return
        self._generation += 1
        set_nodelay(client)
        # Subscribing on every connect: a broker that lost the session must still deliver.
        client.subscribe([(t, 1) for t in self._topics])
        self.connected.set()
        log.info(
            "connected to broker (session present: %s)", getattr(flags, "session_present", "?")
        )

    def _on_subscribe(
        self, _c: mqtt.Client, _u: object, _mid: int, codes: list[ReasonCode], _p: object
    ) -> None:
        refused = [c for c in codes if c.is_failure]
        if refused:
            log.error("broker refused the subscription: %s", refused[0])
        else:
            self.subscribed.set()

    def _on_disconnect(
        self, _c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object
    ) -> None:
        self.connected.clear()
        self.subscribed.clear()
        if not self._stopping.is_set():
            log.warning("disconnected from broker (%s); paho reconnects with backoff", rc)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        m = Message(
            msg.topic, bytes(msg.payload), time.time_ns() // 1000, msg.mid, self._generation
        )
        while not self._stopping.is_set():
            try:
                self._queue.put(m, timeout=0.5)
            except queue.Full:
                continue  # back-pressure: the broker keeps the message until we take it
            return

    def start(self) -> None:
        props = None
        if self._endpoint.protocol == mqtt.MQTTv5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self._session_expiry_s
        self._client.connect_async(
            self._endpoint.host,
            self._endpoint.port,
            keepalive=30,
            clean_start=False
            if self._endpoint.protocol == mqtt.MQTTv5
            else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            properties=props,
        )
        self._client.loop_start()

    def stop(self) -> None:
        self._stopping.set()
        self._client.disconnect()
        self._client.loop_stop()

    def depth(self) -> int:
        return self._queue.qsize()

    def batches(
        self, *, max_batch: int = 2000, max_wait_s: float = 0.2, stop: threading.Event
    ) -> Iterator[list[Message]]:
        """Micro-batches: up to ``max_batch`` messages or what arrived within ``max_wait_s``."""
        while not stop.is_set():
            try:
                first = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            batch = [first]
            deadline = time.monotonic() + max_wait_s
            while len(batch) < max_batch:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(self._queue.get(timeout=remaining))
                except queue.Empty:
                    break
            yield batch

    def ack(self, messages: list[Message]) -> int:
        """Acknowledge committed messages that arrived on the current connection, in order."""
        sent = 0
        for m in messages:
            if m.generation == self._generation and m.mid:
                self._client.ack(m.mid, 1)
                sent += 1
        return sent
