"""Waveform chunks and device status: the decoders' every rule, the chunk type, joining chunks."""

from __future__ import annotations

import doctest
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ingest.waveform
import signals.waveforms
from ingest.codec import RAW_LIMIT, REASONS, DecodeError, Rejected
from ingest.status import decode_statuses, status_readings
from ingest.waveform import decode_waveforms, topic_kind
from signals.vitals import Metric
from signals.waveforms import (
    DeviceStatus,
    Gap,
    GapReason,
    WaveformChunk,
    WaveformKind,
    join_chunks,
)

DEVICE = "ox-0042"
WAVE = f"wardwatch/v1/devices/{DEVICE}/waveform"
STATUS = f"wardwatch/v1/devices/{DEVICE}/status"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RECEIVED_AT = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def us(when: datetime) -> int:
    """Microseconds since the epoch, computed independently of the decoders."""
    return (when - EPOCH) // timedelta(microseconds=1)


RECEIVED = us(RECEIVED_AT)
TS = "2026-11-28T11:59:00Z"
TS_US = us(datetime(2026, 11, 28, 11, 59, tzinfo=UTC))


def wave(
    payload: object, topic: str = WAVE, **kwargs: int
) -> tuple[list[WaveformChunk], list[Rejected]]:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return decode_waveforms([(topic, raw, RECEIVED)], **kwargs)


def status(
    payload: object, topic: str = STATUS, **kwargs: int
) -> tuple[list[DeviceStatus], list[Rejected]]:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return decode_statuses([(topic, raw, RECEIVED)], **kwargs)


def chunk_doc(**fields: object) -> dict[str, object]:
    return {"ts": TS, "kind": "ppg", "fs_hz": 25, "samples": [1.0, 2.0, 3.0], **fields}


def reasons(rejected: list[Rejected]) -> list[str]:
    return [r.reason for r in rejected]


def test_docstring_examples() -> None:
    assert doctest.testmod(signals.waveforms).failed == 0
    assert doctest.testmod(ingest.waveform).failed == 0


# --- topics ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["vitals", "waveform", "status"])
def test_topic_kind(kind: str) -> None:
    assert topic_kind(f"wardwatch/v1/devices/WB7.00A1_3/{kind}") == ("WB7.00A1_3", kind)


@pytest.mark.parametrize(
    "topic",
    [
        "wardwatch/v1/devices/ox 42/waveform",
        "wardwatch/v1/devices//waveform",
        f"wardwatch/v1/devices/{'x' * 65}/status",
        "wardwatch/v1/devices/ox-1/ecg",
        "wardwatch/v2/devices/ox-1/waveform",
        "wardwatch/v1/devices/ox-1/waveform/extra",
        "",
    ],
)
def test_bad_topics(topic: str) -> None:
    with pytest.raises(DecodeError) as info:
        topic_kind(topic)
    assert info.value.reason == "bad topic"


# --- waveform decoding: what is accepted ----------------------------------------------------


def test_ppg_chunk_with_epoch_seconds() -> None:
    chunks, rejected = wave(chunk_doc(ts=1795856400.25, samples=[512, 515.5, 520], seq=7))
    assert rejected == []
    (c,) = chunks
    assert (c.device_id, c.kind, c.start_us, c.fs_hz, c.unit, c.seq, c.received_us) == (
        DEVICE, WaveformKind.PPG, 1_795_856_400_250_000, 25.0, "au", 7, RECEIVED
    )  # fmt: skip
    assert c.values.dtype == np.float32
    assert c.values.tolist() == [512.0, 515.5, 520.0]


def test_ecg_chunk_with_an_offset_is_stored_as_the_utc_instant() -> None:
    chunks, rejected = wave(
        chunk_doc(ts="2026-11-28T12:59:00+01:00", kind="ecg", fs_hz=250, unit="mV",
                  samples=[-0.1, 1.2, -20, 20], device_id=DEVICE)
    )  # fmt: skip
    assert rejected == []
    assert chunks[0].start_us == TS_US
    assert chunks[0].unit == "mV"
    assert chunks[0].values.shape == (4,)


