"""Waveforms that arrive late are derived like those that arrive live (wardwatch.derive).

A phone out of reach of its watch, or of the broker, uploads what the watch buffered when it
reconnects: the PPG arrives with event times hours in the past. The derive jobs once looked back
an hour of wall-clock time, so every minute of such an upload was stored and never derived: no
heart rate, no breathing rate, no pulse intervals, and nothing said. Here: an upload three hours
late, a device enrolled a day before it first streams, a catch-up in small loads, and an upload
past ``derive.LATE_LIMIT``, which is left underived and said once.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from signals.vitals import Metric
from signals.waveforms import WaveformKind
from storage import devices
from storage.devices import DERIVE_JOBS
from tests.unit.test_ppg_resp import recording
from tests.waveform_feed import enrol, send_waveform, stored_readings
from wardwatch import derive

pytestmark = pytest.mark.integration

FS = 100
T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
METRICS = (Metric.HEART_RATE, Metric.RR_INTERVAL, Metric.RESP_RATE)


def _watch(url: str, uid: str, *, enrolled: datetime = T0 - timedelta(hours=1)) -> datetime:
    """A watch that streams the 5-minute PPG recording from T0 and no heart or breathing rate."""
    enrol(url, f"ppg-{uid}", f"pt-{uid}", enrolled)
    ppg = recording()["PPG"].round(4)
    return send_waveform(url, f"ppg-{uid}", kind="ppg", unit="au", samples=ppg, fs=FS, start=T0)


def _derive_all(url: str, *, now: datetime, catch_up: timedelta | None = None) -> int:
    extra = {} if catch_up is None else {"catch_up": catch_up}
    with psycopg.connect(url) as conn:
        return derive.derive_pulse(conn, now=now, **extra) + derive.derive_resp_rate(
            conn, now=now, **extra
        )


def _derived(url: str, uid: str) -> dict[Metric, list[tuple[int, float]]]:
    return {m: [(t, v) for t, v, _ in stored_readings(url, f"pt-{uid}", m)] for m in METRICS}


def _live(url: str, uid: str) -> dict[Metric, list[tuple[int, float]]]:
    """The reference: the same recording derived three minutes after it ended."""
    end = _watch(url, f"live-{uid}")
    assert _derive_all(url, now=end + timedelta(minutes=3)) > 0
    return _derived(url, f"live-{uid}")


def test_an_upload_three_hours_late_is_derived_as_if_it_had_come_live(
    database_url: str, uid: str
) -> None:
    want = _live(database_url, uid)
    assert all(want[m] for m in METRICS)  # heart rate, pulse intervals and breathing rate
    end = _watch(database_url, uid)
    late = end + timedelta(hours=3)
    assert _derive_all(database_url, now=late) > 0
    assert _derive_all(database_url, now=late + timedelta(minutes=1)) == 0  # each minute once
    assert _derived(database_url, uid) == want


def test_a_device_enrolled_a_day_before_it_first_streams_is_derived(
    database_url: str, uid: str
) -> None:
    """Nothing for 20 hours after enrolment: the job finds where the data starts (a load of
    CATCH_UP_SPAN from the enrolment would hold nothing and never reach it)."""
    want = _live(database_url, uid)
    end = _watch(database_url, uid, enrolled=T0 - timedelta(hours=20))
    assert _derive_all(database_url, now=end + timedelta(minutes=3)) > 0
    assert _derived(database_url, uid) == want


def test_catching_up_in_small_loads_gives_what_one_load_gives(database_url: str, uid: str) -> None:
    """A load cut in the middle of the data must hold back its last pulses as it would at the
    live edge (the data goes on): loads of one minute, a tick each, until nothing is left."""
    want = _live(database_url, uid)
    end = _watch(database_url, uid)
    late = end + timedelta(hours=3)
    runs = [_derive_all(database_url, now=late, catch_up=timedelta(minutes=1)) for _ in range(12)]
    assert runs[-2:] == [0, 0]
    assert sum(1 for n in runs if n) >= 4  # it really took several loads
    got = _derived(database_url, uid)
    assert got[Metric.HEART_RATE] == want[Metric.HEART_RATE]
    assert got[Metric.RR_INTERVAL] == want[Metric.RR_INTERVAL]
    # Breathing rate takes every whole minute up to where its data ends, as at the live edge, so
    # a minute next to a cut saw its filters end there: measured 17.548088 against 17.548118.
    assert [t for t, _ in got[Metric.RESP_RATE]] == [t for t, _ in want[Metric.RESP_RATE]]
    assert [v for _, v in got[Metric.RESP_RATE]] == pytest.approx(
        [v for _, v in want[Metric.RESP_RATE]], rel=1e-4
    )


def test_an_upload_past_the_late_limit_is_said_once_and_not_derived(
    database_url: str, uid: str, caplog: pytest.LogCaptureFixture
) -> None:
    end = _watch(database_url, uid)
    with psycopg.connect(database_url) as conn:  # the device was derived up to T0 once
        for what in ("pulse", "resp_rate"):
            conn.execute(
                "insert into derived_progress (device_id, what, until_ts) values (%s, %s, %s)",
                (f"ppg-{uid}", what, T0),
            )
    too_late = end + derive.LATE_LIMIT + timedelta(hours=1)
    with caplog.at_level(logging.WARNING, logger="wardwatch.derive"):
        assert _derive_all(database_url, now=too_late) == 0
    said = [r.getMessage() for r in caplog.records if f"ppg-{uid}" in r.getMessage()]
    assert len(said) == 2  # one line per derive job, naming the device, the span and the job
    assert all("stored but not derived" in line for line in said)
    assert any("for pulse" in line for line in said)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="wardwatch.derive"):
        assert _derive_all(database_url, now=too_late + timedelta(minutes=1)) == 0
    assert not [r for r in caplog.records if f"ppg-{uid}" in r.getMessage()]  # once
    assert _derived(database_url, uid) == {m: [] for m in METRICS}


def test_a_chunk_that_arrives_after_the_data_behind_it_was_derived_is_derived_too(
    database_url: str, uid: str
) -> None:
    """The recording's third 30-s chunk arrives last, after the job has derived everything
    around it (a retry, a second path). Storing it moves the PPG jobs back to its start; the
    next run adds the minutes it completes, and everything already stored stays as it was."""
    want = _live(database_url, uid)
    device = f"ppg-{uid}"
    enrol(database_url, device, f"pt-{uid}", T0 - timedelta(hours=1))
    ppg = recording()["PPG"].round(4)
    first, hole = 60 * FS, 90 * FS  # samples [60 s, 90 s) come last
    send = {"kind": "ppg", "unit": "au", "fs": FS}
    send_waveform(database_url, device, samples=ppg[:first], start=T0, **send)
    end = send_waveform(database_url, device, samples=ppg[hole:],
                        start=T0 + timedelta(seconds=90), **send)  # fmt: skip
    assert _derive_all(database_url, now=end + timedelta(minutes=3)) > 0
    before = _derived(database_url, uid)
    assert len(before[Metric.HEART_RATE]) < len(want[Metric.HEART_RATE])  # the hole's minute
    with psycopg.connect(database_url) as conn:
        done = dict(conn.execute(
            "select what, until_ts from derived_progress where device_id = %s", (device,)
        ).fetchall())  # fmt: skip
    assert set(done) == set(DERIVE_JOBS[WaveformKind.PPG])
    assert all(t > T0 + timedelta(seconds=60) for t in done.values())

    send_waveform(database_url, device, samples=ppg[first:hole],
                  start=T0 + timedelta(seconds=60), **send)  # fmt: skip
    with psycopg.connect(database_url) as conn:
        rewound = dict(conn.execute(
            "select what, until_ts from derived_progress where device_id = %s", (device,)
        ).fetchall())  # fmt: skip
    assert rewound == {what: T0 + timedelta(seconds=60) for what in done}
    assert _derive_all(database_url, now=end + timedelta(minutes=4)) > 0
    after = _derived(database_url, uid)
    for metric in METRICS:
        kept = dict(after[metric])
        assert all(kept[t] == v for t, v in before[metric])  # nothing stored is changed
    # The hole's minute is there now, with the value a live run gives it.
    assert [t for t, _ in after[Metric.HEART_RATE]] == [t for t, _ in want[Metric.HEART_RATE]]
    new = {t for t, _ in after[Metric.HEART_RATE]} - {t for t, _ in before[Metric.HEART_RATE]}
    live = dict(want[Metric.HEART_RATE])
    assert new
    assert all(abs(dict(after[Metric.HEART_RATE])[t] - live[t]) < 0.5 for t in new)
    # Redelivering a chunk already stored moves nothing back.
    send_waveform(database_url, device, samples=ppg[first:hole],
                  start=T0 + timedelta(seconds=60), **send)  # fmt: skip
    assert _derive_all(database_url, now=end + timedelta(minutes=5)) == 0


def test_a_tick_visits_only_devices_with_a_waveform_past_the_jobs_progress(
    database_url: str, uid: str
) -> None:
    """Most devices send no waveform: a derive tick must not open a transaction and run three
    queries for each of them. ``with_waveform_due`` names the devices a job can have work for,
    and the job's own state decides it: a device the job has caught up with drops out until
    its next chunk arrives."""
    end = _watch(database_url, uid)  # the 5-minute PPG, from T0
    quiet = f"vitals-only-{uid}"
    enrol(database_url, quiet, f"pt-{quiet}", T0 - timedelta(hours=1))
    ppg, ids = f"ppg-{uid}", [f"ppg-{uid}", quiet, f"never-enrolled-{uid}"]
    with psycopg.connect(database_url) as conn:
        assert devices.with_waveform_due(conn, ids, WaveformKind.PPG, "pulse") == {ppg}
        assert devices.with_waveform_due(conn, ids, WaveformKind.ECG, "beats") == set()
        assert derive.derive_pulse(conn, now=end + timedelta(minutes=3)) > 0
        # Caught up: the job settled to the data's end (the device went quiet), nothing is due.
        assert devices.with_waveform_due(conn, ids, WaveformKind.PPG, "pulse") == set()
        # Breathing rate has its own progress: still due for that job.
        assert devices.with_waveform_due(conn, ids, WaveformKind.PPG, "resp_rate") == {ppg}
    # A later upload makes the device due again, for that job only from its progress on.
    later = end + timedelta(minutes=10)
    send_waveform(database_url, ppg, kind="ppg", unit="au",
                  samples=recording()["PPG"].round(4)[: 60 * FS], fs=FS, start=later)  # fmt: skip
    with psycopg.connect(database_url) as conn:
        assert devices.with_waveform_due(conn, ids, WaveformKind.PPG, "pulse") == {ppg}
