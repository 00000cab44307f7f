"""Breathing rate derived from a real PPG stream, stored for the patient and used by NEWS2.

The recording (tests/data/ppg-ecg-resp, NeuroKit2's 5-minute resting example, 100 Hz) is sent
as a device would, 30-s PPG chunks on the waveform topic, through the real pipeline into
PostgreSQL; the job derives one breathing rate a minute, which must agree with the belt worn at
the same time and with the pure function on the same samples.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import psycopg
import pytest
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

from ingest import pipeline as pipe
from signals.respiration import resp_rate_from_signal, resp_rates_from_ppg
from signals.vitals import Metric
from storage.devices import DERIVED_SUFFIX
from storage.ward import PostgresWard
from tests.waveform_feed import enrol, latest_missing, send_vitals, send_waveform
from wardwatch import derive

pytestmark = pytest.mark.integration

RECORDING = (
    Path(__file__).parents[1] / "data" / "ppg-ecg-resp" / "neurokit_bio_resting_5min_100hz.csv"
)
FS = 100
T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)  # on a whole minute, as the minutes are aligned


def _columns() -> tuple[np.ndarray, np.ndarray]:
    with RECORDING.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return (np.array([float(r["PPG"]) for r in rows]), np.array([float(r["RSP"]) for r in rows]))


def _us(t: datetime) -> int:
    return int(t.timestamp() * 1_000_000)


def _pipeline(url: str) -> pipe.Pipeline:
    return pipe.Pipeline(
        url, settings=pipe.Settings(), metrics=pipe.PipelineMetrics.create(CollectorRegistry()),
        clock=lambda: T0 + timedelta(minutes=6),
    )  # fmt: skip


def _send_ppg(url: str, device: str, ppg: np.ndarray) -> None:
    send_waveform(url, device, kind="ppg", unit="au", samples=ppg, fs=FS, start=T0)


def _enrol(url: str, uid: str) -> tuple[str, str]:
    device, patient = f"ppg-{uid}", f"pt-{uid}"
    enrol(url, device, patient, T0 - timedelta(hours=1))
    return device, patient


def test_breathing_rate_from_a_real_ppg_agrees_with_the_belt_and_feeds_news2(
    database_url: str, uid: str
) -> None:
    ppg, belt = _columns()
    device, patient = _enrol(database_url, uid)
    _send_ppg(database_url, device, ppg)
    now = T0 + timedelta(minutes=6)
    with psycopg.connect(database_url) as conn:
        stored = derive.derive_resp_rate(conn, now=now)
        assert derive.derive_resp_rate(conn, now=now) == 0  # each minute once
        rows = conn.execute(
            "select ts, value, device_id from readings where patient_id = %s and metric = %s"
            " order by ts",
            (patient, int(Metric.RESP_RATE)),
        ).fetchall()
    # The same minutes, the same values as the pure function on the same samples.
    pure = resp_rates_from_ppg(ppg, FS, window_s=60)
    expected = [(T0 + timedelta(minutes=i + 1), r) for i, r in enumerate(pure) if np.isfinite(r)]
    assert stored == len(expected) >= 4
    assert [(ts, pytest.approx(v)) for ts, v, _ in rows] == expected
    assert {d for *_, d in rows} == {device + DERIVED_SUFFIX}  # where it came from stays visible
    # Against the respiration belt worn at the same time, minute by minute (measured: within
    # 0.7 breaths/min each; 15.70 against the belt's 16.06 breaths/min, as medians).
    belt_minutes = [
        resp_rate_from_signal(belt[i * 60 * FS : (i + 1) * 60 * FS], FS) for i in range(5)
    ]
    for ts, rate in expected:
        assert abs(rate - belt_minutes[(ts - T0) // timedelta(minutes=1) - 1]) < 1.0
    assert abs(float(np.median([r for _, r in expected])) - float(np.median(belt_minutes))) < 1.0

    # A watch sending heart rate and SpO2 only: NEWS2 now has a respiratory rate to score.
    vitals = {"ts": (T0 + timedelta(minutes=5, seconds=30)).isoformat(), "heart_rate": 86,
              "spo2": 97}  # fmt: skip
    send_vitals(database_url, device, vitals, clock=T0 + timedelta(minutes=6))
    assert "resp_rate" not in latest_missing(database_url, patient)
    # The nurse's view says the breathing rate was derived, not measured by the device.
    with ConnectionPool(database_url, min_size=1, max_size=1, open=True) as pool:
        status = next(p for p in PostgresWard(pool).patients() if p.patient_id == patient)
    assert status.derived == ("resp_rate",)
    assert status.latest["resp_rate"] == pytest.approx(expected[-1][1])


def test_a_device_that_reports_its_own_breathing_rate_is_left_alone(
    database_url: str, uid: str
) -> None:
    ppg, _ = _columns()
    device, _ = _enrol(database_url, uid)
    _send_ppg(database_url, device, ppg)
    p = _pipeline(database_url)
    try:
        own = {"ts": (T0 + timedelta(minutes=2)).isoformat(), "resp_rate": 15}
        p.process([(f"wardwatch/v1/devices/{device}/vitals", orjson.dumps([own]), _us(T0))])
    finally:
        p.close()
    with psycopg.connect(database_url) as conn:
        assert derive.derive_resp_rate(conn, now=T0 + timedelta(minutes=6)) == 0
