"""Decode wire-format v1 MQTT messages into columnar readings, setting rejects aside for quarantine.

Pure: no I/O and no clock (the receive time comes with each message), so a recording replays to the
same result. The contract with device makers is docs/wire-format.md; keep the two in step.

Besides native v1 samples, a payload may hold Open mHealth data points or FHIR R4 Observations
(docs/formats.md). The format is told from the payload's keys, one dict lookup for a v1 sample;
each format module converts its records into v1 samples, and every v1 rule below applies alike.

Granularity is the point of the design: nothing valid is lost because something next to it was
invalid. A bad payload is one reject; a bad object inside an array is one reject and its neighbours
are kept; a bad field inside a good object is one reject and the object's other fields are kept.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import orjson

from ingest.formats import Converted, fhir, omh
from ingest.formats._contract import REASONS, DecodeError, describe, show
from signals.vitals import CONSCIOUSNESS_LEVELS, PLAUSIBLE, Metric, Readings

__all__ = [
    "MAX_FUTURE_US",
    "MAX_PAYLOAD_BYTES",
    "RAW_LIMIT",
    "REASONS",
    "DecodeError",
    "Decoded",
    "Rejected",
    "decode_batch",
    "device_from_topic",
    "encode_samples",
]

#: Bytes of the offending payload or object kept with a reject: enough to diagnose, bounded so a
#: hostile device cannot fill the quarantine table.
RAW_LIMIT: Final = 4096
#: Clock-skew tolerance: a sample stamped further than this after its receipt is rejected.
MAX_FUTURE_US: Final = 300_000_000
#: Largest payload decoded (256 KiB): about twenty minutes of full one-second samples, far more
#: than a device should buffer into one message, and a bound on the work one message can cause.
MAX_PAYLOAD_BYTES: Final = 262_144

_TOPIC = re.compile(r"wardwatch/v1/devices/([A-Za-z0-9._-]{1,64})/vitals")
_DEVICE_START: Final = len("wardwatch/v1/devices/")
_DEVICE_END: Final = len("/vitals")
# RFC 3339 date-time (section 5.6) with the space separator its note allows. Checked before
# fromisoformat because that accepts far more of ISO 8601 (week dates, basic format, no offset)
# and devices must not come to rely on it. [0-9], not \d, which matches any Unicode digit.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_EPOCH_ORDINAL: Final = datetime(1970, 1, 1, tzinfo=UTC).toordinal()
# "+HH:MM" / "-HH:MM" -> minutes east of UTC, for every offset RFC 3339 allows (hours 00-23).
_OFFSET_MIN: Final = {
    f"{sign}{h:02d}:{m:02d}": (1 if sign == "+" else -1) * (h * 60 + m)
    for sign in "+-"
    for h in range(24)
    for m in range(60)
}
_BAD_OFFSET: Final = 1 << 31
_Y2000_US: Final = 946_684_800_000_000  # 2000-01-01T00:00:00Z
_Y10000_S: Final = 253_402_300_800  # 10000-01-01T00:00:00Z, beyond any RFC 3339 date

# How each wire field is checked and turned into a float.
_NUMBER, _COUNT, _FLAG, _LEVEL, _RR = range(5)
_KIND: Final[dict[Metric, int]] = {
    Metric.HEART_RATE: _NUMBER,
    Metric.SPO2: _NUMBER,
    Metric.RESP_RATE: _NUMBER,
    Metric.TEMPERATURE: _NUMBER,
    Metric.SYSTOLIC_BP: _NUMBER,
    Metric.DIASTOLIC_BP: _NUMBER,
    Metric.BATTERY: _NUMBER,
    Metric.STEPS: _COUNT,
    Metric.ON_OXYGEN: _FLAG,
    Metric.WORN: _FLAG,
    Metric.CONSCIOUSNESS: _LEVEL,
    Metric.RR_INTERVAL: _RR,
    Metric.SLEEP_MINUTES: _NUMBER,
    Metric.ACTIVITY_MG: _NUMBER,
    Metric.INACTIVE: _FLAG,
}
# Metrics that arrive only converted from another format, or are derived by wardwatch itself from
# a waveform (signals.motion): v1's fields stay fixed until a v2 topic.
_NOT_IN_V1: Final = frozenset({Metric.SLEEP_MINUTES, Metric.ACTIVITY_MG, Metric.INACTIVE})
# wire name -> (storage code, kind, low, high): one dict lookup per field on the hot path.
_CONVERTED_FIELDS: Final[dict[str, tuple[int, int, float, float]]] = {
    m.wire_name: (int(m), _KIND[m], PLAUSIBLE[m].low, PLAUSIBLE[m].high) for m in Metric
}
_FIELDS: Final = {
    m.wire_name: _CONVERTED_FIELDS[m.wire_name] for m in Metric if m not in _NOT_IN_V1
}
_LEVEL_INDEX: Final = {level: float(i) for i, level in enumerate(CONSCIOUSNESS_LEVELS)}
_RR_LOW: Final = PLAUSIBLE[Metric.RR_INTERVAL].low
_RR_HIGH: Final = PLAUSIBLE[Metric.RR_INTERVAL].high
_MISSING: Final = object()
# Shared with ingest.waveform under these names: one way of quoting a value in a reject's detail.
_show = show
_is = describe


@dataclass(frozen=True, slots=True)
class Rejected:
    """One payload, object or field set aside for quarantine, with what was wrong and where."""

    topic: str
    device_id: str | None  # None when the topic itself was bad
    reason: str  # a code from REASONS
    detail: str  # for a person: "item 3: temperature 'hot' is a string, expected a number"
    raw: bytes  # the offending payload or object, at most RAW_LIMIT bytes
    received_us: int


@dataclass(frozen=True, slots=True)
class Decoded:
    """The readings decoded from one micro-batch of messages, and what was set aside."""

    readings: Readings  # patient_id is "" throughout: ingest resolves the device's assignment
    rejected: tuple[Rejected, ...]
    duplicates: int  # rows dropped because the batch already held the same device, metric, time
    # (device, seq, received µs) of samples that carried a ``seq``: messages lost upstream of
    # wardwatch show as gaps in these numbers (storage.devices.find_gaps).
    seqs: tuple[tuple[str, int, int], ...] = ()


def device_from_topic(topic: str) -> str:
    """Return the device id in a ``wardwatch/v1/devices/{device_id}/vitals`` topic.

    >>> device_from_topic("wardwatch/v1/devices/ox-0042/vitals")
    'ox-0042'
    """
    match = _TOPIC.fullmatch(topic)
    if match is None:
        raise DecodeError(
            "bad topic",
            f"topic {_show(topic)} is not wardwatch/v1/devices/{{device_id}}/vitals "
            "with a device_id of 1–64 characters from A–Z a–z 0–9 . _ -",
        )
    return match.group(1)


def newest_ts_us(payload: bytes, *, cap_us: int) -> int | None:
    """The newest ``ts`` among a v1 payload's samples, at most ``cap_us``; None if it has none.

    A cheap look for the rate limiter (ingest.ratelimit), which meters devices on event time as
    well as receipt time; anything malformed is the decoder's business and gives None here.
    """
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    newest: int | None = None
    for sample in doc if type(doc) is list else [doc]:
        if type(sample) is dict and "ts" in sample:
            try:
                ts_us, _offset = _timestamp(sample["ts"])
            except DecodeError:
                continue
            newest = ts_us if newest is None else max(newest, ts_us)
    return None if newest is None else min(newest, cap_us)


def encode_samples(samples: Sequence[Mapping[str, object]]) -> bytes:
    """Encode samples as a v1 payload: a JSON array of objects.

    The inverse of decoding, for the simulator and tests. ``ts`` may be a timezone-aware datetime
    (written as RFC 3339 with its offset, UTC as ``Z``), an RFC 3339 string or epoch seconds; numpy
    scalars and arrays are written as numbers. Nothing else is checked: encoding a bad value on
    purpose is how tests reach the quarantine. orjson writes NaN and infinity as ``null``.
    """
    out: list[dict[str, object]] = []
    for sample in samples:
        ts = sample.get("ts")
        if isinstance(ts, datetime) and ts.utcoffset() is None:
            raise ValueError("ts must be a timezone-aware datetime: a naive one has no offset")
        out.append(dict(sample))
    return orjson.dumps(out, option=orjson.OPT_UTC_Z | orjson.OPT_SERIALIZE_NUMPY)


def decode_batch(
    messages: Iterable[tuple[str, bytes, int]],
    *,
    max_future_us: int = MAX_FUTURE_US,
    max_payload_bytes: int = MAX_PAYLOAD_BYTES,
) -> Decoded:
    """Decode a micro-batch of ``(topic, payload, received_us)`` messages.

    Never raises for any topic or payload: whatever is wrong becomes a ``Rejected``. Rows repeating
    an earlier row's device, metric and time are dropped and counted, because at-least-once
    delivery (MQTT QoS 1) redelivers.
    """
    batch = _Batch(max_future_us)
    for topic, payload, received_us in messages:
        batch.message(topic, payload, received_us, max_payload_bytes)
    readings, duplicates = batch.readings()
    names = list(batch.devices)
    seqs = tuple((names[code], seq, received) for code, seq, received in batch.seqs)
    return Decoded(readings, tuple(batch.rejected), duplicates, seqs)


class _Batch:
    """Columns as plain lists while one batch is decoded; numpy arrays are built once at the end."""

    __slots__ = (
        "codes",
        "devices",
        "max_future_us",
        "metric",
        "offset",
        "received",
        "rejected",
        "seqs",
        "topics",
        "ts",
        "value",
    )

    def __init__(self, max_future_us: int) -> None:
        self.max_future_us = max_future_us
        self.topics: dict[str, int] = {}  # topic -> device code; few topics, many messages
        self.devices: dict[str, int] = {}  # device id -> small int code, so rows store ints
        self.codes: list[int] = []
        self.metric: list[int] = []
        self.ts: list[int] = []
        self.value: list[float] = []
        self.offset: list[int] = []
        self.received: list[int] = []
        self.rejected: list[Rejected] = []
        self.seqs: list[tuple[int, int, int]] = []  # (device code, seq, received µs)

    def message(self, topic: str, payload: bytes, received_us: int, max_bytes: int) -> None:
        """Append one message's rows and rejects."""
        code = self.topics.get(topic)
        if code is None:
            try:
                device_id = device_from_topic(topic)
            except DecodeError as exc:
                self._reject_message(topic, None, exc.reason, exc.detail, payload, received_us)
                return
            code = self.devices.setdefault(device_id, len(self.devices))
            self.topics[topic] = code
        else:
            device_id = topic[_DEVICE_START:-_DEVICE_END]

        if len(payload) > max_bytes:
            detail = f"payload is {len(payload)} bytes, the limit is {max_bytes}"
            self._reject_message(
                topic, device_id, "payload too large", detail, payload, received_us
            )
            return
        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            # Told apart by decoding again, not by matching orjson's message text.
            try:
                bytes(payload).decode("utf-8")
            except UnicodeDecodeError as bad:
                reason, detail = "invalid utf-8", f"payload byte {bad.start} is not valid UTF-8"
            else:
                reason, detail = "invalid json", f"payload is not JSON: {exc.msg} at char {exc.pos}"
            self._reject_message(topic, device_id, reason, detail, payload, received_us)
            return

        self.document(doc, device_id, code, topic, payload, received_us)

    def document(
        self,
        doc: object,
        device_id: str,
        code: int,
        topic: str,
        payload: bytes,
        received_us: int,
    ) -> None:
        """Append a parsed payload's rows: a v1 sample, an array, or a record of another format."""
        # The format is told by keys: a v1 sample has "ts", which no other format's record has
        # at its top level, so a v1 sample costs one more dict lookup; then keys no v1 sample has.
        if type(doc) is dict:
            if "ts" in doc:
                self.sample(doc, None, device_id, code, topic, payload, received_us)
            elif "resourceType" in doc:
                self.fhir(doc, device_id, code, topic, payload, received_us)
            elif "header" in doc or "body" in doc:
                convert = partial(omh.convert, doc)
                self.converted(convert, "", None, device_id, code, topic, payload, received_us)
            else:
                self.sample(doc, None, device_id, code, topic, payload, received_us)
        elif type(doc) is list and doc:
            for index, item in enumerate(doc):
                if (
                    type(item) is dict
                    and "ts" not in item
                    and ("header" in item or "body" in item or "resourceType" in item)
                ):
                    self.foreign_item(item, index, device_id, code, topic, payload, received_us)
                else:
                    self.sample(item, index, device_id, code, topic, payload, received_us)
        else:
            detail = (
                "payload is an empty array, expected samples"
                if type(doc) is list
                else f"{_is('payload', doc)}, expected an object or an array of objects"
            )
            self._reject_message(topic, device_id, "not an object", detail, payload, received_us)

    def _reject_message(
        self,
        topic: str,
        device_id: str | None,
        reason: str,
        detail: str,
        payload: bytes,
        received_us: int,
    ) -> None:
        raw = bytes(payload[:RAW_LIMIT])
        self.rejected.append(Rejected(topic, device_id, reason, detail, raw, received_us))

    def sample(
        self,
        obj: object,
        index: int | None,
        device_id: str,
        code: int,
        topic: str,
        payload: bytes,
        received_us: int,
    ) -> None:
        """Append one sample's rows; reject the sample, or each field, that breaks the rules.

        ``index`` is the sample's place in an array payload, None for a single-object payload.
        """
        problems: list[tuple[str, str]] = []
        try:
            ts_us, offset_min = self._header(obj, device_id, received_us)
        except DecodeError as exc:
            problems.append((exc.reason, exc.detail))
        else:
            assert type(obj) is dict  # checked by _header
            self._fields(obj, _FIELDS, ts_us, offset_min, code, received_us, problems)
        if problems:
            # One copy of the sample for all its rejects; a single-object payload is the sample.
            where = "" if index is None else f"item {index}: "
            item = None if index is None else obj
            self._set_aside(problems, where, item, topic, device_id, payload, received_us)

    def fhir(
        self,
        doc: dict[str, object],
        device_id: str,
        code: int,
        topic: str,
        payload: bytes,
        received_us: int,
    ) -> None:
        """Append a FHIR payload's rows: one Observation, or each entry of a Bundle on its own."""
        if doc.get("resourceType") != "Bundle":
            convert = partial(fhir.convert, doc)
            self.converted(convert, "", None, device_id, code, topic, payload, received_us)
            return
        try:
            entries = fhir.entries(doc)
        except DecodeError as exc:
            self._reject_message(topic, device_id, exc.reason, exc.detail, payload, received_us)
            return
        for index, entry in enumerate(entries):
            convert = partial(fhir.convert_entry, entry)
            where = f"entry {index}: "
            self.converted(convert, where, entry, device_id, code, topic, payload, received_us)

    def foreign_item(
        self,
        item: dict[str, object],
        index: int,
        device_id: str,
        code: int,
        topic: str,
        payload: bytes,
        received_us: int,
    ) -> None:
        """Append an array item that is not a v1 sample: an Open mHealth data point, or a reject."""
        where = f"item {index}: "
        if "resourceType" in item:
            # One reject that says what to do, not "ts is missing" and "unknown field".
            problem = (
                "unknown field",
                "unknown field 'resourceType': a FHIR resource is sent alone or in a Bundle, "
                "not in an array",
            )
            self._set_aside([problem], where, item, topic, device_id, payload, received_us)
            return
        convert = partial(omh.convert, item)
        self.converted(convert, where, item, device_id, code, topic, payload, received_us)

    def converted(
        self,
        convert: Callable[[], Converted | None],
        where: str,
        item: object,
        device_id: str,
        code: int,
        topic: str,
        payload: bytes,
        received_us: int,
    ) -> None:
        """Append the rows of one record of another format, validated as the v1 sample it becomes.

        ``where`` prefixes reject details ("entry 2: "); ``item`` is the record as sent, kept with
        its rejects, or None when it is the whole payload.
        """
        problems: list[tuple[str, str]] = []
        try:
            result = convert()
            if result is None:
                return  # valid, and holds nothing to store (a FHIR panel of other Observations)
            ts_us, offset_min = self._converted_time(result, received_us)
        except DecodeError as exc:
            problems.append((exc.reason, exc.detail))
        else:
            fields = result.fields
            self._fields(fields, _CONVERTED_FIELDS, ts_us, offset_min, code, received_us, problems)
            problems.extend((p.reason, p.detail) for p in result.problems)
        if problems:
            self._set_aside(problems, where, item, topic, device_id, payload, received_us)

    def _fields(
        self,
        obj: Mapping[str, Any],  # JSON values, narrowed by type() checks mypy does not follow
        table: dict[str, tuple[int, int, float, float]],
        ts_us: int,
        offset_min: int,
        code: int,
        received_us: int,
        problems: list[tuple[str, str]],
    ) -> None:
        """Append a sample's rows, field by field; add a problem for each field that is wrong."""
        codes, metrics, times, values = self.codes, self.metric, self.ts, self.value
        n_before = len(times)
        for name, value in obj.items():
            spec = table.get(name)
            if spec is None:
                if name == "seq" and table is _FIELDS:
                    if type(value) is int and 0 <= value < 2**63:
                        self.seqs.append((code, value, received_us))
                    else:
                        problems.append(
                            ("wrong type", f"seq {_show(value)}: expected a non-negative integer")
                        )
                elif name != "ts" and name != "device_id":  # noqa: PLR1714 - hot: no tuple
                    problems.append(("unknown field", f"unknown field {_show(name)}"))
                continue
            metric, kind, low, high = spec
            kind_of = type(value)
            # Inline fast path for the commonest case: a plain number in range.
            if kind == _NUMBER and (kind_of is float or kind_of is int) and low <= value <= high:
                codes.append(code)
                metrics.append(metric)
                times.append(ts_us)
                values.append(value)
                continue
            try:
                if kind == _RR:
                    beats = _beat_times(value, ts_us)
                    codes.extend([code] * len(beats))
                    metrics.extend([metric] * len(beats))
                    times.extend(beats)
                    values.extend(value)
                else:
                    number = _number(name, kind, value, low, high)
                    codes.append(code)
                    metrics.append(metric)
                    times.append(ts_us)
                    values.append(number)
            except DecodeError as exc:
                problems.append((exc.reason, exc.detail))
        added = len(times) - n_before
        if added:
            self.offset.extend([offset_min] * added)
            self.received.extend([received_us] * added)

    def _set_aside(
        self,
        problems: list[tuple[str, str]],
        where: str,
        item: object,
        topic: str,
        device_id: str,
        payload: bytes,
        received_us: int,
    ) -> None:
        """Reject each problem of one sample or record, with one copy of it (or of the payload)."""
        raw = bytes(payload[:RAW_LIMIT]) if item is None else _dump(item, payload)
        self.rejected.extend(
            Rejected(topic, device_id, reason, where + detail, raw, received_us)
            for reason, detail in problems
        )

    def _header(self, obj: object, device_id: str, received_us: int) -> tuple[int, int]:
        """Return the sample's ``(ts_us, utc_offset_min)``; raise DecodeError to reject it whole."""
        if type(obj) is not dict:
            raise DecodeError("not an object", f"{_is('sample', obj)}, expected an object")
        claimed = obj.get("device_id", _MISSING)
        if claimed is not _MISSING and claimed != device_id:
            raise DecodeError(
                "device mismatch",
                f"device_id {_show(claimed)} does not match the topic's {device_id!r}",
            )
        ts = obj.get("ts", _MISSING)
        ts_us, offset_min = _timestamp(ts)
        if ts_us - received_us > self.max_future_us:
            raise self._future(f"ts {_show(ts)}", ts_us, received_us)
        return ts_us, offset_min

    def _converted_time(self, result: Converted, received_us: int) -> tuple[int, int]:
        """Return a converted record's ``(ts_us, utc_offset_min)``, held to the rules of ``ts``."""
        ts_us, offset_min = _timestamp(result.ts, result.ts_field)
        ts_us += result.ts_shift_us
        if result.start is not None:
            start_us, _ = _timestamp(result.start, result.start_field)
            if start_us > ts_us:
                raise DecodeError(
                    "bad timestamp",
                    f"{result.start_field} {_show(result.start)} is after {result.ts_field} "
                    f"{_show(result.ts)}: the interval ends before it starts",
                )
        if ts_us - received_us > self.max_future_us:
            shown = _show(result.ts) + (" plus its duration" if result.ts_shift_us else "")
            raise self._future(f"{result.ts_field} {shown}", ts_us, received_us)
        return ts_us, offset_min

    def _future(self, shown: str, ts_us: int, received_us: int) -> DecodeError:
        return DecodeError(
            "future timestamp",
            f"{shown} is {(ts_us - received_us) / 1e6:.0f} s after the message "
            f"was received (tolerance {self.max_future_us / 1e6:g} s): is the clock set?",
        )

    def readings(self) -> tuple[Readings, int]:
        """Build the columns, first row of each (device, metric, time) kept; count the others."""
        n = len(self.ts)
        if n == 0:
            return Readings.empty(), 0
        codes = np.array(self.codes, dtype=np.int64)
        metric = np.array(self.metric, dtype=np.int16)
        ts_us = np.array(self.ts, dtype=np.int64)
        keep: npt.NDArray[np.intp] | None = None
        duplicates = 0
        if n > 1:
            # Stable sort with row number as the last tie-break: the first delivery wins.
            order = np.lexsort((np.arange(n), ts_us, metric, codes))
            first = np.empty(n, dtype=np.bool_)
            first[0] = True
            c, m, t = codes[order], metric[order], ts_us[order]
            first[1:] = (c[1:] != c[:-1]) | (m[1:] != m[:-1]) | (t[1:] != t[:-1])
            duplicates = n - int(first.sum())
            if duplicates:
                keep = np.sort(order[first])
        table = np.empty(len(self.devices), dtype=object)
        table[:] = list(self.devices)
        readings = Readings(
            device_id=table[codes],
            patient_id=np.full(n, "", dtype=object),
            metric=metric,
            ts_us=ts_us,
            value=np.array(self.value, dtype=np.float64),
            utc_offset_min=np.array(self.offset, dtype=np.int16),
            received_us=np.array(self.received, dtype=np.int64),
        )
        return (readings if keep is None else readings.take(keep)), duplicates