def test_accelerometer_chunk_has_three_columns() -> None:
    samples = [[0.01, -0.02, 0.98], [0.0, 0.0, 1.0], [16, -16, 0]]
    chunks, rejected = wave(chunk_doc(kind="accel", fs_hz=50, unit="g", samples=samples))
    assert rejected == []
    (c,) = chunks
    assert c.values.shape == (3, 3)
    assert c.values.dtype == np.float32
    assert np.array_equal(c.values, np.array(samples, dtype=np.float32))


def test_integral_float_seq_is_a_whole_number() -> None:
    chunks, rejected = wave(chunk_doc(seq=12.0))
    assert rejected == []
    assert chunks[0].seq == 12
    assert type(chunks[0].seq) is int


@pytest.mark.parametrize(("fs_hz", "n"), [(1, 60), (25, 1500), (2000, 120_000), (12.5, 750)])
def test_sixty_seconds_of_samples_is_the_limit(fs_hz: float, n: int) -> None:
    chunks, rejected = wave(chunk_doc(fs_hz=fs_hz, samples=[0.0] * n))
    assert rejected == []
    assert chunks[0].n_samples == n
    _, rejected = wave(chunk_doc(fs_hz=fs_hz, samples=[0.0] * (n + 1)))
    assert reasons(rejected) == ["impossible value"]
    assert "limit is 60 s" in rejected[0].detail


def test_unknown_field_is_rejected_alone_and_the_chunk_kept() -> None:
    chunks, rejected = wave(chunk_doc(gain=2))
    assert len(chunks) == 1
    assert [(r.reason, r.detail) for r in rejected] == [("unknown field", "unknown field 'gain'")]


@pytest.mark.parametrize(
    ("seq", "reason"),
    [("7", "wrong type"), (True, "wrong type"), (1.5, "wrong type"), (None, "wrong type"),
     (-1, "impossible value"), (2**63, "impossible value")],
)  # fmt: skip
def test_bad_seq_is_rejected_alone_and_the_chunk_kept(seq: object, reason: str) -> None:
    chunks, rejected = wave(chunk_doc(seq=seq))
    assert [c.seq for c in chunks] == [None]
    assert reasons(rejected) == [reason]


def test_values_round_trip_exactly() -> None:
    tricky = np.array([1e-45, -3.4028235e38, 0.1, 1 / 3, 16777217, -0.0], dtype=np.float32)
    chunks, _ = wave(chunk_doc(samples=tricky.astype(float).tolist()))
    assert chunks[0].values.tobytes() == tricky.tobytes()


@settings(deadline=None)
@given(
    hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 200)),
        elements=st.floats(width=32, allow_nan=False, allow_infinity=False),
    ),
    st.sampled_from(WaveformKind),
)
def test_any_float32_values_round_trip_exactly(values: np.ndarray, kind: WaveformKind) -> None:
    if kind is not WaveformKind.PPG:
        values = np.clip(values, -16, 16)
    if kind is WaveformKind.ACCEL:
        values = np.resize(values, (len(values), 3))
    payload = chunk_doc(kind=kind.value, samples=values.tolist())  # float32 → exact Python floats
    chunks, rejected = wave(payload)
    assert rejected == []
    assert chunks[0].values.tobytes() == values.astype(np.float32).tobytes()


