"""Waveform chunks, status reports and message numbers in a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import psycopg
import pytest

from ingest.status import decode_statuses
from ingest.waveform import decode_waveforms
from signals.waveforms import DeviceStatus, WaveformChunk, WaveformKind, join_chunks
from storage import devices

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Conn = psycopg.Connection[tuple[object, ...]]


def us(when: datetime) -> int:
    return (when - EPOCH) // timedelta(microseconds=1)


@pytest.fixture
def conn(database_url: str) -> Iterator[Conn]:
    with psycopg.connect(database_url) as c:
        yield c


def ppg(
    device: str, start: datetime, n: int = 750, fs_hz: float = 25.0, seq: int = 1
) -> WaveformChunk:
    rng = np.random.default_rng(seq)
    values = rng.normal(2000, 300, n).astype(np.float32)
    return WaveformChunk(
        device, WaveformKind.PPG, us(start), fs_hz, values, "au", seq, us(start) + 31_000_000
    )


def accel(device: str, start: datetime, n: int = 500) -> WaveformChunk:
    values = np.random.default_rng(7).uniform(-16, 16, (n, 3)).astype(np.float32)
    return WaveformChunk(device, WaveformKind.ACCEL, us(start), 50.0, values, "g", None, us(start))


# --- waveforms ---------------------------------------------------------------------------------


def test_store_and_load_waveforms_exactly_and_compactly(conn: Conn, uid: str) -> None:
    device = f"ox-{uid}"
    chunks = [ppg(device, T0 + timedelta(seconds=30 * i), seq=i) for i in range(4)]
    moves = accel(device, T0)
    assert devices.insert_waveforms(conn, [*chunks, moves]) == 5
    conn.commit()

    loaded = devices.load_waveform(conn, device, WaveformKind.PPG, T0, T0 + timedelta(minutes=2))
    assert loaded == chunks  # samples bit for bit, times to the µs, seq and receipt
    assert not loaded[0].values.flags.writeable
    (back,) = devices.load_waveform(conn, device, WaveformKind.ACCEL, T0, T0 + timedelta(hours=1))
    assert back == moves
    assert back.values.shape == (500, 3)

    sizes = conn.execute(
        "select kind, octet_length(data), n_samples, channels from waveforms where device_id = %s",
        (device,),
    ).fetchall()
    for _kind, length, n, channels in sizes:
        assert length == 4 * n * channels  # float32, nothing else
    # Row-major: the first sample's x, y, z come first.
    head = conn.execute(
        "select substring(data from 1 for 12) from waveforms"
        " where device_id = %s and kind = 'accel'",
        (device,),
    ).fetchone()
    assert head is not None
    assert head[0] == moves.values[0].astype("<f4").tobytes()


def test_load_returns_the_chunks_overlapping_the_window(conn: Conn, uid: str) -> None:
    device = f"ox-{uid}"
    starts = [T0, T0 + timedelta(seconds=30), T0 + timedelta(seconds=90)]  # 30 s chunks
    devices.insert_waveforms(conn, [ppg(device, s, seq=i) for i, s in enumerate(starts)])

    def loaded(start: datetime, end: datetime) -> list[int | None]:
        return [c.seq for c in devices.load_waveform(conn, device, WaveformKind.PPG, start, end)]

    assert loaded(T0 + timedelta(seconds=45), T0 + timedelta(seconds=46)) == [1]
    assert loaded(T0 + timedelta(seconds=29), T0 + timedelta(seconds=31)) == [0, 1]
    assert loaded(T0 + timedelta(seconds=60), T0 + timedelta(seconds=90)) == []  # end exclusive
    assert loaded(T0 - timedelta(hours=1), T0 + timedelta(hours=1)) == [0, 1, 2]
    assert devices.load_waveform(conn, device, WaveformKind.ECG, T0, T0 + timedelta(hours=1)) == []
    joined = join_chunks(
        devices.load_waveform(conn, device, WaveformKind.PPG, T0, T0 + timedelta(hours=1))
    )
    assert [s.n_samples for s in joined.segments] == [1500, 750]


def test_duplicate_chunks_are_stored_once(conn: Conn, uid: str) -> None:
    device = f"ox-{uid}"
    first = ppg(device, T0, seq=1)
    again = ppg(device, T0, seq=2)  # same device, kind and start: the first one stays
    assert devices.insert_waveforms(conn, [first, again]) == 1
    assert devices.insert_waveforms(conn, [first, ppg(device, T0 + timedelta(seconds=30))]) == 1
    assert devices.insert_waveforms(conn, []) == 0
    (joined,) = join_chunks([first, ppg(device, T0 + timedelta(seconds=30))]).segments
    with pytest.raises(ValueError, match="received_us"):
        devices.insert_waveforms(conn, [joined])
    (stored, _) = devices.load_waveform(
        conn, device, WaveformKind.PPG, T0, T0 + timedelta(minutes=1)
    )
    assert stored == first


def test_decoded_messages_round_trip_through_storage(conn: Conn, uid: str) -> None:
    device = f"ecg-{uid}"
    samples = np.random.default_rng(1).normal(0, 1, 500).astype(np.float32)
    payload = orjson.dumps(
        {"ts": "2026-11-28T10:00:00+01:00", "kind": "ecg", "fs_hz": 250, "unit": "mV",
         "samples": samples.tolist(), "seq": 41}
    )  # fmt: skip
    topic = f"wardwatch/v1/devices/{device}/waveform"
    chunks, rejected = decode_waveforms([(topic, payload, us(T0) + 2_000_000)] * 2)
    assert rejected == []
    assert devices.insert_waveforms(conn, chunks) == 1
    (back,) = devices.load_waveform(conn, device, WaveformKind.ECG, T0, T0 + timedelta(seconds=1))
    assert back == chunks[0]
    assert back.values.tobytes() == samples.tobytes()
    assert back.start_us == us(T0)


# --- status ------------------------------------------------------------------------------------


def test_statuses_stored_once_and_latest_by_event_time(conn: Conn, uid: str) -> None:
    a, b = f"a-{uid}", f"b-{uid}"
    reports = [
        DeviceStatus(a, us(T0), 80.0, True, "1.2.0", -0.5, 10, us(T0) + 1000),
        DeviceStatus(a, us(T0 + timedelta(minutes=20)), 64.5, None, None, None, None, us(T0)),
        DeviceStatus(b, us(T0), None, False, "x" * 64, 3600.25, 2**62, us(T0)),
    ]
    # The newest report arrives first: "latest" is by event time, not by arrival.
    assert devices.insert_statuses(conn, reports[::-1]) == 3
    assert devices.insert_statuses(conn, reports) == 0
    assert devices.insert_statuses(conn, []) == 0
    latest = devices.latest_status(conn, [a, b, f"never-{uid}"])
    assert latest == {a: reports[1], b: reports[2]}
    assert devices.latest_status(conn, []) == {}


def test_decoded_status_round_trips(conn: Conn, uid: str) -> None:
    device = f"ox-{uid}"
    payload = orjson.dumps(
        [{"ts": "2026-11-28T09:00:00Z", "battery": 12.5, "worn": True, "firmware": "3.0",
          "clock": "2026-11-28T09:00:05.25Z", "seq": 3},
         {"ts": "2026-11-28T08:59:00Z", "battery": 13}]
    )  # fmt: skip
    statuses, rejected = decode_statuses(
        [(f"wardwatch/v1/devices/{device}/status", payload, us(T0))]
    )
    assert rejected == []
    assert devices.insert_statuses(conn, statuses) == 2
    assert devices.latest_status(conn, [device]) == {device: statuses[0]}
    assert statuses[0].clock_offset_s == 5.25


# --- message numbers and gaps ------------------------------------------------------------------


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def gaps(
    conn: Conn, *, since: float = -3600, grace_until: float
) -> list[tuple[str, str, int, int]]:
    return devices.find_gaps(conn, since=at(since), grace_until=at(grace_until))


def test_a_lost_message_is_a_gap_once_the_grace_time_is_over(conn: Conn, uid: str) -> None:
    d = f"ox-{uid}"
    devices.record_seqs(conn, [(d, "vitals", s, at(s)) for s in (1, 2, 3, 6, 7)])
    devices.record_seqs(conn, [(d, "waveform", s, at(s)) for s in (1, 2, 3, 4)])
    # Seq 6, the one after the hole, arrived at +6 s: before that the hole may yet be filled.
    assert gaps(conn, grace_until=6) == []
    assert gaps(conn, grace_until=6.001) == [(d, "vitals", 4, 5)]
    assert gaps(conn, since=6, grace_until=60) == []  # the hole is before the window


def test_reordered_message_inside_the_grace_time_is_not_a_gap(conn: Conn, uid: str) -> None:
    d = f"ox-{uid}"
    devices.record_seqs(conn, [(d, "status", s, at(s)) for s in (1, 2, 4)])
    assert gaps(conn, grace_until=3) == []  # 4 is still within its grace: 3 may come
    devices.record_seqs(conn, [(d, "status", 3, at(10))])  # and it does, late
    assert gaps(conn, grace_until=60) == []


def test_redelivery_is_recorded_once(conn: Conn, uid: str) -> None:
    d = f"ox-{uid}"
    devices.record_seqs(conn, [(d, "vitals", 1, at(1)), (d, "vitals", 2, at(2))])
    devices.record_seqs(conn, [(d, "vitals", 2, at(30)), (d, "vitals", 3, at(31))])
    devices.record_seqs(conn, [])
    rows = conn.execute(
        "select seq, received_at from message_seq where device_id = %s order by seq", (d,)
    ).fetchall()
    assert rows == [(1, at(1)), (2, at(2)), (3, at(31))]
    assert gaps(conn, grace_until=60) == []


def test_a_restart_is_not_a_gap(conn: Conn, uid: str) -> None:
    d, big = f"ox-{uid}", f"big-{uid}"
    # The device counted to 5005, restarted and counts again from 0: in number order its new
    # low numbers (received later) sit below its old high ones, across a hole of 5000 numbers.
    devices.record_seqs(conn, [(d, "vitals", s, at(s - 5000)) for s in range(5000, 5006)])
    devices.record_seqs(conn, [(d, "vitals", s, at(100 + s)) for s in range(3)])
    # A jump of more than 10,000 forward is a restart too (or a counter reset), not a loss.
    devices.record_seqs(conn, [(big, "waveform", 7, at(1)), (big, "waveform", 10_008, at(2))])
    assert gaps(conn, grace_until=600) == []
    # ...but a jump of exactly 10,000 is a gap of 9,999.
    devices.record_seqs(conn, [(big, "waveform", 20_008, at(3))])
    assert gaps(conn, grace_until=600) == [(big, "waveform", 10_009, 20_007)]
