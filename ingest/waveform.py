"""Decode waveform chunks (``wardwatch/v1/devices/{id}/waveform``), setting rejects aside.

Pure and never raises, like ``ingest.codec``, and with the same ``Rejected`` records, reason codes
and timestamp rules, so quarantine, metrics and device makers see one contract
(docs/waveforms.md). Unlike a vitals sample, a chunk is all or nothing: one bad sample, or a
wrong ``unit``, would shift or rescale every sample after it, so the chunk is rejected whole. Only
an unknown field or a bad ``seq`` is set aside on its own, as a vitals field would be.

Decoding is compact: the parsed JSON list becomes one float32 array in a single ``np.asarray``
call and every check after that is vectorised; the only per-sample Python work is one pass of
``type()`` over the list, needed because numpy would quietly turn ``true`` or ``"1.5"`` into
numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from itertools import chain
from typing import Final, TypeVar

import numpy as np
import numpy.typing as npt
import orjson

# One timestamp grammar and one way of quoting a value in a reject's detail, for every topic: the
# codec's parser (private, shared on purpose) and the formats' contract helpers.
from ingest.codec import MAX_FUTURE_US, RAW_LIMIT, DecodeError, Rejected, _timestamp
from ingest.formats._contract import describe as _is
from ingest.formats._contract import show as _show
from signals.waveforms import MAX_CHUNK_S, WaveformChunk, WaveformKind

__all__ = [
    "ACCEL_LIMIT_G",
    "ECG_LIMIT_MV",
    "FS_RANGE_HZ",
    "MAX_WAVEFORM_BYTES",
    "checked_ts_us",
    "decode_waveforms",
    "parse_seq",
    "parsed_payload",
    "topic_kind",
]

#: Largest waveform payload (1 MiB): a minute of 2 kHz ECG at µV resolution ("-0.123," is 7 bytes
#: a sample: 840 kB). Faster or more precise signals are sent in shorter chunks.
MAX_WAVEFORM_BYTES: Final = 1_048_576
#: Sampling rates accepted, inclusive: from a slow accelerometer to diagnostic ECG, for which
#: 500 samples/s is the recommended minimum (AHA/ACCF/HRS ECG standardisation, Kligfield 2007);
#: 2 kHz also resolves pacemaker spikes.
FS_RANGE_HZ: Final = (1.0, 2000.0)
#: Accelerometer full scale: consumer wearable IMUs offer ±2 to ±16 g ranges, so a larger reading
#: is a unit error (m/s² sent as g) or a fault.
ACCEL_LIMIT_G: Final = 16.0
#: ECG amplitude: a QRS is a few mV even in marked hypertrophy (Sokolow-Lyon voltage criterion
#: 3.5 mV); ±20 mV leaves room for baseline wander, while µV sent as mV reads a thousand times
#: too high and is caught.
ECG_LIMIT_MV: Final = 20.0
_LIMITS: Final = {WaveformKind.ECG: ECG_LIMIT_MV, WaveformKind.ACCEL: ACCEL_LIMIT_G}

_TOPIC = re.compile(r"wardwatch/v1/devices/([A-Za-z0-9._-]{1,64})/(vitals|waveform|status)")
_KINDS: Final = {k.value: k for k in WaveformKind}
_FIELDS: Final = frozenset({"ts", "device_id", "kind", "fs_hz", "samples", "unit", "seq"})
_SEQ_MAX: Final = 2**63 - 1  # bigint in storage
_NUMBER_TYPES: Final = frozenset({int, float})
_ABSENT: Final = object()
_T = TypeVar("_T")


def topic_kind(topic: str) -> tuple[str, str]:
    """Return ``(device_id, kind)`` of a ``wardwatch/v1/devices/{device_id}/{kind}`` topic.

    ``kind`` is ``vitals``, ``waveform`` or ``status``; anything else is a bad topic.

    >>> topic_kind("wardwatch/v1/devices/ox-0042/waveform")
    ('ox-0042', 'waveform')
    """
    match = _TOPIC.fullmatch(topic)
    if match is None:
        raise DecodeError(
            "bad topic",
            f"topic {_show(topic)} is not wardwatch/v1/devices/{{device_id}}/"
            "(vitals|waveform|status) with a device_id of 1–64 characters from A–Z a–z 0–9 . _ -",
        )
    return match.group(1), match.group(2)


def decode_waveforms(
    messages: Iterable[tuple[str, bytes, int]],
    *,
    max_future_us: int = MAX_FUTURE_US,
    max_payload_bytes: int = MAX_WAVEFORM_BYTES,
) -> tuple[list[WaveformChunk], list[Rejected]]:
    """Decode ``(topic, payload, received_us)`` waveform messages into chunks and rejects.

    Never raises for any topic or payload. A repeated chunk is returned again: storage's key
    (device, kind, start) stores it once.
    """
    chunks: list[WaveformChunk] = []
    rejected: list[Rejected] = []
    for topic, payload, received_us in messages:
        device_id: str | None = None
        try:
            device_id, kind = topic_kind(topic)
            if kind != "waveform":
                raise DecodeError(
                    "bad topic", f"topic {_show(topic)} is a {kind} topic, not a waveform topic"
                )
            problems: list[DecodeError] = []
            chunk = _chunk(
                payload, device_id, received_us, max_future_us, max_payload_bytes, problems
            )
        except DecodeError as exc:
            problems, chunk = [exc], None
        if chunk is not None:
            chunks.append(chunk)
        raw = bytes(payload[:RAW_LIMIT])
        rejected.extend(
            Rejected(topic, device_id, p.reason, p.detail, raw, received_us) for p in problems
        )
    return chunks, rejected


def _chunk(
    payload: bytes,
    device_id: str,
    received_us: int,
    max_future_us: int,
    max_bytes: int,
    problems: list[DecodeError],
) -> WaveformChunk | None:
    """Return the message's chunk, or None if it is rejected.

    Raise DecodeError for a fault that ends decoding (the payload, the header); append the
    chunk's other faults to ``problems``, which starts empty, so that all are reported at once.
    """
    doc = parsed_payload(payload, max_bytes)
    if type(doc) is not dict:
        raise DecodeError("not an object", f"{_is('payload', doc)}, expected one chunk object")

    start_us = checked_ts_us(doc, device_id, received_us, max_future_us)

    # Collect every fault of the chunk, so a device maker sees them all at once.
    kind = _attempt(problems, lambda: _kind(doc.get("kind", _ABSENT)))
    fs_hz = _attempt(problems, lambda: _fs_hz(doc.get("fs_hz", _ABSENT)))
    unit = _attempt(problems, lambda: _unit(doc.get("unit", _ABSENT), kind))
    values = None
    if kind is not None and fs_hz is not None:
        values = _attempt(problems, lambda: _samples(doc.get("samples", _ABSENT), kind, fs_hz))
    fatal = bool(problems)  # so far: faults that make the samples unusable
    seq = _attempt(problems, lambda: _seq(doc.get("seq", _ABSENT)))
    problems.extend(
        DecodeError("unknown field", f"unknown field {_show(name)}")
        for name in doc
        if name not in _FIELDS
    )
    if fatal or kind is None or fs_hz is None or unit is None or values is None:
        return None
    return WaveformChunk(device_id, kind, start_us, fs_hz, values, unit, seq, received_us)


def parsed_payload(payload: bytes, max_bytes: int) -> object:
    """Return the payload's JSON; raise DecodeError if it is too large, not UTF-8 or not JSON."""
    if len(payload) > max_bytes:
        raise DecodeError(
            "payload too large", f"payload is {len(payload)} bytes, the limit is {max_bytes}"
        )
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        # Told apart by decoding again, not by matching orjson's message text.
        try:
            bytes(payload).decode("utf-8")
        except UnicodeDecodeError as bad:
            raise DecodeError(
                "invalid utf-8", f"payload byte {bad.start} is not valid UTF-8"
            ) from None
        raise DecodeError(
            "invalid json", f"payload is not JSON: {exc.msg} at char {exc.pos}"
        ) from None


