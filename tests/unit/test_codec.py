"""Wire format v1: every rule in docs/wire-format.md, then properties over generated input."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TypeGuard

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ingest.codec import (
    RAW_LIMIT,
    REASONS,
    Decoded,
    DecodeError,
    Rejected,
    decode_batch,
    device_from_topic,
    encode_samples,
)
from signals.vitals import CONSCIOUSNESS_LEVELS, PLAUSIBLE, Metric

DEVICE = "ox-0042"
TOPIC = f"wardwatch/v1/devices/{DEVICE}/vitals"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)
RECEIVED_AT = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def us(when: datetime) -> int:
    """Microseconds since the epoch, computed independently of the codec."""
    return (when - EPOCH) // ONE_US


RECEIVED = us(RECEIVED_AT)
TS = "2026-11-28T11:59:00Z"
TS_US = us(datetime(2026, 11, 28, 11, 59, tzinfo=UTC))


def decode(payload: bytes | object, topic: str = TOPIC, **kwargs: int) -> Decoded:
    """Decode one message; a non-bytes payload is JSON-encoded first."""
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return decode_batch([(topic, raw, RECEIVED)], **kwargs)


def rows(decoded: Decoded) -> list[tuple[str, Metric, int, float, int]]:
    r = decoded.readings
    return [
        (str(r.device_id[i]), Metric(int(r.metric[i])), int(r.ts_us[i]), float(r.value[i]),
         int(r.utc_offset_min[i]))
        for i in range(len(r))
    ]  # fmt: skip


def reasons(decoded: Decoded) -> list[str]:
    return [r.reason for r in decoded.rejected]


def check_invariants(decoded: Decoded, max_future_us: int = 300_000_000) -> None:
    """What must hold whatever came in."""
    for rejected in decoded.rejected:
        assert isinstance(rejected, Rejected)
        assert rejected.reason in REASONS
        assert rejected.reason != "unknown device"  # applied by ingest, not the codec
        assert isinstance(rejected.raw, bytes)
        assert len(rejected.raw) <= RAW_LIMIT
        assert rejected.detail
    r = decoded.readings
    n = len(r)
    assert all(len(col) == n for col in (r.device_id, r.patient_id, r.metric, r.value))
    assert all(len(col) == n for col in (r.utc_offset_min, r.received_us))
    assert r.metric.dtype == np.int16
    assert r.ts_us.dtype == np.int64
    assert r.value.dtype == np.float64
    assert all(p == "" for p in r.patient_id)
    for metric_code, value in zip(r.metric.tolist(), r.value.tolist(), strict=True):
        assert PLAUSIBLE[Metric(metric_code)].contains(value)
    assert np.all(r.ts_us - r.received_us <= max_future_us)
    keys = set(zip(r.device_id.tolist(), r.metric.tolist(), r.ts_us.tolist(), strict=True))
    assert len(keys) == n, "duplicates left in the batch"


# --- topics ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "device"),
    [
        (TOPIC, DEVICE),
        ("wardwatch/v1/devices/a/vitals", "a"),
        ("wardwatch/v1/devices/A.b_c-9/vitals", "A.b_c-9"),
        (f"wardwatch/v1/devices/{'x' * 64}/vitals", "x" * 64),
    ],
)
def test_device_from_topic(topic: str, device: str) -> None:
    assert device_from_topic(topic) == device


@pytest.mark.parametrize(
    "topic",
    [
        "",
        "wardwatch/v1/devices//vitals",
        f"wardwatch/v1/devices/{'x' * 65}/vitals",
        "wardwatch/v1/devices/ox 42/vitals",
        "wardwatch/v1/devices/ox+42/vitals",
        "wardwatch/v1/devices/ox/42/vitals",
        "wardwatch/v1/devices/oxé/vitals",
        "wardwatch/v2/devices/ox/vitals",
        "wardwatch/v1/devices/ox/vitals/",
        "wardwatch/v1/devices/ox/vitals\n",
        "/wardwatch/v1/devices/ox/vitals",
        "wardwatch/v1/devices/ox/status",
    ],
)
def test_bad_topic_rejects_the_message(topic: str) -> None:
    with pytest.raises(DecodeError) as caught:
        device_from_topic(topic)
    assert caught.value.reason == "bad topic"

    decoded = decode({"ts": TS, "heart_rate": 72}, topic=topic)
    assert len(decoded.readings) == 0
    [rejected] = decoded.rejected
    assert rejected.reason == "bad topic"
    assert rejected.device_id is None
    assert rejected.topic == topic


def test_decode_error_only_takes_known_reasons() -> None:
    with pytest.raises(ValueError, match="unknown reject reason"):
        DecodeError("bad vibes", "x")
    exc = DecodeError("wrong type", "spo2 is null")
    assert (exc.reason, exc.detail) == ("wrong type", "spo2 is null")


# --- what is stored ----------------------------------------------------------------------------


def test_every_field_is_stored_with_its_code_and_unit() -> None:
    decoded = decode(
        {
            "ts": TS,
            "heart_rate": 72,
            "spo2": 97.5,
            "resp_rate": 16,
            "temperature": 36.8,
            "systolic_bp": 121,
            "diastolic_bp": 79,
            "steps": 12,
            "on_oxygen": True,
            "consciousness": "V",
            "battery": 80.5,
            "worn": False,
            "device_id": DEVICE,
        }
    )
    assert decoded.rejected == ()
    assert rows(decoded) == [
        (DEVICE, Metric.HEART_RATE, TS_US, 72.0, 0),
        (DEVICE, Metric.SPO2, TS_US, 97.5, 0),
        (DEVICE, Metric.RESP_RATE, TS_US, 16.0, 0),
        (DEVICE, Metric.TEMPERATURE, TS_US, 36.8, 0),
        (DEVICE, Metric.SYSTOLIC_BP, TS_US, 121.0, 0),
        (DEVICE, Metric.DIASTOLIC_BP, TS_US, 79.0, 0),
        (DEVICE, Metric.STEPS, TS_US, 12.0, 0),
        (DEVICE, Metric.ON_OXYGEN, TS_US, 1.0, 0),
        (DEVICE, Metric.CONSCIOUSNESS, TS_US, 2.0, 0),
        (DEVICE, Metric.BATTERY, TS_US, 80.5, 0),
        (DEVICE, Metric.WORN, TS_US, 0.0, 0),
    ]
    assert decoded.readings.received_us.tolist() == [RECEIVED] * 11
    check_invariants(decoded)


@pytest.mark.parametrize(("level", "index"), [(c, i) for i, c in enumerate(CONSCIOUSNESS_LEVELS)])
def test_consciousness_is_stored_as_its_acvpu_index(level: str, index: int) -> None:
    assert rows(decode({"ts": TS, "consciousness": level})) == [
        (DEVICE, Metric.CONSCIOUSNESS, TS_US, float(index), 0)
    ]


@pytest.mark.parametrize(
    ("ts", "ts_us", "offset_min"),
    [
        ("2026-11-28T10:00:00+01:00", us(datetime(2026, 11, 28, 9, tzinfo=UTC)), 60),
        ("2026-11-28T14:30:00+05:30", us(datetime(2026, 11, 28, 9, tzinfo=UTC)), 330),
        ("2026-11-28T06:00:00-03:00", us(datetime(2026, 11, 28, 9, tzinfo=UTC)), -180),
        ("2026-11-28T09:00:00-00:00", us(datetime(2026, 11, 28, 9, tzinfo=UTC)), 0),
        ("2026-11-28T09:00:00Z", us(datetime(2026, 11, 28, 9, tzinfo=UTC)), 0),
        ("2026-11-28t09:00:00z", us(datetime(2026, 11, 28, 9, tzinfo=UTC)), 0),
        ("2026-11-28 09:00:00Z", us(datetime(2026, 11, 28, 9, tzinfo=UTC)), 0),
        ("2026-11-29T08:59:00+23:59", us(datetime(2026, 11, 28, 9, tzinfo=UTC)), 1439),
        ("2026-11-28T09:00:00.5Z", us(datetime(2026, 11, 28, 9, 0, 0, 500_000, tzinfo=UTC)), 0),
        ("2026-11-28T09:00:00.123456Z", us(datetime(2026, 11, 28, 9, 0, 0, 123456, tzinfo=UTC)), 0),
        # Beyond microseconds is truncated, not rounded (as Python's datetime does).
        (
            "2026-11-28T09:00:00.1234567Z",
            us(datetime(2026, 11, 28, 9, 0, 0, 123456, tzinfo=UTC)),
            0,
        ),
        ("2000-01-01T00:00:00Z", us(datetime(2000, 1, 1, tzinfo=UTC)), 0),
        # Epoch seconds are UTC; offset 0.
        (1_795_856_400, us(datetime(2026, 11, 28, 9, tzinfo=UTC)), 0),
        (1_795_856_400.25, us(datetime(2026, 11, 28, 9, 0, 0, 250_000, tzinfo=UTC)), 0),
        (1_795_856_400.000001, us(datetime(2026, 11, 28, 9, 0, 0, 1, tzinfo=UTC)), 0),
        (946_684_800, us(datetime(2000, 1, 1, tzinfo=UTC)), 0),
    ],
)
def test_timestamps_keep_the_instant_and_the_offset(
    ts: str | float, ts_us: int, offset_min: int
) -> None:
    decoded = decode({"ts": ts, "heart_rate": 72})
    assert decoded.rejected == ()
    assert rows(decoded) == [(DEVICE, Metric.HEART_RATE, ts_us, 72.0, offset_min)]


def test_rr_intervals_are_one_row_per_beat_ending_at_ts() -> None:
    decoded = decode({"ts": TS, "rr_intervals_ms": [800, 1000.5, 600], "heart_rate": 70})
    assert decoded.rejected == ()
    assert rows(decoded) == [
        (DEVICE, Metric.RR_INTERVAL, TS_US - 1_600_500, 800.0, 0),
        (DEVICE, Metric.RR_INTERVAL, TS_US - 600_000, 1000.5, 0),
        (DEVICE, Metric.RR_INTERVAL, TS_US, 600.0, 0),
        (DEVICE, Metric.HEART_RATE, TS_US, 70.0, 0),
    ]


def test_empty_rr_list_and_sample_without_readings_are_not_errors() -> None:
    decoded = decode([{"ts": TS, "rr_intervals_ms": []}, {"ts": TS}])
    assert decoded.rejected == ()
    assert len(decoded.readings) == 0


def test_steps_accepts_a_whole_float() -> None:
    assert rows(decode({"ts": TS, "steps": 12.0})) == [(DEVICE, Metric.STEPS, TS_US, 12.0, 0)]


def test_plausible_bounds_are_inclusive() -> None:
    sample: dict[str, object] = {"ts": TS, "heart_rate": 20, "spo2": 100, "temperature": 45.0}
    decoded = decode(sample)
    assert decoded.rejected == ()
    assert [v for *_, v, _ in rows(decoded)] == [20.0, 100.0, 45.0]


def test_array_payload_and_several_devices_in_one_batch() -> None:
    other = "wardwatch/v1/devices/bp-7/vitals"
    decoded = decode_batch(
        [
            (
                TOPIC,
                encode_samples([{"ts": TS, "heart_rate": 70}, {"ts": 1_795_860_000}]),
                RECEIVED,
            ),
            (other, encode_samples([{"ts": TS, "systolic_bp": 130}]), RECEIVED + 1),
            (TOPIC, orjson.dumps({"ts": TS, "spo2": 96}), RECEIVED + 2),
        ]
    )
    assert decoded.rejected == ()
    r = decoded.readings
    assert r.device_id.tolist() == [DEVICE, "bp-7", DEVICE]
    assert r.metric.tolist() == [Metric.HEART_RATE, Metric.SYSTOLIC_BP, Metric.SPO2]
    assert r.received_us.tolist() == [RECEIVED, RECEIVED + 1, RECEIVED + 2]


def test_empty_batch() -> None:
    decoded = decode_batch([])
    assert len(decoded.readings) == 0
    assert decoded.rejected == ()
    assert decoded.duplicates == 0


# --- duplicates --------------------------------------------------------------------------------


def test_duplicate_rows_are_stored_once_first_wins_and_are_counted() -> None:
    first = orjson.dumps([{"ts": TS, "heart_rate": 70, "spo2": 97}])
    again = orjson.dumps([{"ts": TS, "heart_rate": 99}, {"ts": TS, "resp_rate": 15}])
    other_device = "wardwatch/v1/devices/other/vitals"
    decoded = decode_batch(
        [
            (TOPIC, first, RECEIVED),
            (TOPIC, again, RECEIVED + 1),
            (TOPIC, first, RECEIVED + 2),
            (other_device, again, RECEIVED + 3),
        ]
    )
    assert decoded.rejected == ()  # redelivery is normal, not an error
    assert decoded.duplicates == 3
    assert [(d, m, v) for d, m, _, v, _ in rows(decoded)] == [
        (DEVICE, Metric.HEART_RATE, 70.0),
        (DEVICE, Metric.SPO2, 97.0),
        (DEVICE, Metric.RESP_RATE, 15.0),
        ("other", Metric.HEART_RATE, 99.0),
        ("other", Metric.RESP_RATE, 15.0),
    ]
    assert (decoded.readings.received_us - RECEIVED).tolist() == [0, 0, 1, 3, 3]


def test_same_instant_in_two_offsets_is_a_duplicate() -> None:
    decoded = decode(
        [
            {"ts": "2026-11-28T10:00:00+01:00", "heart_rate": 70},
            {"ts": "2026-11-28T09:00:00Z", "heart_rate": 71},
        ]
    )
    assert decoded.duplicates == 1
    assert rows(decoded) == [
        (DEVICE, Metric.HEART_RATE, us(datetime(2026, 11, 28, 9, tzinfo=UTC)), 70.0, 60)
    ]


# --- rejects -----------------------------------------------------------------------------------

GOOD = {"ts": TS, "heart_rate": 72}
REJECT_CASES: list[tuple[str, bytes | object, str, str]] = [
    # (id, payload, reason, words expected in the detail)
    ("invalid utf-8", b'{"ts": "\xff"}', "invalid utf-8", "byte 8"),
    ("utf-16", '{"ts": 1}'.encode("utf-16"), "invalid utf-8", "not valid UTF-8"),
    ("truncated json", b'{"ts": ', "invalid json", "not JSON"),
    ("trailing comma", b'[{"ts": 1},]', "invalid json", "not JSON"),
    ("NaN text", b'{"ts": "2026-11-28T11:59:00Z", "heart_rate": NaN}', "invalid json", "JSON"),
    ("Infinity text", b'{"ts": 1e999}', "invalid json", "JSON"),
    ("empty payload", b"", "invalid json", "JSON"),
    ("lone surrogate", b'{"ts": "\\ud800"}', "invalid json", "JSON"),
    ("number payload", 42, "not an object", "payload 42 is a number"),
    ("string payload", "hello", "not an object", "a string"),
    ("null payload", None, "not an object", "payload is null"),
    ("empty array", [], "not an object", "empty array"),
    ("array item not an object", [[GOOD]], "not an object", "item 0: sample is an array"),
    ("ts missing", {"heart_rate": 72}, "bad timestamp", "ts is missing"),
    ("ts null", {"ts": None}, "bad timestamp", "ts is null"),
    ("ts bool", {"ts": True}, "bad timestamp", "ts true is a boolean"),
    ("ts array", {"ts": [2026]}, "bad timestamp", "ts is an array"),
    ("ts without offset", {"ts": "2026-11-28T11:59:00"}, "bad timestamp", "with an offset"),
    ("ts date only", {"ts": "2026-11-28"}, "bad timestamp", "RFC 3339"),
    ("ts basic format", {"ts": "20261128T115900Z"}, "bad timestamp", "RFC 3339"),
    ("ts week date", {"ts": "2026-W48-6T11:59:00Z"}, "bad timestamp", "RFC 3339"),
    ("ts minutes only", {"ts": "2026-11-28T11:59Z"}, "bad timestamp", "RFC 3339"),
    ("ts comma fraction", {"ts": "2026-11-28T11:59:00,5Z"}, "bad timestamp", "RFC 3339"),
    ("ts offset seconds", {"ts": "2026-11-28T11:59:00+01:00:30"}, "bad timestamp", "RFC 3339"),
    ("ts offset no colon", {"ts": "2026-11-28T11:59:00+0100"}, "bad timestamp", "RFC 3339"),
    ("ts offset 24h", {"ts": "2026-11-28T11:59:00+24:00"}, "bad timestamp", "±23:59"),
    ("ts offset 60min", {"ts": "2026-11-28T11:59:00+01:60"}, "bad timestamp", "±23:59"),
    ("ts unicode digits", {"ts": "２０２６-11-28T11:59:00Z"}, "bad timestamp", "RFC 3339"),
    ("ts month 13", {"ts": "2026-13-28T11:59:00Z"}, "bad timestamp", "not a real time"),
    ("ts 30 february", {"ts": "2026-02-30T11:59:00Z"}, "bad timestamp", "not a real time"),
    ("ts hour 24", {"ts": "2026-11-28T24:00:00Z"}, "bad timestamp", "not a real time"),
    ("ts leap second", {"ts": "2016-12-31T23:59:60Z"}, "bad timestamp", "not a real time"),
    ("ts before 2000", {"ts": "1999-12-31T23:59:59Z"}, "bad timestamp", "before the year 2000"),
    ("ts before 2000 by offset", {"ts": "2000-01-01T00:30:00+01:00"}, "bad timestamp", "2000"),
    ("epoch zero", {"ts": 0}, "bad timestamp", "before the year 2000"),
    ("epoch negative", {"ts": -1.5}, "bad timestamp", "before the year 2000"),
    # Found by the fuzz test: microseconds of -1.8e302 s overflow to -inf, and round() raised.
    ("epoch hugely negative", {"ts": -1.797693134862316e302}, "bad timestamp",
     "before the year 2000"),
    ("epoch milliseconds", {"ts": 1_795_860_000_000}, "bad timestamp", "milliseconds"),
    ("epoch huge", {"ts": 1.8e19}, "bad timestamp", "after the year 9999"),
    ("epoch as string", {"ts": "1795860000"}, "bad timestamp", "RFC 3339"),
    ("ts future", {"ts": "2026-11-28T12:05:00.000001Z"}, "future timestamp", "300 s after"),
    ("ts far future", {"ts": "9999-12-31T23:59:59Z"}, "future timestamp", "clock"),
    ("epoch future", {"ts": RECEIVED // 1_000_000 + 301}, "future timestamp", "after the message"),
    ("device mismatch", {"ts": TS, "device_id": "ox-0043"}, "device mismatch", "'ox-0043'"),
    ("device_id number", {"ts": TS, "device_id": 42}, "device mismatch", "device_id 42"),
    ("device_id null", {"ts": TS, "device_id": None}, "device mismatch", "device_id null"),
    ("unknown field", {"ts": TS, "hr": 72}, "unknown field", "unknown field 'hr'"),
    ("field case matters", {"ts": TS, "Heart_Rate": 72}, "unknown field", "'Heart_Rate'"),
    ("number as string", {"ts": TS, "temperature": "hot"}, "wrong type",
     "temperature 'hot' is a string, expected a number"),
    ("number as digits", {"ts": TS, "spo2": "97"}, "wrong type", "spo2 '97' is a string"),
    ("number as bool", {"ts": TS, "heart_rate": True}, "wrong type",
     "heart_rate true is a boolean"),
    ("number as null", {"ts": TS, "spo2": None}, "wrong type", "spo2 is null, expected a number"),
    ("number as array", {"ts": TS, "spo2": [97]}, "wrong type", "spo2 is an array"),
    ("number as object", {"ts": TS, "spo2": {"v": 97}}, "wrong type", "spo2 is an object"),
    ("flag as int", {"ts": TS, "worn": 1}, "wrong type",
     "worn 1 is a number, expected true or false"),
    ("flag as string", {"ts": TS, "on_oxygen": "true"}, "wrong type",
     "on_oxygen 'true' is a string"),
    ("level as number", {"ts": TS, "consciousness": 0}, "wrong type",
     "consciousness 0 is a number"),
    ("steps fraction", {"ts": TS, "steps": 2.5}, "wrong type", "expected a whole number"),
    ("steps bool", {"ts": TS, "steps": False}, "wrong type", "steps false is a boolean"),
    ("rr not a list", {"ts": TS, "rr_intervals_ms": 800}, "wrong type",
     "rr_intervals_ms 800 is a number, expected an array of numbers"),
    ("rr element string", {"ts": TS, "rr_intervals_ms": [800, "900"]}, "wrong type",
     "rr_intervals_ms[1] '900' is a string"),
    ("rr element bool", {"ts": TS, "rr_intervals_ms": [True, 800]}, "wrong type",
     "rr_intervals_ms[0] true is a boolean"),
    ("rr element nested", {"ts": TS, "rr_intervals_ms": [[800]]}, "wrong type", "is an array"),
    ("heart rate zero", {"ts": TS, "heart_rate": 0}, "impossible value",
     "heart_rate 0 outside plausible range 20–300 beats/min"),
    ("spo2 over 100", {"ts": TS, "spo2": 100.5}, "impossible value", "spo2 100.5 outside"),
    ("temperature in °F", {"ts": TS, "temperature": 98.6}, "impossible value", "25–45 °C"),
    ("negative steps", {"ts": TS, "steps": -1}, "impossible value", "0–100000 steps"),
    ("battery 101", {"ts": TS, "battery": 101}, "impossible value", "battery 101"),
    ("huge integer", {"ts": TS, "heart_rate": 18446744073709551615}, "impossible value", "outside"),
    ("huge number", b'{"ts": 1795859940, "heart_rate": 1e300}', "impossible value", "1e+300"),
    ("level lower case", {"ts": TS, "consciousness": "a"}, "impossible value",
     "consciousness 'a' is not one of A, C, V, P, U"),
    ("level word", {"ts": TS, "consciousness": "Alert"}, "impossible value", "not one of"),
    ("rr too short", {"ts": TS, "rr_intervals_ms": [800, 100, 800]}, "impossible value",
     "rr_intervals_ms[1] 100 outside plausible range 200–3000 ms"),
    # Only converted from other formats (docs/formats.md); v1's fields are fixed until v2.
    ("sleep minutes in v1", {"ts": TS, "sleep_minutes": 420}, "unknown field", "'sleep_minutes'"),
    # The reasons other formats bring; tests/unit/test_formats.py has the rest.
    ("omh unknown schema", {"header": {"schema_id": {"namespace": "omh", "name": "blood-glucose",
     "version": "2.0"}}, "body": {}}, "unknown metric", "'omh:blood-glucose:2.0'"),
    ("fhir entered in error", {"resourceType": "Observation", "status": "entered-in-error"},
     "not a measurement", "status 'entered-in-error'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("payload", "reason", "detail"),
    [pytest.param(p, r, d, id=i) for i, p, r, d in REJECT_CASES],
)
def test_reject(payload: bytes | object, reason: str, detail: str) -> None:
    decoded = decode(payload)
    assert reasons(decoded) == [reason]
    [rejected] = decoded.rejected
    assert detail in rejected.detail
    assert rejected.topic == TOPIC
    assert rejected.device_id == DEVICE
    assert rejected.received_us == RECEIVED
    assert len(decoded.readings) == 0
    check_invariants(decoded)


def test_every_codec_reason_has_a_case() -> None:
    covered = {reason for _, _, reason, _ in REJECT_CASES} | {"bad topic", "payload too large"}
    assert covered == REASONS - {"unknown device"}


def test_payload_size_cap_is_inclusive() -> None:
    payload = orjson.dumps(GOOD)
    assert reasons(decode(payload, max_payload_bytes=len(payload))) == []
    decoded = decode(payload, max_payload_bytes=len(payload) - 1)
    assert reasons(decoded) == ["payload too large"]
    assert (
        decoded.rejected[0].detail
        == f"payload is {len(payload)} bytes, the limit is {len(payload) - 1}"
    )


def test_default_size_cap_is_256_kib() -> None:
    samples = [{"ts": 1_795_859_940 - i, "heart_rate": 72} for i in range(12_000)]
    payload = encode_samples(samples)
    assert len(payload) > 262_144
    decoded = decode(payload)
    assert reasons(decoded) == ["payload too large"]
    assert decoded.rejected[0].raw == payload[:RAW_LIMIT]


def test_clock_skew_tolerance_is_inclusive_and_configurable() -> None:
    at_limit = RECEIVED + 300_000_000
    assert reasons(decode({"ts": at_limit / 1e6, "heart_rate": 72})) == []
    assert reasons(decode({"ts": (at_limit + 1) / 1e6, "heart_rate": 72})) == ["future timestamp"]
    assert reasons(decode({"ts": TS, "heart_rate": 72}, max_future_us=-61_000_001)) == [
        "future timestamp"
    ]
    # The past has no limit beyond the year 2000: a device may upload after days offline.
    assert reasons(decode({"ts": "2001-01-01T00:00:00Z", "heart_rate": 72})) == []


# --- granularity: nothing valid is lost --------------------------------------------------------


def test_bad_field_is_rejected_and_the_good_fields_kept() -> None:
    payload = orjson.dumps(
        {"ts": TS, "heart_rate": 72, "temperature": "hot", "spo2": 101, "hr": 1, "resp_rate": 16}
    )
    decoded = decode(payload)
    assert rows(decoded) == [
        (DEVICE, Metric.HEART_RATE, TS_US, 72.0, 0),
        (DEVICE, Metric.RESP_RATE, TS_US, 16.0, 0),
    ]
    assert [(r.reason, r.detail) for r in decoded.rejected] == [
        ("wrong type", "temperature 'hot' is a string, expected a number"),
        ("impossible value", "spo2 101 outside plausible range 50–100 %"),
        ("unknown field", "unknown field 'hr'"),
    ]
    assert all(r.raw == payload for r in decoded.rejected)  # the sample, for context


def test_bad_item_is_rejected_and_the_other_items_kept() -> None:
    items: list[object] = [
        {"ts": TS, "heart_rate": 70},
        42,
        {"ts": "yesterday", "heart_rate": 71},
        {"ts": "2026-11-28T11:58:00Z", "heart_rate": 72, "temperature": "hot"},
        {"ts": TS, "device_id": "intruder", "heart_rate": 73},
        {"ts": "2026-11-28T11:57:00Z", "heart_rate": 74},
    ]
    decoded = decode(items)
    assert [v for *_, v, _ in rows(decoded)] == [70.0, 72.0, 74.0]
    assert [(r.reason, r.detail.split(":")[0]) for r in decoded.rejected] == [
        ("not an object", "item 1"),
        ("bad timestamp", "item 2"),
        ("wrong type", "item 3"),
        ("device mismatch", "item 4"),
    ]
    assert decoded.rejected[2].detail == "item 3: temperature 'hot' is a string, expected a number"
    assert [r.raw for r in decoded.rejected] == [orjson.dumps(items[i]) for i in (1, 2, 3, 4)]


def test_rr_list_with_one_bad_element_is_rejected_whole_but_not_the_sample() -> None:
    decoded = decode({"ts": TS, "heart_rate": 72, "rr_intervals_ms": [800, 810, 5000, 790]})
    assert rows(decoded) == [(DEVICE, Metric.HEART_RATE, TS_US, 72.0, 0)]
    assert reasons(decoded) == ["impossible value"]


def test_raw_is_truncated() -> None:
    big = {"ts": TS, "note": "x" * 10_000}
    single = decode(big)
    assert single.rejected[0].raw == orjson.dumps(big)[:RAW_LIMIT]
    in_array = decode([GOOD, big])
    assert in_array.rejected[0].raw == orjson.dumps(big)[:RAW_LIMIT]
    assert in_array.rejected[0].detail == "item 1: unknown field 'note'"


def test_long_values_are_cut_short_in_the_detail() -> None:
    decoded = decode({"ts": TS, "x" * 1000: 1, "spo2": "y" * 1000})
    assert all(len(r.detail) < 200 for r in decoded.rejected)


def test_deep_nesting_never_raises() -> None:
    # orjson reads 1024 levels but writes only 254: the raw copy falls back to the payload.
    deep = b"[" * 1000 + b"]" * 1000
    decoded = decode(b"[" + deep + b"]")
    assert reasons(decoded) == ["not an object"]
    assert decoded.rejected[0].raw == b"[" + deep + b"]"
    assert reasons(decode(b"[" * 5000 + b"]" * 5000)) == ["invalid json"]
    assert reasons(decode(b'{"ts": 1795859940, "heart_rate": ' + deep + b"}")) == ["wrong type"]


# --- encode_samples ----------------------------------------------------------------------------


def test_encode_samples_writes_rfc3339_with_offsets_and_numpy_values() -> None:
    plus_one = timezone(timedelta(hours=1))
    payload = encode_samples(
        [
            {"ts": datetime(2026, 11, 28, 10, 0, 0, 250_000, tzinfo=plus_one),
             "spo2": np.float64(97)},
            {"ts": datetime(2026, 11, 28, 9, tzinfo=UTC), "rr_intervals_ms": np.array([800, 900])},
        ]
    )  # fmt: skip
    assert orjson.loads(payload) == [
        {"ts": "2026-11-28T10:00:00.250000+01:00", "spo2": 97.0},
        {"ts": "2026-11-28T09:00:00Z", "rr_intervals_ms": [800, 900]},
    ]


def test_encode_samples_refuses_a_naive_datetime() -> None:
    naive = datetime(2026, 11, 28, 9)  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="timezone-aware"):
        encode_samples([{"ts": naive, "heart_rate": 72}])


# --- properties --------------------------------------------------------------------------------

NUMBER_FIELDS = [
    Metric.HEART_RATE, Metric.SPO2, Metric.RESP_RATE, Metric.TEMPERATURE, Metric.SYSTOLIC_BP,
    Metric.DIASTOLIC_BP, Metric.BATTERY,
]  # fmt: skip


def _in_range(metric: Metric) -> st.SearchStrategy[float]:
    bounds = PLAUSIBLE[metric]
    as_int = st.integers(math.ceil(bounds.low), math.floor(bounds.high)).map(float)
    return as_int | st.floats(bounds.low, bounds.high, allow_nan=False, allow_infinity=False)


VALUES: dict[Metric, st.SearchStrategy[object]] = {m: _in_range(m) for m in NUMBER_FIELDS}
VALUES[Metric.STEPS] = st.integers(0, 100_000)
VALUES[Metric.ON_OXYGEN] = st.booleans()
VALUES[Metric.WORN] = st.booleans()
VALUES[Metric.CONSCIOUSNESS] = st.sampled_from(CONSCIOUSNESS_LEVELS)
VALUES[Metric.RR_INTERVAL] = st.lists(_in_range(Metric.RR_INTERVAL), max_size=20)

OFFSETS = st.integers(-1439, 1439).map(lambda m: timezone(timedelta(minutes=m)))
# Bounds are local (naive) times in the drawn offset: a day's margin each side keeps every instant
# after 2000-01-01Z and before RECEIVED_AT whatever the offset.
TIMES = st.datetimes(
    min_value=datetime(2000, 1, 2),  # noqa: DTZ001 - hypothesis takes naive bounds
    max_value=datetime(2026, 11, 27, 12, 0),  # noqa: DTZ001
    timezones=OFFSETS,
)


# Metrics a v1 sample may carry: sleep minutes only arrive converted from Open mHealth, and the
# accelerometer's minute summaries are derived by wardwatch itself (signals.motion).
NOT_V1 = {Metric.SLEEP_MINUTES, Metric.ACTIVITY_MG, Metric.INACTIVE}
V1_METRICS = [m for m in Metric if m not in NOT_V1]


@st.composite
def samples(draw: st.DrawFn) -> dict[str, object]:
    metrics = draw(st.lists(st.sampled_from(V1_METRICS), unique=True))
    sample: dict[str, object] = {"ts": draw(TIMES)}
    for metric in metrics:
        sample[metric.wire_name] = draw(VALUES[metric])
    if draw(st.booleans()):
        sample["device_id"] = DEVICE
    return sample


def expected_rows(batch: list[dict[str, object]]) -> list[tuple[str, Metric, int, float, int]]:
    """The rows the contract promises for valid samples, duplicates dropped (first wins)."""
    out: dict[tuple[Metric, int], tuple[str, Metric, int, float, int]] = {}
    for sample in batch:
        when = sample["ts"]
        assert isinstance(when, datetime)
        offset = when.utcoffset()
        assert offset is not None
        offset_min = offset // timedelta(minutes=1)
        ts_us = us(when)
        for name, value in sample.items():
            if name in {"ts", "device_id"}:
                continue
            metric = Metric.from_wire(name)
            if metric is Metric.RR_INTERVAL:
                assert isinstance(value, list)
                for k, interval in enumerate(value):
                    later_us = sum(round(x * 1000) for x in value[k + 1 :])
                    key = (metric, ts_us - later_us)
                    out.setdefault(key, (DEVICE, metric, ts_us - later_us, interval, offset_min))
                continue
            if isinstance(value, str):
                number = float(CONSCIOUSNESS_LEVELS.index(value))
            else:
                assert isinstance(value, int | float)
                number = float(value)
            out.setdefault((metric, ts_us), (DEVICE, metric, ts_us, number, offset_min))
    return list(out.values())


@given(st.lists(samples(), min_size=1, max_size=8))
def test_round_trip(batch: list[dict[str, object]]) -> None:
    decoded = decode(encode_samples(batch))
    assert decoded.rejected == ()
    assert sorted(rows(decoded)) == sorted(expected_rows(batch))
    check_invariants(decoded)


@given(
    st.one_of(
        st.integers(946_684_800, RECEIVED // 1_000_000),
        st.floats(946_684_800, RECEIVED / 1e6, allow_nan=False),
    ),
    VALUES[Metric.HEART_RATE],
)
def test_round_trip_epoch_seconds(seconds: float, heart_rate: float) -> None:
    decoded = decode(encode_samples([{"ts": seconds, "heart_rate": heart_rate}]))
    [(_, metric, ts_us, value, offset_min)] = rows(decoded)
    assert (metric, value, offset_min) == (Metric.HEART_RATE, heart_rate, 0)
    assert abs(ts_us - seconds * 1e6) <= 1  # within a µs: floats carry ~0.2 µs at this scale


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # beyond 64 bits too: orjson reads those as floats
    st.floats(),  # NaN and infinity are written as NaN / Infinity text by the stdlib encoder
    st.text(max_size=30),
    st.sampled_from(["A", "Z", TS, "2026-11-28T11:59:00", "1999-01-01T00:00:00+01:00", ""]),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
FIELD_NAMES = st.sampled_from([m.wire_name for m in Metric] + ["ts", "device_id"]) | st.text(
    max_size=12
)
TS_VALUES = st.one_of(
    TIMES.map(lambda t: t.isoformat()),
    TIMES.map(lambda t: t.timestamp()),
    st.just(TS),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(alphabet="0123456789-:+TZz. ", max_size=32),
    JSON_SCALARS,
)
# Values near the rules' edges, so generated samples are often partly valid and reach storage.
NEAR_VALID = st.one_of(
    st.integers(-10, 4000),
    st.floats(-10, 400),
    st.booleans(),
    st.sampled_from([*CONSCIOUSNESS_LEVELS, "a", "X"]),
    st.lists(st.integers(100, 3500) | st.floats(100, 3500) | JSON_SCALARS, max_size=8),
)
SAMPLE_LIKE = st.fixed_dictionaries(
    {"ts": TS_VALUES}, optional={"device_id": st.sampled_from([DEVICE, DEVICE, "other", 3])}
).flatmap(
    lambda head: st.dictionaries(FIELD_NAMES, NEAR_VALID | JSON_VALUES, max_size=6).map(
        lambda body: {**body, **head}
    )
)
PAYLOADS = st.one_of(
    SAMPLE_LIKE,
    st.lists(SAMPLE_LIKE | JSON_VALUES, max_size=6),
    JSON_VALUES,
)


def to_json(value: object) -> bytes:
    # The stdlib writes integers of any size and NaN/Infinity as bare words, which orjson
    # would refuse to write: this reaches the decoder with text a careless device might send.
    return json.dumps(value).encode()


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.tuples(st.text(max_size=80), st.binary(max_size=300)), max_size=5))
def test_fuzz_arbitrary_bytes_never_raise(messages: list[tuple[str, bytes]]) -> None:
    decoded = decode_batch([(t, p, RECEIVED) for t, p in messages])
    check_invariants(decoded)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.lists(PAYLOADS, min_size=1, max_size=4),
    st.sampled_from([TOPIC, "wardwatch/v1/devices/other/vitals"]),
)
def test_fuzz_json_like_structures_never_raise(payloads: list[object], topic: str) -> None:
    decoded = decode_batch([(topic, to_json(p), RECEIVED) for p in payloads])
    check_invariants(decoded)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(samples(), min_size=1, max_size=4), st.lists(PAYLOADS, min_size=1, max_size=4))
def test_junk_beside_valid_samples_loses_nothing_valid(
    valid: list[dict[str, object]], junk: list[object]
) -> None:
    # Junk that cannot itself be a valid sample (no ts), so the valid rows are exactly known.
    junk = [{k: v for k, v in j.items() if k != "ts"} if isinstance(j, dict) else j for j in junk]
    # NaN or Infinity anywhere makes the whole payload invalid JSON: that is another test.
    assume(all(_finite_json(j) for j in junk))
    items: list[object] = [*junk[:2], *valid, *junk[2:]]
    decoded = decode(to_json_or_orjson(items))
    assert sorted(rows(decoded)) == sorted(expected_rows(valid))
    assert len(decoded.rejected) >= len(junk)
    check_invariants(decoded)


def to_json_or_orjson(items: list[object]) -> bytes:
    """Valid samples hold datetimes (orjson), junk may hold huge ints or NaN (stdlib)."""
    return b"[" + b",".join(
        encode_samples([i])[1:-1] if _is_valid_sample(i) else to_json(i) for i in items
    ) + b"]"  # fmt: skip


def _finite_json(value: object) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return False
    return True


def _is_valid_sample(item: object) -> TypeGuard[dict[str, object]]:
    return isinstance(item, dict) and isinstance(item.get("ts"), datetime)


@given(st.integers(0, 1100))
def test_nesting_depth_never_raises(depth: int) -> None:
    nested = b"[" * depth + b"]" * depth
    for payload in (nested, b'{"ts": 1795859940, "spo2": ' + (nested or b"1") + b"}"):
        check_invariants(decode(payload))


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_rejected_even_past_the_json_parser(value: float) -> None:
    # orjson refuses NaN in JSON text; the checks must hold even so, should that ever change.
    from ingest import codec  # noqa: PLC0415 - private helpers, tested only here

    with pytest.raises(DecodeError) as caught:
        codec._number("heart_rate", codec._NUMBER, value, 20, 300)
    assert caught.value.reason == "impossible value"
    assert "not a finite number" in caught.value.detail
    with pytest.raises(DecodeError) as caught:
        codec._timestamp(value)
    assert caught.value.reason == "bad timestamp"
    with pytest.raises(DecodeError) as caught:
        codec._beat_times([800, value], 0)
    assert caught.value.reason == "impossible value"


# --- docs/wire-format.md stays in step ---------------------------------------------------------

WIRE_FORMAT_MD = Path(__file__).resolve().parents[2] / "docs" / "wire-format.md"


def test_documented_ranges_match_plausible() -> None:
    text = WIRE_FORMAT_MD.read_text(encoding="utf-8")
    for metric, bounds in PLAUSIBLE.items():
        if metric in {Metric.ON_OXYGEN, Metric.WORN, Metric.CONSCIOUSNESS}:
            continue  # documented as their allowed values
        if metric not in V1_METRICS:
            continue  # not a v1 field: docs/formats.md, checked by tests/unit/test_formats.py
        [row] = [line for line in text.splitlines() if line.startswith(f"| `{metric.wire_name}` |")]
        assert f"{bounds.low:g}–{bounds.high:g}" in row, metric
        assert bounds.unit in row, metric


def test_documented_examples_decode_cleanly() -> None:
    text = WIRE_FORMAT_MD.read_text(encoding="utf-8").split("## 9. Examples", 1)[1]
    text = text.split("\n## ", 1)[0]  # section 9 alone: section 10 is tests/unit/test_formats.py
    examples = re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL)
    assert len(examples) == 3
    for example in examples:
        claimed = re.search(r'"device_id": "([^"]+)"', example)
        device = claimed.group(1) if claimed else DEVICE
        topic = f"wardwatch/v1/devices/{device}/vitals"
        decoded = decode(example.encode(), topic=topic)
        assert decoded.rejected == ()
        assert len(decoded.readings) > 0


def test_seq_numbers_are_collected_for_gap_detection_and_checked() -> None:
    topic = "wardwatch/v1/devices/w-1/vitals"
    ok = orjson.dumps(
        [
            {"ts": "2026-11-28T10:00:00Z", "heart_rate": 70, "seq": 41},
            {"ts": "2026-11-28T10:01:00Z", "heart_rate": 71, "seq": 42},
        ]
    )
    bad = orjson.dumps({"ts": "2026-11-28T10:02:00Z", "heart_rate": 72, "seq": -1})
    received = 1_800_000_000_000_000
    decoded = decode_batch([(topic, ok, received), (topic, bad, received)], max_future_us=10**15)
    assert decoded.seqs == (("w-1", 41, received), ("w-1", 42, received))
    assert len(decoded.readings) == 3  # a bad seq loses nothing else
    assert [(r.reason, r.detail) for r in decoded.rejected] == [
        ("wrong type", "seq -1: expected a non-negative integer")
    ]