# --- waveform decoding: every reject ----------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "reason", "detail"),
    [
        (b"{", "invalid json", "payload is not JSON"),
        (b'{"ts": 1, "samples": [NaN]}', "invalid json", "payload is not JSON"),
        (b'{"ts": "\xff"}', "invalid utf-8", "payload byte 8 is not valid UTF-8"),
        ([chunk_doc()], "not an object", "payload is an array, expected one chunk object"),
        (42, "not an object", "payload 42 is a number"),
        (chunk_doc(device_id="ox-0043"), "device mismatch", "device_id 'ox-0043' does not match"),
        ({"kind": "ppg", "fs_hz": 25, "samples": [1]}, "bad timestamp", "ts is missing"),
        (chunk_doc(ts="2026-11-28T11:59:00"), "bad timestamp", "not an RFC 3339 date-time"),
        (chunk_doc(ts=0), "bad timestamp", "before the year 2000"),
        (chunk_doc(ts=1795856400000), "bad timestamp", "milliseconds sent?"),
        (chunk_doc(ts="2026-11-28T13:00:00Z"), "future timestamp", "3600 s after"),
        ({"ts": TS, "fs_hz": 25, "samples": [1]}, "wrong type", "kind is missing"),
        (chunk_doc(kind=1), "wrong type", "kind 1 is a number, expected ppg, ecg or accel"),
        (chunk_doc(kind="eeg"), "impossible value", "kind 'eeg' is not one of ppg, ecg, accel"),
        ({"ts": TS, "kind": "ppg", "samples": [1]}, "wrong type", "fs_hz is missing"),
        (chunk_doc(fs_hz="25"), "wrong type", "fs_hz '25' is a string, expected a number"),
        (chunk_doc(fs_hz=True), "wrong type", "fs_hz true is a boolean"),
        (chunk_doc(fs_hz=0.5), "impossible value", "fs_hz 0.5 outside 1–2000 Hz"),
        (chunk_doc(fs_hz=2001), "impossible value", "fs_hz 2001 outside 1–2000 Hz"),
        ({"ts": TS, "kind": "ppg", "fs_hz": 25}, "wrong type", "samples is missing"),
        (chunk_doc(samples="1,2"), "wrong type", "expected an array of numbers"),
        (chunk_doc(samples=[]), "impossible value", "samples is empty"),
        (chunk_doc(samples=[1, True]), "wrong type", "samples[1] true is a boolean"),
        (chunk_doc(samples=[1, "1.5"]), "wrong type", "samples[1] '1.5' is a string"),
        (chunk_doc(samples=[None]), "wrong type", "samples[0] is null"),
        (chunk_doc(samples=[[1.0]]), "wrong type", "samples[0] is an array, expected a number"),
        (chunk_doc(samples=[1, 1e39]), "impossible value", "samples[1] 1e+39 is not a finite"),
        (chunk_doc(kind="ecg", samples=[0, -20.5]), "impossible value",
         "samples[1] -20.5 is not within ±20 mV"),
        (chunk_doc(kind="accel", samples=[1, 2, 3]), "wrong type",
         "samples[0] 1 is a number, expected [x, y, z]"),
        (chunk_doc(kind="accel", samples=[[0, 0, 1], [0, 1]]), "wrong type",
         "samples[1] is an array, expected [x, y, z]"),
        (chunk_doc(kind="accel", samples=[[0, 0, 1], [0, "1", 0]]), "wrong type",
         "samples[1][1] '1' is a string"),
        (chunk_doc(kind="accel", samples=[[0, 0, 1], [0, 0, 16.5]]), "impossible value",
         "samples[1][2] 16.5 is not within ±16 g"),
        (chunk_doc(kind="accel", samples=[[0, 0, 19.6]]), "impossible value", "within ±16 g"),
        (chunk_doc(unit=1), "wrong type", "unit 1 is a number, expected a string"),
        (chunk_doc(kind="ecg", unit="uV"), "impossible value", "unit 'uV' is not 'mV'"),
        (chunk_doc(kind="accel", samples=[[0, 0, 1]], unit="m/s2"), "impossible value",
         "unit 'm/s2' is not 'g'"),
    ],
)  # fmt: skip
def test_every_chunk_reject(payload: object, reason: str, detail: str) -> None:
    chunks, rejected = wave(payload)
    assert chunks == []
    assert reasons(rejected) == [reason]
    assert detail in rejected[0].detail
    assert rejected[0].device_id == DEVICE
    assert rejected[0].topic == WAVE
    assert rejected[0].received_us == RECEIVED


@pytest.mark.parametrize(
    "topic",
    ["wardwatch/v1/devices/ox 42/waveform", STATUS, f"wardwatch/v1/devices/{DEVICE}/vitals"],
)
def test_bad_topic_rejects_the_message(topic: str) -> None:
    chunks, rejected = wave(chunk_doc(), topic=topic)
    assert chunks == []
    assert reasons(rejected) == ["bad topic"]


def test_bad_topic_has_no_device() -> None:
    _, rejected = wave(chunk_doc(), topic="nonsense")
    assert rejected[0].device_id is None


def test_payload_too_large() -> None:
    _, rejected = wave(chunk_doc(), max_payload_bytes=10)
    assert reasons(rejected) == ["payload too large"]
    assert "the limit is 10" in rejected[0].detail
    big = orjson.dumps(chunk_doc(fs_hz=2000, samples=[1.2345678] * 110_000))
    assert len(big) > 1_048_576
    _, rejected = wave(big)
    assert reasons(rejected) == ["payload too large"]
    assert len(rejected[0].raw) == RAW_LIMIT


