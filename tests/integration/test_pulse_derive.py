"""Heart rate from a real PPG streamed through the real pipeline (derive.derive_pulse).

The recording (tests/data/ppg-ecg-resp, 5 minutes at 100 Hz with a simultaneous ECG) is sent as a
watch that streams its PPG and no heart rate would, 30-s chunks on the waveform topic, into
PostgreSQL. The job must store what the pure core (signals.derived.ppg_beats) gives on the same
samples, whether it runs once or every 45 s as the data arrives, each minute and each pulse
interval once; each minute must agree with the ECG, and so must the HRV of the stored intervals;
NEWS2 then has a heart rate to score. A device that sends its own heart rate, even only every
few minutes, gets none derived.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

from signals.daily import successive
from signals.derived import ppg_beats
from signals.hrv import clean_nn, time_domain
from signals.vitals import Metric
from signals.waveforms import WaveformChunk, WaveformKind
from storage.devices import DERIVED_SUFFIX
from tests.unit.test_ppg_heart_rate import rate_per_minute
from tests.unit.test_ppg_resp import ecg_r_peaks, recording
from tests.waveform_feed import (
    enrol,
    latest_missing,
    same_readings,
    send_vitals,
    send_waveform,
    stored_readings,
)
from wardwatch import derive

pytestmark = pytest.mark.integration

FS = 100
T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def _us(t: datetime) -> int:
    return int(t.timestamp() * 1_000_000)


def _ppg() -> np.ndarray:
    return np.round(recording()["PPG"], 4)


def _setup(url: str, uid: str, own: list[dict[str, object]] | None = None) -> tuple[str, datetime]:
    device, patient = f"ppg-{uid}", f"pt-{uid}"
    enrol(url, device, patient, T0 - timedelta(hours=1))
    end = send_waveform(url, device, kind="ppg", unit="au", samples=_ppg(), fs=FS, start=T0,
                        vitals=own)  # fmt: skip
    return patient, end


def _stored(
    url: str, patient: str, metric: Metric = Metric.HEART_RATE
) -> list[tuple[int, float, str]]:
    return stored_readings(url, patient, metric)


def _pure(metric: Metric = Metric.HEART_RATE) -> list[tuple[int, float]]:
    c = WaveformChunk("p", WaveformKind.PPG, _us(T0), float(FS), _ppg().astype(np.float32), "au",
                      None)  # fmt: skip
    b = ppg_beats(c, after_us=_us(T0) - 1, settled_to_us=c.end_us)
    ts, values = (b.hr_ts_us, b.hr_bpm) if metric is Metric.HEART_RATE else (b.rr_ts_us, b.rr_ms)
    return list(zip(ts.tolist(), values.tolist(), strict=True))


def test_a_ppg_only_watch_gets_a_heart_rate_that_agrees_with_the_ecg(
    database_url: str, uid: str
) -> None:
    patient, end = _setup(database_url, uid)
    with psycopg.connect(database_url) as conn:
        stored = derive.derive_pulse(conn, now=end + timedelta(minutes=3))
        assert derive.derive_pulse(conn, now=end + timedelta(minutes=3)) == 0  # each minute once
    rows = _stored(database_url, patient)
    intervals = _stored(database_url, patient, Metric.RR_INTERVAL)
    assert stored == len(rows) + len(intervals)
    assert len(rows) == 5
    same_readings(rows, _pure())
    same_readings(intervals, _pure(Metric.RR_INTERVAL))
    assert {d for *_, d in rows + intervals} == {f"ppg-{uid}{DERIVED_SUFFIX}"}
    r_peaks = ecg_r_peaks(recording()["ECG"], float(FS))
    ecg = rate_per_minute(r_peaks / FS)
    for t, bpm, _ in rows:
        assert abs(bpm - ecg[(t - _us(T0)) // 60_000_000 - 1]) < 0.5
    # The pulse intervals' HRV, as the nightly feature computes it, against the ECG's
    # (measured: RMSSD 35.91 against 35.69 ms, SDNN 48.07 against 47.41; 431 intervals).
    ts = np.array([t for t, *_ in intervals])
    ibi = np.array([v for _, v, _ in intervals])
    _, mask = clean_nn(ibi)
    got = time_domain(ibi, mask=mask, adjacent=successive(ts, ibi))
    rr = np.diff(r_peaks) / FS * 1000
    _, ecg_mask = clean_nn(rr)
    want = time_domain(rr, mask=ecg_mask)
    assert len(intervals) >= 420
    assert abs(got.rmssd_ms - want.rmssd_ms) < 1.5
    assert abs(got.sdnn_ms - want.sdnn_ms) < 1.5


def test_running_as_the_data_arrives_stores_each_minute_once_and_as_the_ecg(
    database_url: str, uid: str
) -> None:
    """Every 45 s, each run seeing only what had arrived by then: the same five minutes and
    pulse intervals, each once, with the values of a single run over all of it (pulses are found
    per run of acceptable windows, on the clock's 10-s grid, so later data does not move a
    settled minute's pulses)."""
    patient, end = _setup(database_url, uid)
    with psycopg.connect(database_url) as conn:
        at = T0 + timedelta(seconds=40)
        while at < end + timedelta(minutes=3):
            derive.derive_pulse(conn, now=at)
            at += timedelta(seconds=45)
    same_readings(_stored(database_url, patient), _pure())
    same_readings(_stored(database_url, patient, Metric.RR_INTERVAL), _pure(Metric.RR_INTERVAL))


def test_a_watch_that_sends_its_heart_rate_every_5_minutes_gets_none_derived(
    database_url: str, uid: str
) -> None:
    """Its own heart rate at 09:00:30 only; runs every minute until 09:08 each see a stretch
    without one, but the device reports heart rate (within the last hour), so no heart rate is
    derived between its own readings. It sends no beat intervals, so those are derived."""
    own = [{"ts": (T0 + timedelta(seconds=30)).isoformat(), "heart_rate": 88}]
    patient, end = _setup(database_url, uid, own)
    with psycopg.connect(database_url) as conn:
        at = T0 + timedelta(minutes=1)
        while at <= end + timedelta(minutes=3):
            derive.derive_pulse(conn, now=at)
            at += timedelta(minutes=1)
    assert [(v, d) for _, v, d in _stored(database_url, patient)] == [(88.0, f"ppg-{uid}")]
    same_readings(_stored(database_url, patient, Metric.RR_INTERVAL), _pure(Metric.RR_INTERVAL))


def test_a_watch_that_sends_both_gets_nothing_derived_and_its_ppg_is_passed(
    database_url: str, uid: str
) -> None:
    """Its own heart rate and beat intervals: nothing to derive, and the stream is marked passed
    so retention can prune it."""
    at = (T0 + timedelta(seconds=30)).isoformat()
    own = [{"ts": at, "heart_rate": 88, "rr_intervals_ms": [680, 690]}]
    patient, end = _setup(database_url, uid, own)
    with psycopg.connect(database_url) as conn:
        at_run = T0 + timedelta(minutes=1)
        while at_run <= end + timedelta(minutes=3):
            assert derive.derive_pulse(conn, now=at_run) == 0
            at_run += timedelta(minutes=1)
        row = conn.execute(
            "select until_ts from derived_progress where device_id = %s and what = 'pulse'",
            (f"ppg-{uid}",),
        ).fetchone()
    assert [(v, d) for _, v, d in _stored(database_url, patient)] == [(88.0, f"ppg-{uid}")]
    assert {d for *_, d in _stored(database_url, patient, Metric.RR_INTERVAL)} == {f"ppg-{uid}"}
    assert row is not None
    assert row[0] == end


def test_news2_scores_the_derived_heart_rate(database_url: str, uid: str) -> None:
    """A ring that sends SpO2 and breathing rate, streams its PPG and counts no pulse."""
    patient, end = _setup(database_url, uid)
    with psycopg.connect(database_url) as conn:
        derive.derive_pulse(conn, now=end + timedelta(minutes=3))
    at = T0 + timedelta(minutes=5, seconds=30)
    send_vitals(database_url, f"ppg-{uid}", {"ts": at.isoformat(), "spo2": 97, "resp_rate": 15},
                clock=end)  # fmt: skip
    assert "heart_rate" not in latest_missing(database_url, patient)
