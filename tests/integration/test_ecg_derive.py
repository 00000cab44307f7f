"""Beat-to-beat intervals and heart rate from a real ECG streamed through the real pipeline.

Ten minutes of MIT-BIH record 100 (lead MLII, 360 Hz; tests/data/mitdb) are sent as an ECG patch
would, 30-s chunks on the waveform topic, into PostgreSQL; the job must store the intervals and
per-minute heart rates the pure core (signals.derived.ecg_beats) finds on the same samples,
whether it runs once or every 45 s as the data arrives, each reading once, and the heart rate
must match the cardiologists' reference beats.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest
from scipy import signal

from alerts.model import Rule
from alerts.policy import Policy
from signals.derived import ecg_beats
from signals.vitals import Metric
from signals.waveforms import WaveformChunk, WaveformKind
from storage import alerts as alert_store
from storage import devices
from storage.devices import DERIVED_SUFFIX
from tests.unit.test_beats_ecg import load_record
from tests.waveform_feed import enrol, same_readings, send_waveform, stored_readings
from wardwatch import derive, jobs

pytestmark = pytest.mark.integration

FS = 360
MINUTES = 10
T0 = datetime(2026, 11, 28, 3, 0, 7, tzinfo=UTC)  # not on a minute: minutes are the clock's


def _us(t: datetime) -> int:
    return int(t.timestamp() * 1_000_000)


@pytest.fixture(scope="module")
def record() -> tuple[np.ndarray, np.ndarray]:
    ecg, ref = load_record("100")
    n = MINUTES * 60 * FS
    return np.round(ecg[:n], 3), ref[ref < n]


def _send(
    url: str, device: str, ecg: np.ndarray, extra: list[dict[str, object]] | None = None
) -> datetime:
    return send_waveform(url, device, kind="ecg", unit="mV", samples=ecg, fs=FS, start=T0,
                         vitals=extra)  # fmt: skip


def _enrol(url: str, uid: str) -> tuple[str, str]:
    device, patient = f"ecg-{uid}", f"pt-{uid}"
    enrol(url, device, patient, T0 - timedelta(hours=1))
    return device, patient


def _pure(ecg: np.ndarray) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    chunk = WaveformChunk("e", WaveformKind.ECG, _us(T0), float(FS), ecg.astype(np.float32),
                          "mV", None)  # fmt: skip
    b = ecg_beats(chunk, after_us=_us(T0) - 1, settled_to_us=chunk.end_us)
    return (list(zip(b.rr_ts_us.tolist(), b.rr_ms.tolist(), strict=True)),
            list(zip(b.hr_ts_us.tolist(), b.hr_bpm.tolist(), strict=True)))  # fmt: skip


def test_an_ecg_patch_gives_rr_intervals_and_heart_rate(
    database_url: str, uid: str, record: tuple[np.ndarray, np.ndarray]
) -> None:
    ecg, ref = record
    device, patient = _enrol(database_url, uid)
    end = _send(database_url, device, ecg)
    with psycopg.connect(database_url) as conn:
        stored = derive.derive_beats(conn, now=end + timedelta(minutes=3))
        assert derive.derive_beats(conn, now=end + timedelta(minutes=3)) == 0  # each once
    rr = stored_readings(database_url, patient, Metric.RR_INTERVAL)
    hr = stored_readings(database_url, patient, Metric.HEART_RATE)
    pure_rr, pure_hr = _pure(ecg)
    assert stored == len(rr) + len(hr)
    same_readings(rr, pure_rr)
    same_readings(hr, pure_hr)
    assert {d for *_, d in rr + hr} == {device + DERIVED_SUFFIX}
    # Every stored interval is one of the cardiologists' (both beats within 150 ms), and all but
    # 4 of the 759 are stored: NN only, so a beat whose shape is not the dominant one takes its
    # two intervals with it (here an atrial premature beat, and one normal beat misjudged).
    ref_us_all = _us(T0) + np.rint(ref * (1e6 / FS)).astype(np.int64)
    for t, v, _ in rr:
        k = int(np.argmin(np.abs(ref_us_all - t)))
        assert k >= 1
        assert abs(ref_us_all[k] - t) <= 150_000
        assert abs(ref_us_all[k - 1] - (t - round(v * 1000))) <= 150_000
    assert len(rr) == ref.size - 1 - 4
    assert len(hr) == MINUTES - 1  # the whole clock minutes inside 03:00:07-03:10:07
    # Against the reference beats: each minute's rate within 0.5 beats/min.
    ref_us = _us(T0) + np.rint(ref * (1e6 / FS)).astype(np.int64)
    for t, bpm, _ in hr:
        inside = (ref_us[1:] > t - 60_000_000) & (ref_us[1:] <= t)
        reference = 60_000 / np.mean(np.diff(ref_us)[inside] / 1000)
        assert abs(bpm - reference) < 0.5


def test_running_as_the_data_arrives_stores_the_same_readings_once(
    database_url: str, uid: str, record: tuple[np.ndarray, np.ndarray]
) -> None:
    ecg, _ = record
    device, patient = _enrol(database_url, uid)
    end = _send(database_url, device, ecg)
    with psycopg.connect(database_url) as conn:
        at = T0 + timedelta(seconds=40)
        while at < end + timedelta(minutes=3):
            derive.derive_beats(conn, now=at)
            at += timedelta(seconds=45)
    pure_rr, pure_hr = _pure(ecg)
    same_readings(stored_readings(database_url, patient, Metric.RR_INTERVAL), pure_rr)
    same_readings(stored_readings(database_url, patient, Metric.HEART_RATE), pure_hr)


def test_what_the_device_reports_itself_is_not_derived(
    database_url: str, uid: str, record: tuple[np.ndarray, np.ndarray]
) -> None:
    ecg, _ = record
    device, patient = _enrol(database_url, uid)
    own = [{"ts": (T0 + timedelta(minutes=1)).isoformat(), "heart_rate": 74}]
    end = _send(database_url, device, ecg[: 3 * 60 * FS], extra=own)
    with psycopg.connect(database_url) as conn:
        assert derive.derive_beats(conn, now=end + timedelta(minutes=3)) > 0
    hr = stored_readings(database_url, patient, Metric.HEART_RATE)
    assert [(v, d) for _, v, d in hr] == [(74.0, device)]  # the device's own, nothing derived
    assert (
        len(stored_readings(database_url, patient, Metric.RR_INTERVAL)) > 200
    )  # intervals still come


def test_an_ecg_with_its_electrodes_off_is_reported_and_clears_when_they_are_back(
    database_url: str, uid: str
) -> None:
    """A chest patch whose electrodes came off streams on (so "no data" stays quiet), but its
    ECG is noise and mains hum in which no beat can be found: the heart rate is not measured,
    and until 2026-11-29 nobody was told. After an hour of it the device team gets the
    technical "sensor" alert; with the electrodes back (30 min of record 100, which covers
    the hour's 80 % with the noise before it) it resolves."""
    device, patient = _enrol(database_url, uid)
    rng = np.random.default_rng(5)
    n = 62 * 60 * 120  # 62 minutes at 120 Hz
    t = np.arange(n) / 120
    noise = np.round(rng.normal(0, 0.05, n) + 0.3 * np.sin(2 * np.pi * 50 * t), 3)
    end = send_waveform(database_url, device, kind="ecg", unit="mV", samples=noise, fs=120,
                        start=T0)  # fmt: skip
    with psycopg.connect(database_url) as conn:
        at = end + timedelta(minutes=3)
        derive.derive_beats(conn, now=at, catch_up=timedelta(hours=2))
        assert stored_readings(database_url, patient, Metric.HEART_RATE) == []
        assert devices.unusable_heart_signal(conn, [device], now=at, span=jobs.SENSOR_SPAN) == {
            device: WaveformKind.ECG
        }
        jobs.check_sensors(conn, now=at, policy=Policy())
        summary = alert_store.open_alerts(conn, [patient])[patient, Rule.SENSOR].summary
        assert "no heartbeat found in its ECG over the last hour" in summary
    ecg, _ = load_record("100")
    back = np.round(signal.resample_poly(ecg[: 40 * 60 * 360], 1, 3), 3)  # 40 min at 120 Hz
    end = send_waveform(database_url, device, kind="ecg", unit="mV", samples=back, fs=120,
                        start=end)  # fmt: skip
    with psycopg.connect(database_url) as conn:
        at = end + timedelta(minutes=3)
        derive.derive_beats(conn, now=at, catch_up=timedelta(hours=2))
        assert devices.unusable_heart_signal(conn, [device], now=at, span=jobs.SENSOR_SPAN) == {}
        jobs.check_sensors(conn, now=at, policy=Policy())
        assert (patient, Rule.SENSOR) not in alert_store.open_alerts(conn, [patient])