def checked_ts_us(
    obj: dict[str, object], device_id: str, received_us: int, max_future_us: int
) -> int:
    """Return an object's ``ts`` in µs after the checks every topic's objects pass, as vitals do.

    Raise DecodeError if its ``device_id`` is not the topic's, or its ``ts`` is missing, not a
    v1 timestamp, or further than ``max_future_us`` after receipt.
    """
    claimed = obj.get("device_id", device_id)
    if claimed != device_id:
        raise DecodeError(
            "device mismatch",
            f"device_id {_show(claimed)} does not match the topic's {device_id!r}",
        )
    if "ts" not in obj:
        raise DecodeError("bad timestamp", "ts is missing")
    ts_us, _offset_min = _timestamp(obj["ts"])
    if ts_us - received_us > max_future_us:
        raise DecodeError(
            "future timestamp",
            f"ts {_show(obj['ts'])} is {(ts_us - received_us) / 1e6:.0f} s after the message "
            f"was received (tolerance {max_future_us / 1e6:g} s): is the clock set?",
        )
    return ts_us


def _attempt(problems: list[DecodeError], check: Callable[[], _T]) -> _T | None:
    """Run one field's check; on a DecodeError note the problem and go on to the next field."""
    try:
        return check()
    except DecodeError as exc:
        problems.append(exc)
        return None


