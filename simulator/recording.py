"""Record what a broker carries to a file, replay it later, or read it straight into the pipeline.

A recording is JSON Lines, UTF-8, one object per line::

    {"wardwatch_recording": 1, "started_at": "2026-05-28T21:26:40.123456+00:00"}
    {"t": 0.512731, "topic": "wardwatch/v1/devices/sim-dev-0001/vitals", "payload": "[{...}]"}
    {"t": 1.498002, "topic": "wardwatch/v1/devices/sim-dev-0002/vitals", "payload": "[{...}]"}

* The first line is an optional header: the format version (1) and when recording began.
* ``t`` is seconds since recording began (when the subscription was acknowledged), as received.
* ``payload`` is the message payload, byte for byte, as a UTF-8 string. A payload that is not
  valid UTF-8 is kept instead as ``"payload_b64"``, standard base64.

Replay publishes the payloads verbatim, so replaying a recording twice stores nothing twice
(storage is idempotent on device, metric and timestamp).
"""

from __future__ import annotations

import base64
import binascii
import math
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from os import PathLike
from typing import Any

import orjson

from simulator.publish import Publisher, Subscriber

FORMAT_VERSION = 1
DEFAULT_TOPIC_FILTER = "wardwatch/v1/devices/+/+"
_FLUSH_EVERY_S = 1.0
_MAX_WAIT_S = 0.2  # longest single wait, so that a stop request is noticed promptly

StrPath = str | PathLike[str]


class RecordingError(Exception):
    """A recording file is malformed; the message names the line."""


def encode_line(t: float, topic: str, payload: bytes) -> bytes:
    """One recording line, newline included.

    >>> encode_line(1.5, "a/b", b'[{"x":1}]')
    b'{"t":1.5,"topic":"a/b","payload":"[{\\\\"x\\\\":1}]"}\\n'
    """
    line: dict[str, Any] = {"t": round(t, 6), "topic": topic}
    try:
        line["payload"] = payload.decode("utf-8")
    except UnicodeDecodeError:
        line["payload_b64"] = base64.b64encode(payload).decode("ascii")
    return orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE)


def iter_recording(path: StrPath) -> Iterator[tuple[float, str, bytes]]:
    """Yield ``(t, topic, payload)`` for each message of a recording, in file order."""
    with open(path, "rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                item = orjson.loads(line)
            except orjson.JSONDecodeError as error:
                raise RecordingError(f"line {number}: not JSON: {error}") from None
            if not isinstance(item, dict):
                raise RecordingError(f"line {number}: not a JSON object")
            if "wardwatch_recording" in item:
                if number != 1 or item["wardwatch_recording"] != FORMAT_VERSION:
                    raise RecordingError(f"line {number}: unexpected header {item!r}")
                continue
            yield _decode_line(number, item)


def _decode_line(number: int, item: dict[str, Any]) -> tuple[float, str, bytes]:
    t, topic = item.get("t"), item.get("topic")
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
        raise RecordingError(f"line {number}: 't' must be a number of seconds")
    if not isinstance(topic, str) or not topic:
        raise RecordingError(f"line {number}: 'topic' must be a non-empty string")
    if isinstance(text := item.get("payload"), str):
        return float(t), topic, text.encode("utf-8")
    if isinstance(packed := item.get("payload_b64"), str):
        try:
            return float(t), topic, base64.b64decode(packed, validate=True)
        except binascii.Error as error:
            raise RecordingError(f"line {number}: bad payload_b64: {error}") from None
    raise RecordingError(f"line {number}: needs 'payload' or 'payload_b64' as a string")


def record(
    mqtt_url: str,
    out_path: StrPath,
    *,
    minutes: float | None = None,
    topic_filter: str = DEFAULT_TOPIC_FILTER,
    stop: threading.Event,
    clock: Callable[[], float] = time.time,
) -> int:
    """Record messages matching ``topic_filter`` for ``minutes`` (None: until ``stop``).

    Overwrites ``out_path``. The header is written, and flushed, once the broker has acknowledged
    the subscription; messages are flushed at least every second. Returns the messages recorded.
    """
    count = 0
    with Subscriber(mqtt_url, topic_filter, clock=clock) as messages, open(out_path, "wb") as out:
        started = clock()
        header = {"wardwatch_recording": FORMAT_VERSION, "started_at": _rfc3339(started)}
        out.write(orjson.dumps(header, option=orjson.OPT_APPEND_NEWLINE))
        out.flush()
        deadline = math.inf if minutes is None else started + minutes * 60.0
        flushed = started
        while not stop.is_set() and (now := clock()) < deadline:
            item = messages.get(min(_MAX_WAIT_S, deadline - now))
            if item is not None:
                topic, payload, received_at = item
                out.write(encode_line(max(received_at - started, 0.0), topic, payload))
                count += 1
            if clock() - flushed >= _FLUSH_EVERY_S:
                out.flush()
                flushed = clock()
    return count


def replay(
    path: StrPath,
    mqtt_url: str,
    *,
    speed: float = 1.0,
    stop: threading.Event,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Publish a recording's messages verbatim, ``t / speed`` seconds after starting.

    ``speed`` 0 or infinity publishes as fast as the broker acknowledges. Returns the messages
    published (fewer than recorded if ``stop`` was set).
    """
    if math.isnan(speed) or speed < 0:
        raise ValueError(f"speed must be >= 0 (0 or inf: as fast as possible), got {speed!r}")
    paced = 0 < speed < math.inf
    count = 0
    with Publisher(mqtt_url) as publisher:
        started = clock()
        for t, topic, payload in iter_recording(path):
            if paced:
                due = started + t / speed
                while not stop.is_set() and (delay := due - clock()) > 0:
                    sleep(min(delay, _MAX_WAIT_S))
            if stop.is_set():
                break
            publisher.publish(topic, payload)
            count += 1
    return count


def _rfc3339(unix_s: float) -> str:
    return datetime.fromtimestamp(unix_s, UTC).isoformat()
