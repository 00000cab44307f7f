"""The sensor check reads every device's last hour in one query, and sees what it saw per device."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

from alerts.model import AlertState, Rule
from alerts.policy import Policy
from alerts.rules import SENSOR_FAULTS, SENSOR_METRICS
from signals.quality import Quality, label_windows
from signals.vitals import Metric, Readings
from storage import alerts as alert_store
from storage import assignments, devices
from storage.readings import insert_readings
from wardwatch import jobs

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=3)
_MIN = 60_000_000


def _us(t: datetime) -> int:
    return int(t.timestamp() * 1_000_000)


def _readings(device: str, patient: str, series: dict[Metric, tuple[datetime, np.ndarray]],
              every_min: dict[Metric, int] | None = None) -> Readings:  # fmt: skip
    """One row per value, from each metric's start, a minute apart unless ``every_min`` says."""
    ts, metric, value = [], [], []
    for m, (start, values) in series.items():
        step = (every_min or {}).get(m, 1) * _MIN
        ts.append(_us(start) + step * np.arange(values.size, dtype=np.int64))
        metric.append(np.full(values.size, int(m), np.int16))
        value.append(values.astype(np.float64))
    n = sum(v.size for v in value)
    all_ts = np.concatenate(ts)
    return Readings(
        device_id=np.full(n, device, dtype=object),
        patient_id=np.full(n, patient, dtype=object),
        metric=np.concatenate(metric),
        ts_us=all_ts,
        value=np.concatenate(value),
        utc_offset_min=np.zeros(n, np.int16),
        received_us=all_ts,
    )


def _ward(uid: str) -> dict[str, tuple[str, dict[Metric, tuple[datetime, np.ndarray]]]]:
    """Devices with a frozen heart rate, a noisy SpO2, fine sensors, an older last hour, ..."""
    k = np.arange(150)
    moving_hr = 70.0 + k % 7
    spo2 = 96.0 + k % 3
    rr = 15.0 + k % 4
    start = T0 + timedelta(minutes=30)  # 150 minutes, the last one just before NOW
    return {
        # The heart rate frozen for the last 80 minutes, after moving before that.
        f"stuck-{uid}": (
            f"pt-stuck-{uid}",
            {
                Metric.HEART_RATE: (start, np.concatenate([moving_hr[:70], np.full(80, 72.0)])),
                Metric.SPO2: (start, spo2),
            },
        ),
        # SpO2 jumping 12 points minute to minute in the last hour: motion artefact.
        f"noisy-{uid}": (
            f"pt-noisy-{uid}",
            {
                Metric.HEART_RATE: (start, moving_hr),
                Metric.SPO2: (start, np.where((k >= 90) & (k % 2 == 0), 85.0, spo2)),
                Metric.RESP_RATE: (start, rr),
            },
        ),
        # Every sensor fine; temperature every 5 minutes.
        f"fine-{uid}": (
            f"pt-fine-{uid}",
            {
                Metric.HEART_RATE: (start, moving_hr),
                Metric.SPO2: (start, spo2),
                Metric.RESP_RATE: (start, rr),
                Metric.TEMPERATURE: (start, 36.6 + (k[:30] % 4) / 10),
            },
        ),
        # Silent for the last two hours: its hour is the one before its own latest reading,
        # and its heart rate was stuck then.
        f"older-{uid}": (
            f"pt-older-{uid}",
            {
                Metric.HEART_RATE: (T0 - timedelta(hours=1), np.full(90, 64.0)),
                Metric.RESP_RATE: (T0 - timedelta(hours=1), 14.0 + k[:90] % 3),
            },
        ),
        # Steps only: no vital sign to judge.
        f"steps-{uid}": (f"pt-steps-{uid}", {Metric.STEPS: (start, k.astype(np.float64))}),
        # Enrolled, nothing received.
        f"quiet-{uid}": (f"pt-quiet-{uid}", {}),
    }