def _timestamp(value: object, name: str = "ts") -> tuple[int, int]:
    """Return ``(ts_us, utc_offset_min)`` from a wire ``ts``; raise DecodeError if unusable.

    ``name`` is the field named in reject details: "ts", or where another format keeps its time.
    """
    if isinstance(value, str):
        if _RFC3339.fullmatch(value) is None:
            raise DecodeError(
                "bad timestamp",
                f"{name} {_show(value)} is not an RFC 3339 date-time with an offset "
                "(like 2026-11-28T10:00:00+01:00 or 2026-11-28T09:00:00Z)",
            )
        # The offset is read here and the rest parsed as a naive time, then both are combined in
        # integer arithmetic: several times faster than aware-datetime subtraction, and exact.
        if value[-1] in "Zz":
            local, offset_min = value[:-1], 0
        else:
            local, offset_min = value[:-6], _OFFSET_MIN.get(value[-6:], _BAD_OFFSET)
            if offset_min == _BAD_OFFSET:
                raise DecodeError(
                    "bad timestamp", f"{name} {_show(value)} has an offset beyond ±23:59"
                )
        try:
            when = datetime.fromisoformat(local)
        except ValueError as exc:  # e.g. month 13, hour 24, leap second 60
            raise DecodeError(
                "bad timestamp", f"{name} {_show(value)} is not a real time: {exc}"
            ) from None
        seconds = (when.toordinal() - _EPOCH_ORDINAL) * 86_400 - offset_min * 60
        seconds += when.hour * 3600 + when.minute * 60 + when.second
        ts_us = seconds * 1_000_000 + when.microsecond
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise DecodeError("bad timestamp", f"{name} {_show(value)} is not a finite number")
        if not 0 <= value < _Y10000_S:  # -1e302 s would overflow to -inf in microseconds
            raise DecodeError("bad timestamp", _epoch_out_of_range(name, value))
        ts_us = value * 1_000_000 if isinstance(value, int) else round(value * 1_000_000)
        offset_min = 0
    elif value is _MISSING:
        raise DecodeError("bad timestamp", f"{name} is missing")
    else:
        raise DecodeError(
            "bad timestamp",
            f"{_is(name, value)}, expected an RFC 3339 string or epoch seconds",
        )
    if ts_us < _Y2000_US:
        raise DecodeError("bad timestamp", f"{name} {_show(value)} is before the year 2000")
    return ts_us, offset_min


