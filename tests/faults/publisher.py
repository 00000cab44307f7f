"""An at-least-once device publisher, run as its own process: ``python -m tests.faults.publisher``.

It publishes its share of a ``Workload`` at QoS 1 and counts a message as delivered only when the
broker's PUBACK for it has arrived with a success reason code. paho resends what was in flight
when a connection drops; on top of that, a message still unacknowledged ``resend_after_s`` after
it was last sent is published again (a broker that restarts without the session, or a paho resend
lost in a reconnect race). Duplicates are fine: the store keeps one row per (device, metric, time).

Protocol on stdout, one line each: ``progress <acked messages>`` a few times a second, then
``done <json stats>``. Exit code 0 when everything was acknowledged, 1 when the deadline passed.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from dataclasses import asdict, dataclass

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ingest.mqtt import MqttEndpoint, make_client, set_nodelay
from tests.faults.workload import Workload

NO_MATCHING_SUBSCRIBERS = 16  # MQTT 5 PUBACK reason 0x10: accepted, but nobody will receive it


@dataclass(slots=True)
class Stats:
    messages: int = 0  # this publisher's share of the workload
    acked: int = 0
    sends: int = 0  # publish calls, first sends and our republishes (not paho's own resends)
    republished: int = 0
    refused: int = 0  # PUBACKs with a failure reason code (each republished later)
    no_subscribers: int = 0  # PUBACK 0x10: the broker had no session to queue the message for
    connects: int = 0
    disconnects: int = 0
    seconds: float = 0.0


class _Tracker:
    """Which of our messages the broker has acknowledged; fed by paho's network thread.

    Never call paho while holding ``lock``: paho calls ``on_publish`` holding its own lock.
    """

    def __init__(self, total: int) -> None:
        self.lock = threading.Condition()
        self.acked = bytearray(total)
        self.acked_count = 0
        self.by_mid: dict[int, int] = {}  # paho message id -> our sequence number
        self.early: dict[int, ReasonCode] = {}  # PUBACKs that beat the recording of their mid
        self.refused = 0
        self.no_subscribers = 0

    def on_publish(
        self, _c: mqtt.Client, _u: object, mid: int, rc: ReasonCode, _p: Properties
    ) -> None:
        with self.lock:
            seq = self.by_mid.pop(mid, None)
            if seq is None:
                self.early[mid] = rc
                return
            self._settle(seq, rc)

    def sent(self, seq: int, mid: int) -> None:
        with self.lock:
            rc = self.early.pop(mid, None)
            if rc is None:
                self.by_mid[mid] = seq
            else:
                self._settle(seq, rc)

    def _settle(self, seq: int, rc: ReasonCode) -> None:
        if rc.is_failure:
            self.refused += 1  # stays unacknowledged: republished after resend_after_s
            return
        if rc.value == NO_MATCHING_SUBSCRIBERS:
            self.no_subscribers += 1
        if not self.acked[seq]:
            self.acked[seq] = 1
            self.acked_count += 1
        self.lock.notify_all()


def publish(
    workload: Workload,
    mqtt_url: str,
    *,
    index: int,
    of: int,
    rate: float,
    window: int,
    resend_after_s: float,
    deadline_s: float,
) -> Stats:
    """Publish devices ``index``, ``index + of``, ... of the workload; return once all are acked."""
    plan = [
        (d, m)
        for m in range(workload.messages_per_device)
        for d in range(index, workload.devices, of)
    ]
    stats = Stats(messages=len(plan))
    tracker = _Tracker(len(plan))
    connected = threading.Event()
    connected_at = [0.0]

    def on_connect(client: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        if not rc.is_failure:
            set_nodelay(client)
            stats.connects += 1
            connected_at[0] = time.monotonic()
            connected.set()

    def on_disconnect(_c: mqtt.Client, _u: object, _f: object, _rc: object, _p: object) -> None:
        connected.clear()
        stats.disconnects += 1

    endpoint = MqttEndpoint.from_url(mqtt_url)
    client = make_client(endpoint, f"{workload.device_prefix}pub-{index}")
    client.max_inflight_messages_set(window)
    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.on_publish = tracker.on_publish
    client.connect_async(endpoint.host, endpoint.port, keepalive=10)
    client.loop_start()
    start = time.monotonic()
    last_sent = [0.0] * len(plan)
    try:
        if not connected.wait(10):
            raise SystemExit(f"publisher {index}: no connection to {mqtt_url} in 10 s")

        def send(seq: int) -> None:
            device, message = plan[seq]
            while True:
                info = client.publish(
                    workload.topic(device), workload.payload(device, message), qos=1
                )
                # Refused only when paho's message-id space is full of stuck messages.
                if info.rc != MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
                    break
                time.sleep(0.05)
            tracker.sent(seq, info.mid)
            last_sent[seq] = time.monotonic()
            stats.sends += 1

        def resend_stale(upto: int) -> None:
            if not connected.is_set():
                return
            # paho resends what was in flight when it reconnects: give that time to be acked too.
            since = time.monotonic() - resend_after_s
            for seq in range(upto):
                if not tracker.acked[seq] and max(last_sent[seq], connected_at[0]) < since:
                    send(seq)
                    stats.republished += 1

        progress_at = 0.0
        next_seq = 0
        while True:
            now = time.monotonic()
            if now - start > deadline_s:
                break
            if now >= progress_at:
                _emit(f"progress {tracker.acked_count}")
                progress_at = now + 0.2
                resend_stale(next_seq)
            if tracker.acked_count == len(plan):
                break
            with tracker.lock:
                in_flight = next_seq - tracker.acked_count
            due = start + next_seq / rate if rate > 0 else now
            if next_seq < len(plan) and in_flight < window and now >= due:
                send(next_seq)
                next_seq += 1
                continue
            with tracker.lock:  # woken by the next PUBACK, or when the next message is due
                tracker.lock.wait(0.05 if due <= now else min(0.05, due - now))
    finally:
        client.disconnect()
        client.loop_stop()
    stats.acked = tracker.acked_count
    stats.refused = tracker.refused
    stats.no_subscribers = tracker.no_subscribers
    stats.seconds = round(time.monotonic() - start, 3)
    return stats


def _emit(line: str) -> None:
    """One line of the stdout protocol to the harness."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.publisher")
    parser.add_argument("--mqtt-url", required=True)
    parser.add_argument("--workload", required=True, help="Workload.to_json()")
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--of", type=int, required=True)
    parser.add_argument("--rate", type=float, default=0.0, help="messages/s; 0 = unthrottled")
    parser.add_argument("--window", type=int, default=200, help="messages awaiting PUBACK")
    parser.add_argument("--resend-after", type=float, default=5.0)
    parser.add_argument("--deadline", type=float, default=300.0)
    args = parser.parse_args()
    stats = publish(
        Workload.from_json(args.workload),
        args.mqtt_url,
        index=args.index,
        of=args.of,
        rate=args.rate,
        window=args.window,
        resend_after_s=args.resend_after,
        deadline_s=args.deadline,
    )
    _emit(f"progress {stats.acked}")
    _emit("done " + orjson.dumps(asdict(stats)).decode())
    return 0 if stats.acked == stats.messages else 1


if __name__ == "__main__":
    sys.exit(main())