def _store(url: str, uid: str) -> dict[str, str]:
    """Enrol the ward's devices and store their readings; return device → patient."""
    ward = _ward(uid)
    with psycopg.connect(url) as conn:
        for device, (patient, series) in ward.items():
            assignments.enrol(conn, device_id=device, patient_id=patient, ward="w",
                              valid_from=T0 - timedelta(days=1))  # fmt: skip
            if series:
                with conn.transaction():
                    insert_readings(
                        conn, _readings(device, patient, series, {Metric.TEMPERATURE: 5})
                    )
        # Breathing rates derived from the stuck device's PPG, stored under an id that starts
        # with the device's own (devices.DERIVED_SUFFIX): never read as the device's.
        derived = f"stuck-{uid}{devices.DERIVED_SUFFIX}"
        with conn.transaction():
            insert_readings(conn, _readings(derived, f"pt-stuck-{uid}", {
                Metric.RESP_RATE: (T0 + timedelta(hours=2), np.full(40, 30.0)),
            }))  # fmt: skip
    return {device: patient for device, (patient, _) in ward.items()}


def test_one_query_returns_what_recent_series_returns_per_device(
    database_url: str, uid: str
) -> None:
    ids = list(_store(database_url, uid))
    with psycopg.connect(database_url) as conn:
        batched = devices.recent_series_many(
            conn, [*ids, f"unknown-{uid}"], SENSOR_METRICS, span=jobs.SENSOR_SPAN
        )
        for device in [*ids, f"unknown-{uid}"]:
            one = devices.recent_series(conn, device, SENSOR_METRICS, span=jobs.SENSOR_SPAN)
            assert list(batched[device]) == list(one) == list(SENSOR_METRICS)
            for metric, (ts, values) in one.items():
                got_ts, got_values = batched[device][metric]
                assert got_ts.dtype == ts.dtype
                assert got_values.dtype == values.dtype
                np.testing.assert_array_equal(got_ts, ts)
                np.testing.assert_array_equal(got_values, values)
        # Not vacuous: an hour of minute readings each, the older device's hour its own.
        hr_ts, _ = batched[f"stuck-{uid}"][Metric.HEART_RATE]
        assert hr_ts.size == 60
        older_ts, older_hr = batched[f"older-{uid}"][Metric.HEART_RATE]
        assert older_ts.size == 60
        assert set(older_hr) == {64.0}
        assert all(ts.size == 0 for ts, _ in batched[f"quiet-{uid}"].values())
        assert devices.recent_series_many(conn, [], SENSOR_METRICS, span=jobs.SENSOR_SPAN) == {}
        # It turns JIT off for its query only: the caller's transaction keeps its setting.
        with conn.transaction():
            conn.execute("set local jit = on")
            devices.recent_series_many(conn, ids, SENSOR_METRICS, span=jobs.SENSOR_SPAN)
            assert conn.execute("select current_setting('jit')").fetchone() == ("on",)


def _per_device_labels(conn: jobs.Conn, device: str) -> dict[Metric, Quality]:
    """What check_sensors found before it was batched: one recent_series query per device."""
    labels = {}
    span_s = jobs.SENSOR_SPAN.total_seconds()
    for metric, (ts, values) in devices.recent_series(
        conn, device, SENSOR_METRICS, span=jobs.SENSOR_SPAN
    ).items():
        if ts.size:
            start = int(ts.max()) + 1 - int(span_s * 1e6)
            window = label_windows(ts, values, metric=metric, start_us=start, window_s=span_s,
                                   n_windows=1)  # fmt: skip
            labels[metric] = Quality(int(window[0]))
    return labels


def test_the_batched_check_finds_the_faults_the_per_device_check_found(
    database_url: str, uid: str
) -> None:
    ward = _store(database_url, uid)
    with psycopg.connect(database_url) as conn:
        expected = {}
        for device, patient in ward.items():
            labels = _per_device_labels(conn, device)
            faults = {m: q.label for m, q in labels.items() if q in SENSOR_FAULTS}
            if faults:
                expected[patient] = faults
        jobs.check_sensors(conn, now=NOW, policy=Policy())
        found = devices.sensor_faults(conn, ward.values())
        sensor_alerts = {
            a.patient_id
            for a in alert_store.list_alerts(conn, AlertState.OPEN)
            if a.rule is Rule.SENSOR and a.patient_id in ward.values()
        }
    assert found == expected
    # What that is: the frozen heart rates (the older device's in its own last hour) and the
    # noisy SpO2; the fine, steps-only and quiet devices have nothing against them.
    assert found == {
        f"pt-stuck-{uid}": {Metric.HEART_RATE: "stuck"},
        f"pt-noisy-{uid}": {Metric.SPO2: "noisy"},
        f"pt-older-{uid}": {Metric.HEART_RATE: "stuck"},
    }
    assert sensor_alerts == set(found)