def _kind(value: object) -> WaveformKind:
    if not isinstance(value, str):
        raise DecodeError("wrong type", _wrong("kind", value, "ppg, ecg or accel"))
    kind = _KINDS.get(value)
    if kind is None:
        raise DecodeError("impossible value", f"kind {_show(value)} is not one of ppg, ecg, accel")
    return kind


def _fs_hz(value: object) -> float:
    if type(value) is not int and type(value) is not float:
        raise DecodeError("wrong type", _wrong("fs_hz", value, "a number of Hz"))
    low, high = FS_RANGE_HZ
    if not low <= value <= high:
        raise DecodeError("impossible value", f"fs_hz {_show(value)} outside {low:g}–{high:g} Hz")
    return float(value)


def _unit(value: object, kind: WaveformKind | None) -> str | None:
    """The kind's unit; another one is refused, because a guessed scale would be silent."""
    if value is not _ABSENT and not isinstance(value, str):
        raise DecodeError("wrong type", _wrong("unit", value, "a string"))
    if kind is None:
        return None  # the kind's own problem is reported already
    if value is not _ABSENT and value != kind.unit:
        raise DecodeError(
            "impossible value",
            f"unit {_show(value)} is not {kind.unit!r}, the unit of {kind.value}",
        )
    return kind.unit


def _samples(value: object, kind: WaveformKind, fs_hz: float) -> npt.NDArray[np.float32]:
    """The samples as float32, shape (n,) or (n, 3)."""
    accel = kind is WaveformKind.ACCEL
    if type(value) is not list:
        expected = "an array of [x, y, z] arrays" if accel else "an array of numbers"
        raise DecodeError("wrong type", _wrong("samples", value, expected))
    n = len(value)
    if n == 0:
        raise DecodeError("impossible value", "samples is empty, expected at least one")
    if n > MAX_CHUNK_S * fs_hz:
        raise DecodeError(
            "impossible value",
            f"samples holds {n} samples, {n / fs_hz:.1f} s at {fs_hz:g} Hz: the limit is "
            f"{MAX_CHUNK_S} s a chunk",
        )
    flat: list[object] = value
    if accel:
        if set(map(type, value)) != {list} or set(map(len, value)) != {3}:
            i = next(i for i, v in enumerate(value) if type(v) is not list or len(v) != 3)
            raise DecodeError("wrong type", _wrong(f"samples[{i}]", value[i], "[x, y, z]"))
        flat = list(chain.from_iterable(value))
    # One pass of type() over the samples: numpy would take true as 1 and "1.5" as 1.5.
    if not set(map(type, flat)) <= _NUMBER_TYPES:
        i = next(i for i, v in enumerate(flat) if type(v) not in _NUMBER_TYPES)
        raise DecodeError("wrong type", _wrong(_where(i, accel), flat[i], "a number"))
    # JSON has no NaN or infinity, but a number beyond float32's range (3.4e38) becomes one here.
    with np.errstate(over="ignore"):
        values = np.asarray(value, dtype=np.float32)
    limit = _LIMITS.get(kind)
    bad = ~np.isfinite(values) if limit is None else ~(np.abs(values) <= limit)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        bound = "a finite float32" if limit is None else f"within ±{limit:g} {kind.unit}"
        raise DecodeError("impossible value", f"{_where(i, accel)} {_show(flat[i])} is not {bound}")
    return values


def _seq(value: object) -> int | None:
    return None if value is _ABSENT else parse_seq(value)


def parse_seq(value: object) -> int:
    """Return a wire ``seq``, the device's message number: a whole number 0..2⁶³−1 (a bigint)."""
    # JSON has one number type, so 12.0 is the whole number 12 (as for vitals' steps).
    if type(value) is float and value.is_integer():
        value = int(value)
    if type(value) is not int:
        raise DecodeError("wrong type", _wrong("seq", value, "a whole number"))
    if not 0 <= value <= _SEQ_MAX:
        raise DecodeError("impossible value", f"seq {value} outside 0–{_SEQ_MAX}")
    return value


def _where(flat_index: int, accel: bool) -> str:
    """Name a sample in a reject's detail by its place in the payload."""
    return f"samples[{flat_index // 3}][{flat_index % 3}]" if accel else f"samples[{flat_index}]"


def _wrong(name: str, value: object, expected: str) -> str:
    what = f"{name} is missing" if value is _ABSENT else _is(name, value)
    return f"{what}, expected {expected}"