def _epoch_out_of_range(name: str, value: float) -> str:
    if value < 0:
        return f"{name} {_show(value)} is before the year 2000"
    return f"{name} {_show(value)} in epoch seconds is after the year 9999 (milliseconds sent?)"


def _number(name: str, kind: int, value: object, low: float, high: float) -> float:
    """Return a scalar field's value as stored; raise DecodeError if its type or value is wrong."""
    # bool first throughout: true is a boolean in JSON but an int in Python.
    if kind == _NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DecodeError("wrong type", _wrong(name, value, "a number"))
        if low <= value <= high:
            return value
        raise DecodeError("impossible value", _impossible(name, value, low, high))
    if kind == _FLAG:
        if isinstance(value, bool):
            return 1.0 if value else 0.0
        raise DecodeError("wrong type", _wrong(name, value, "true or false"))
    if kind == _LEVEL:
        if not isinstance(value, str):
            raise DecodeError("wrong type", _wrong(name, value, "one of the strings A, C, V, P, U"))
        level = _LEVEL_INDEX.get(value)
        if level is None:
            raise DecodeError(
                "impossible value",
                f"{name} {_show(value)} is not one of {', '.join(CONSCIOUSNESS_LEVELS)}",
            )
        return level
    # A count. JSON has one number type, so 12.0 is the count 12; 12.5 is not a count.
    if isinstance(value, bool) or not (
        isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    ):
        raise DecodeError("wrong type", _wrong(name, value, "a whole number"))
    if low <= value <= high:
        return value
    raise DecodeError("impossible value", _impossible(name, value, low, high))