def test_every_fault_of_a_chunk_is_reported_at_once() -> None:
    _, rejected = wave({"ts": TS, "kind": "eeg", "fs_hz": "fast", "unit": 3, "seq": -1, "x": 1})
    assert sorted(reasons(rejected)) == sorted(
        ["impossible value", "wrong type", "wrong type", "impossible value", "unknown field"]
    )


def test_one_bad_message_does_not_affect_the_next() -> None:
    messages = [
        (WAVE, b"junk", RECEIVED),
        (WAVE, orjson.dumps(chunk_doc()), RECEIVED),
        (WAVE, orjson.dumps(chunk_doc(samples=[1, None])), RECEIVED),
        (WAVE, orjson.dumps(chunk_doc(ts="2026-11-28T11:59:01Z")), RECEIVED),
    ]
    chunks, rejected = decode_waveforms(messages)
    assert [c.start_us for c in chunks] == [TS_US, TS_US + 1_000_000]
    assert reasons(rejected) == ["invalid json", "wrong type"]


def test_every_waveform_reason_is_a_known_code() -> None:
    # The codec's closed set: Prometheus labels and docs/wire-format.md's table.
    used = {"bad topic", "payload too large", "invalid utf-8", "invalid json", "not an object",
            "bad timestamp", "future timestamp", "device mismatch", "wrong type",
            "impossible value", "unknown field"}  # fmt: skip
    assert used <= REASONS


# --- fuzz: the decoders never raise ----------------------------------------------------------

JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)
NEAR_VALID_CHUNK = st.fixed_dictionaries(
    {},
    optional={
        "ts": st.sampled_from([TS, 1795856400, "2026-11-28T11:59:00", -1, None, 1e300]),
        "kind": st.sampled_from(["ppg", "ecg", "accel", "PPG", 1, None]),
        "fs_hz": st.sampled_from([0, 1, 25, 2000, 2001, -1, 1e308, "25", None, True]),
        "samples": st.lists(
            st.floats(-40, 40) | st.lists(st.floats(-40, 40), min_size=2, max_size=4) | JSON_LEAVES,
            max_size=8,
        )
        | JSON_VALUES,
        "unit": st.sampled_from(["au", "mV", "g", "uV", 1]),
        "seq": st.sampled_from([0, 1, 2**63, -1, 1.5, "1", None]),
        "device_id": st.sampled_from([DEVICE, "other", None]),
        "extra": JSON_VALUES,
    },
)


def check_invariants(found: Sequence[object], rejected: Sequence[Rejected]) -> None:
    for r in rejected:
        assert r.reason in REASONS
        assert len(r.raw) <= RAW_LIMIT
    for item in found:
        if isinstance(item, WaveformChunk):
            assert item.values.dtype == np.float32
            assert np.isfinite(item.values).all()


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.lists(
        st.tuples(st.text(max_size=60) | st.just(WAVE) | st.just(STATUS), st.binary(max_size=300)),
        max_size=5,
    )
)
def test_fuzz_arbitrary_bytes_never_raise(messages: list[tuple[str, bytes]]) -> None:
    batch = [(t, p, RECEIVED) for t, p in messages]
    check_invariants(*decode_waveforms(batch))
    check_invariants(*decode_statuses(batch))


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(NEAR_VALID_CHUNK | JSON_VALUES, min_size=1, max_size=4))
def test_fuzz_chunk_like_payloads_never_raise(payloads: list[object]) -> None:
    # The stdlib writes integers of any size, as a careless device might.
    batch = [(WAVE, json.dumps(p).encode(), RECEIVED) for p in payloads]
    chunks, rejected = decode_waveforms(batch)
    check_invariants(chunks, rejected)
    for message in batch:  # each message gives a chunk or says why not
        one, why = decode_waveforms([message])
        assert len(one) == 1 or why
    for c in chunks:
        if c.kind is WaveformKind.ECG:
            assert np.abs(c.values).max() <= 20
        if c.kind is WaveformKind.ACCEL:
            assert c.values.shape[1] == 3
            assert np.abs(c.values).max() <= 16


