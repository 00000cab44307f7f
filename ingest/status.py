"""Decode device status reports (``wardwatch/v1/devices/{id}/status``), setting rejects aside.

Pure and never raises, with the codec's ``Rejected`` records, reason codes and timestamp rules
(docs/waveforms.md). As for vitals, rejection is as narrow as possible: a bad report in an array
is rejected alone, a bad field alone, and the report's other fields are kept.

Battery and worn are vital to the nurse's picture (a flat battery or an unworn device explains a
silence), so besides the status rows they also become readings, the same metrics a vitals sample
may carry (``status_readings``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

import numpy as np
import orjson

from ingest.codec import (
    MAX_FUTURE_US,
    MAX_PAYLOAD_BYTES,
    RAW_LIMIT,
    DecodeError,
    Rejected,
    _timestamp,
)
from ingest.formats._contract import describe as _is
from ingest.formats._contract import show as _show
from ingest.waveform import checked_ts_us, parse_seq, parsed_payload, topic_kind
from signals.vitals import PLAUSIBLE, Metric, Readings
from signals.waveforms import DeviceStatus

__all__ = ["FIRMWARE_MAX_CHARS", "DeviceStatus", "decode_statuses", "status_readings"]

#: Longest firmware version kept: enough for "2.14.3-rc1+build.20261128.abcdef0", and a bound on
#: free text from a device.
FIRMWARE_MAX_CHARS: Final = 64
_BATTERY = PLAUSIBLE[Metric.BATTERY]
_HEADER: Final = frozenset({"ts", "device_id"})  # checked before the fields


def decode_statuses(
    messages: Iterable[tuple[str, bytes, int]],
    *,
    max_future_us: int = MAX_FUTURE_US,
    max_payload_bytes: int = MAX_PAYLOAD_BYTES,
) -> tuple[list[DeviceStatus], list[Rejected]]:
    """Decode ``(topic, payload, received_us)`` status messages into reports and rejects.

    A payload is one report object or a non-empty array of them. Never raises for any topic or
    payload. A repeated report is returned again: storage's key (device, ts) stores it once.
    """
    statuses: list[DeviceStatus] = []
    rejected: list[Rejected] = []
    for topic, payload, received_us in messages:
        device_id: str | None = None
        try:
            device_id, stream = topic_kind(topic)
            if stream != "status":
                raise DecodeError(
                    "bad topic", f"topic {_show(topic)} is a {stream} topic, not a status topic"
                )
            items, single = _items(payload, max_payload_bytes)
        except DecodeError as exc:
            raw = bytes(payload[:RAW_LIMIT])
            rejected.append(Rejected(topic, device_id, exc.reason, exc.detail, raw, received_us))
            continue
        for index, item in enumerate(items):
            problems: list[DecodeError] = []
            status = _status(item, device_id, received_us, max_future_us, problems)
            if status is not None:
                statuses.append(status)
            if problems:
                # One copy of the report for all its rejects; a single-object payload is the report.
                where = "" if single else f"item {index}: "
                raw = bytes(payload[:RAW_LIMIT]) if single else _dump(item, payload)
                rejected.extend(
                    Rejected(topic, device_id, p.reason, where + p.detail, raw, received_us)
                    for p in problems
                )
    return statuses, rejected


def status_readings(statuses: Sequence[DeviceStatus]) -> Readings:
    """Battery and worn of the reports as readings, stamped at each report's ``ts``.

    ``patient_id`` is "" (ingest resolves the device's assignment) and ``utc_offset_min`` 0: a
    status row keeps only the instant, and the offset is only for display. A reading that a
    vitals sample also sent at the same instant is stored once, by the readings key.
    """
    device: list[str] = []
    metric: list[int] = []
    ts: list[int] = []
    value: list[float] = []
    received: list[int] = []
    for s in statuses:
        for code, v in ((Metric.BATTERY, s.battery_pct), (Metric.WORN, s.worn)):
            if v is not None:
                device.append(s.device_id)
                metric.append(int(code))
                ts.append(s.ts_us)
                value.append(float(v))
                received.append(s.received_us)
    if not ts:
        return Readings.empty()
    device_id = np.empty(len(device), dtype=object)
    device_id[:] = device
    return Readings(
        device_id=device_id,
        patient_id=np.full(len(ts), "", dtype=object),
        metric=np.array(metric, dtype=np.int16),
        ts_us=np.array(ts, dtype=np.int64),
        value=np.array(value, dtype=np.float64),
        utc_offset_min=np.zeros(len(ts), dtype=np.int16),
        received_us=np.array(received, dtype=np.int64),
    )


def _items(payload: bytes, max_bytes: int) -> tuple[list[object], bool]:
    """The payload's reports, and whether it was a single object rather than an array."""
    doc = parsed_payload(payload, max_bytes)
    if type(doc) is dict:
        return [doc], True
    if type(doc) is list and doc:
        return doc, False
    detail = (
        "payload is an empty array, expected status reports"
        if type(doc) is list
        else f"{_is('payload', doc)}, expected an object or an array of objects"
    )
    raise DecodeError("not an object", detail)


def _status(
    obj: object,
    device_id: str,
    received_us: int,
    max_future_us: int,
    problems: list[DecodeError],
) -> DeviceStatus | None:
    """One report, its bad fields left out and noted in ``problems``; None if it is bad whole."""
    try:
        if type(obj) is not dict:
            raise DecodeError("not an object", f"{_is('report', obj)}, expected an object")
        ts_us = checked_ts_us(obj, device_id, received_us, max_future_us)
    except DecodeError as exc:
        problems.append(exc)
        return None

    battery: float | None = None
    worn: bool | None = None
    firmware: str | None = None
    clock_offset_s: float | None = None
    seq: int | None = None
    for name, value in obj.items():
        try:
            if name == "battery":
                battery = _battery(value)
            elif name == "worn":
                worn = _worn(value)
            elif name == "firmware":
                firmware = _firmware(value)
            elif name == "clock":
                clock_offset_s = _clock_offset_s(value, received_us)
            elif name == "seq":
                seq = parse_seq(value)
            elif name not in _HEADER:
                raise DecodeError("unknown field", f"unknown field {_show(name)}")
        except DecodeError as exc:
            problems.append(exc)
    return DeviceStatus(device_id, ts_us, battery, worn, firmware, clock_offset_s, seq, received_us)


def _battery(value: object) -> float:
    if type(value) is not int and type(value) is not float:
        raise DecodeError("wrong type", f"{_is('battery', value)}, expected a number")
    if not _BATTERY.contains(value):
        raise DecodeError(
            "impossible value",
            f"battery {_show(value)} outside {_BATTERY.low:g}–{_BATTERY.high:g} %",
        )
    return float(value)


def _worn(value: object) -> bool:
    if type(value) is not bool:
        raise DecodeError("wrong type", f"{_is('worn', value)}, expected true or false")
    return value


def _firmware(value: object) -> str:
    if type(value) is not str:
        raise DecodeError("wrong type", f"{_is('firmware', value)}, expected a string")
    # Printable only: the version is shown on the dashboard and must not carry line breaks or
    # control characters into it.
    if not 1 <= len(value) <= FIRMWARE_MAX_CHARS or not value.isprintable():
        raise DecodeError(
            "impossible value",
            f"firmware {_show(value)} is not 1–{FIRMWARE_MAX_CHARS} printable characters",
        )
    return value


def _clock_offset_s(value: object, received_us: int) -> float:
    """The device clock minus the receipt time, in seconds: positive when the device is ahead.

    The clock is read in either form ``ts`` takes. Keeping its offset makes a drifting or wrongly
    set clock visible long before its timestamps are rejected as "future timestamp".
    """
    clock_us, _offset_min = _timestamp(value, "clock")
    return (clock_us - received_us) / 1e6


def _dump(item: object, payload: bytes) -> bytes:
    """Serialise one array item for quarantine, or fall back to the payload it came in."""
    try:
        return orjson.dumps(item)[:RAW_LIMIT]
    except orjson.JSONEncodeError:
        return bytes(payload[:RAW_LIMIT])