def _beat_times(rr: object, ts_us: int) -> list[int]:
    """Return each beat's time in µs: the last interval ends at ``ts``, each earlier one before it.

    Beat k's time is ts − sum(rr[k+1:]). Each interval is rounded to whole µs before summing, so
    the arithmetic is exact integers and the same intervals always give the same times.
    """
    if type(rr) is not list:
        raise DecodeError("wrong type", _wrong("rr_intervals_ms", rr, "an array of numbers"))
    times = [0] * len(rr)
    elapsed_us = 0
    for k in range(len(rr) - 1, -1, -1):
        interval = rr[k]
        kind_of = type(interval)
        if (kind_of is float or kind_of is int) and _RR_LOW <= interval <= _RR_HIGH:
            times[k] = ts_us - elapsed_us
            elapsed_us += round(interval * 1000)
            continue
        name = f"rr_intervals_ms[{k}]"
        if kind_of is not float and kind_of is not int:
            raise DecodeError("wrong type", _wrong(name, interval, "a number"))
        raise DecodeError("impossible value", _impossible(name, interval, _RR_LOW, _RR_HIGH))
    return times


def _wrong(name: str, value: object, expected: str) -> str:
    return f"{_is(name, value)}, expected {expected}"


def _impossible(name: str, value: object, low: float, high: float) -> str:
    unit = PLAUSIBLE[Metric.from_wire(name.split("[", 1)[0])].unit
    if isinstance(value, float) and not math.isfinite(value):
        return f"{name} {_show(value)} is not a finite number"
    return f"{name} {_show(value)} outside plausible range {low:g}–{high:g} {unit}"


def _dump(item: object, payload: bytes) -> bytes:
    """Serialise one array item for quarantine, or fall back to the payload it came in."""
    try:
        # orjson writes at most 254 levels of nesting but reads 1024.
        return orjson.dumps(item)[:RAW_LIMIT]
    except orjson.JSONEncodeError:
        return bytes(payload[:RAW_LIMIT])