STATUS_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "ts": st.sampled_from([TS, 1795856400, "bad", None]),
        "battery": st.sampled_from([0, 50.5, 100, 101, -1, True, "50"]) | JSON_LEAVES,
        "worn": JSON_LEAVES,
        "firmware": st.text(max_size=70) | JSON_LEAVES,
        "clock": st.sampled_from([TS, "2026-11-28T12:00:03+00:00", 0]) | JSON_LEAVES,
        "seq": JSON_LEAVES,
        "device_id": st.sampled_from([DEVICE, "other"]),
        "other": JSON_VALUES,
    },
)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(STATUS_LIKE | st.lists(STATUS_LIKE | JSON_VALUES, max_size=4) | JSON_VALUES,
                min_size=1, max_size=4))  # fmt: skip
def test_fuzz_status_like_payloads_never_raise(payloads: list[object]) -> None:
    batch = [(STATUS, json.dumps(p).encode(), RECEIVED) for p in payloads]
    statuses, rejected = decode_statuses(batch)
    check_invariants(statuses, rejected)
    for s in statuses:
        assert s.battery_pct is None or 0 <= s.battery_pct <= 100
        assert s.worn in {None, True, False}
        assert s.firmware is None or 1 <= len(s.firmware) <= 64
    readings = status_readings(statuses)
    assert len(readings) == sum(
        (s.battery_pct is not None) + (s.worn is not None) for s in statuses
    )


# --- the chunk type -------------------------------------------------------------------------


def ppg(
    start_us: int, n: int, fs_hz: float = 25.0, seq: int | None = None, fill: float = 0.0
) -> WaveformChunk:
    values = np.full(n, fill, dtype=np.float32)
    return WaveformChunk(DEVICE, WaveformKind.PPG, start_us, fs_hz, values, "au", seq)


def test_times_and_end() -> None:
    c = ppg(1_000_000, 3, fs_hz=3.0)
    assert c.times_us().tolist() == [1_000_000, 1_333_333, 1_666_667]
    assert c.end_us == 2_000_000
    assert c.times_us().dtype == np.int64


@pytest.mark.parametrize(
    ("kind", "values"),
    [
        (WaveformKind.PPG, np.zeros(3, dtype=np.float64)),
        (WaveformKind.PPG, np.zeros((3, 1), dtype=np.float32)),
        (WaveformKind.ACCEL, np.zeros(3, dtype=np.float32)),
        (WaveformKind.ACCEL, np.zeros((3, 2), dtype=np.float32)),
        (WaveformKind.ECG, np.zeros(0, dtype=np.float32)),
        (WaveformKind.ECG, np.ones((), dtype=np.float32)),
        (WaveformKind.ACCEL, np.zeros((0, 3), dtype=np.float32)),
    ],
)
def test_chunk_refuses_wrong_arrays(kind: WaveformKind, values: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"values|sample"):
        WaveformChunk(DEVICE, kind, 0, 25.0, values, kind.unit, None)


@pytest.mark.parametrize("fs_hz", [0.0, -1.0, float("nan"), float("inf")])
def test_chunk_refuses_bad_rates(fs_hz: float) -> None:
    with pytest.raises(ValueError, match="fs_hz"):
        ppg(0, 3, fs_hz=fs_hz)


def test_chunks_compare_by_value_and_are_not_hashable() -> None:
    assert ppg(0, 3, fill=1) == ppg(0, 3, fill=1)
    assert ppg(0, 3, fill=1) != ppg(0, 3, fill=2)
    assert ppg(0, 3) != "chunk"
    with pytest.raises(TypeError):
        hash(ppg(0, 3))


def test_kind_units_and_channels() -> None:
    assert [(k.value, k.unit, k.channels) for k in WaveformKind] == [
        ("ppg", "au", 1), ("ecg", "mV", 1), ("accel", "g", 3)
    ]  # fmt: skip


# --- joining chunks into continuous streams --------------------------------------------------


def test_contiguous_chunks_become_one_array() -> None:
    parts = [ppg(s * 1_000_000, 25, seq=s, fill=s) for s in range(4)]
    joined = join_chunks(reversed(parts))
    assert joined.gaps == ()
    (segment,) = joined.segments
    assert segment.n_samples == 100
    assert segment.values.tolist() == [float(s) for s in range(4) for _ in range(25)]
    assert (segment.start_us, segment.seq, segment.received_us) == (0, 0, None)
    assert segment.end_us == 4_000_000


def test_a_missing_stretch_is_a_gap() -> None:
    joined = join_chunks([ppg(0, 25), ppg(1_000_000, 25), ppg(3_000_000, 25)])
    assert [s.n_samples for s in joined.segments] == [50, 25]
    assert joined.gaps == (Gap(2_000_000, 3_000_000, GapReason.MISSING),)
    assert joined.gaps[0].duration_us == 1_000_000


def test_one_missing_sample_is_a_gap_but_timestamp_rounding_is_not() -> None:
    period = 40_000  # 25 Hz
    assert (
        join_chunks([ppg(0, 25), ppg(1_000_000 + period, 25)]).gaps[0].reason is GapReason.MISSING
    )
    assert join_chunks([ppg(0, 25), ppg(1_000_000 + period // 2, 25)]).gaps == ()
    assert join_chunks([ppg(0, 25), ppg(1_000_000 - 999, 25)]).gaps == ()
    loose = join_chunks([ppg(0, 25), ppg(1_000_000 + period, 25)], tolerance_us=period)
    assert loose.gaps == ()


def test_small_timestamp_errors_do_not_accumulate() -> None:
    # Each chunk stamped 15 ms later than the last: every seam alone is within half a period
    # (20 ms), but the segment's end comes from its sample count, so the drift shows (30 ms).
    parts = [ppg(s * 1_000_000 + 15_000 * s, 25) for s in range(3)]
    joined = join_chunks(parts)
    assert len(joined.segments) == 2
    assert joined.gaps[0].reason is GapReason.MISSING


def test_overlap_and_rate_change_are_seams() -> None:
    joined = join_chunks([ppg(0, 25), ppg(500_000, 25), ppg(1_500_000, 50, fs_hz=50.0)])
    assert [g.reason for g in joined.gaps] == [GapReason.OVERLAP, GapReason.RATE_CHANGE]
    assert joined.gaps[0].duration_us == -500_000
    assert [s.fs_hz for s in joined.segments] == [25.0, 25.0, 50.0]


def test_redelivered_chunk_is_dropped() -> None:
    joined = join_chunks([ppg(0, 25, fill=1), ppg(0, 25, fill=2), ppg(1_000_000, 25)])
    assert joined.gaps == ()
    assert joined.segments[0].values[:25].tolist() == [1.0] * 25


def test_join_accel_keeps_columns() -> None:
    def accel(start_us: int) -> WaveformChunk:
        return WaveformChunk(DEVICE, WaveformKind.ACCEL, start_us, 10.0,
                             np.ones((10, 3), np.float32), "g", None)  # fmt: skip

    (segment,) = join_chunks([accel(0), accel(1_000_000)]).segments
    assert segment.values.shape == (20, 3)


def test_join_refuses_mixed_devices_and_takes_nothing() -> None:
    other = WaveformChunk("other", WaveformKind.PPG, 0, 25.0, np.zeros(1, np.float32), "au", None)
    with pytest.raises(ValueError, match="one device"):
        join_chunks([ppg(0, 1), other])
    assert join_chunks([]).segments == ()


# --- status decoding -------------------------------------------------------------------------


def test_full_status_report() -> None:
    statuses, rejected = status(
        {"ts": TS, "battery": 64, "worn": True, "firmware": "2.14.3-rc1",
         "clock": "2026-11-28T12:00:02.5Z", "seq": 9, "device_id": DEVICE}
    )  # fmt: skip
    assert rejected == []
    assert statuses == [DeviceStatus(DEVICE, TS_US, 64.0, True, "2.14.3-rc1", 2.5, 9, RECEIVED)]


def test_clock_behind_is_negative_and_epoch_is_accepted() -> None:
    statuses, _ = status({"ts": TS, "clock": "2026-11-28T12:59:30+01:00"})
    assert statuses[0].clock_offset_s == -30.0
    statuses, _ = status({"ts": RECEIVED / 1e6, "clock": RECEIVED / 1e6 + 0.25})
    assert statuses[0].clock_offset_s == 0.25
    assert statuses[0].ts_us == RECEIVED


def test_a_report_with_only_ts_is_a_heartbeat() -> None:
    statuses, rejected = status({"ts": TS})
    assert rejected == []
    assert statuses == [DeviceStatus(DEVICE, TS_US, None, None, None, None, None, RECEIVED)]


@pytest.mark.parametrize(
    ("field", "value", "reason", "detail"),
    [
        ("battery", "64", "wrong type", "battery '64' is a string, expected a number"),
        ("battery", True, "wrong type", "battery true is a boolean"),
        ("battery", 100.5, "impossible value", "battery 100.5 outside 0–100 %"),
        ("battery", -1, "impossible value", "outside 0–100 %"),
        ("worn", 1, "wrong type", "worn 1 is a number, expected true or false"),
        ("worn", "true", "wrong type", "expected true or false"),
        ("firmware", 2, "wrong type", "firmware 2 is a number, expected a string"),
        ("firmware", "", "impossible value", "not 1–64 printable characters"),
        ("firmware", "x" * 65, "impossible value", "not 1–64 printable characters"),
        ("firmware", "1.0\nrm -rf", "impossible value", "printable"),
        ("clock", "12:00", "bad timestamp", "clock '12:00' is not an RFC 3339 date-time"),
        ("clock", True, "bad timestamp", "clock true is a boolean"),
        ("clock", 0, "bad timestamp", "before the year 2000"),
        ("seq", "1", "wrong type", "seq '1' is a string, expected a whole number"),
        ("seq", -5, "impossible value", "seq -5 outside"),
        ("batery", 50, "unknown field", "unknown field 'batery'"),
    ],
)
def test_bad_status_field_is_rejected_alone(
    field: str, value: object, reason: str, detail: str
) -> None:
    statuses, rejected = status({"ts": TS, "worn": False, field: value})
    assert reasons(rejected) == [reason]
    assert detail in rejected[0].detail
    assert len(statuses) == 1
    if field != "worn":
        assert statuses[0].worn is False  # the rest of the report is kept


@pytest.mark.parametrize(
    ("payload", "reason", "detail"),
    [
        (b"[", "invalid json", "payload is not JSON"),
        (b"\xfe\xff", "invalid utf-8", "payload byte 0"),
        ([], "not an object", "payload is an empty array"),
        ("ok", "not an object", "payload 'ok' is a string"),
        ({"battery": 5}, "bad timestamp", "ts is missing"),
        ({"ts": "2026-11-28T12:10:00Z"}, "future timestamp", "600 s after"),
        ({"ts": TS, "device_id": "ox-1"}, "device mismatch", "does not match"),
    ],
)
def test_status_rejected_whole(payload: object, reason: str, detail: str) -> None:
    statuses, rejected = status(payload)
    assert statuses == []
    assert reasons(rejected) == [reason]
    assert detail in rejected[0].detail


def test_status_array_keeps_the_good_reports() -> None:
    statuses, rejected = status(
        [{"ts": TS, "battery": 50}, 7, {"ts": "x"}, {"ts": TS_US / 1e6 + 1, "battery": 101}]
    )
    assert [s.battery_pct for s in statuses] == [50.0, None]
    assert [(r.reason, r.detail.split(":")[0]) for r in rejected] == [
        ("not an object", "item 1"), ("bad timestamp", "item 2"), ("impossible value", "item 3")
    ]  # fmt: skip
    assert rejected[1].raw == b'{"ts":"x"}'


def test_status_topic_is_checked() -> None:
    statuses, rejected = status({"ts": TS}, topic=WAVE)
    assert statuses == []
    assert reasons(rejected) == ["bad topic"]


def test_status_readings() -> None:
    statuses, _ = status([{"ts": TS, "battery": 64, "worn": False}, {"ts": TS_US / 1e6 + 60},
                          {"ts": TS_US / 1e6 + 120, "worn": True}])  # fmt: skip
    readings = status_readings(statuses)
    got = [
        (str(readings.device_id[i]), str(readings.patient_id[i]), Metric(int(readings.metric[i])),
         int(readings.ts_us[i]), float(readings.value[i]), int(readings.utc_offset_min[i]),
         int(readings.received_us[i]))
        for i in range(len(readings))
    ]  # fmt: skip
    assert got == [
        (DEVICE, "", Metric.BATTERY, TS_US, 64.0, 0, RECEIVED),
        (DEVICE, "", Metric.WORN, TS_US, 0.0, 0, RECEIVED),
        (DEVICE, "", Metric.WORN, TS_US + 120_000_000, 1.0, 0, RECEIVED),
    ]
    assert len(status_readings([])) == 0
