"""Technical alerts from real stored readings, status reports and refusals (real PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

from alerts.model import AlertState, Rule, Severity
from alerts.policy import Policy
from signals.vitals import Metric, Readings
from signals.waveforms import DeviceStatus
from storage import alerts as alert_store
from storage import assignments, devices
from storage.readings import QuarantineRow, insert_quarantine, insert_readings
from wardwatch import jobs

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _us(t: datetime) -> int:
    return int(t.timestamp() * 1_000_000)


def _readings(device: str, patient: str, rows: list[tuple[datetime, Metric, float]]) -> Readings:
    n = len(rows)
    ts = np.array([_us(t) for t, _, _ in rows], dtype=np.int64)
    return Readings(
        device_id=np.full(n, device, dtype=object),
        patient_id=np.full(n, patient, dtype=object),
        metric=np.array([int(m) for _, m, _ in rows], dtype=np.int16),
        ts_us=ts,
        value=np.array([v for _, _, v in rows], dtype=np.float64),
        utc_offset_min=np.zeros(n, np.int16),
        received_us=ts,
    )


def _open(conn: psycopg.Connection[tuple[object, ...]], patient: str) -> dict[Rule, str]:
    return {
        rule: a.summary
        for (pid, rule), a in alert_store.open_alerts(conn, [patient]).items()
        if pid == patient
    }


def _check(url: str, now: datetime) -> None:
    with psycopg.connect(url) as conn:
        jobs.check_devices(conn, now=now, policy=Policy())


def test_each_device_problem_raises_its_technical_alert_and_resolves_when_fixed(
    database_url: str, uid: str
) -> None:
    device, patient = f"dev-{uid}", f"pt-{uid}"
    minutes = [NOW - timedelta(minutes=m) for m in range(60, 0, -1)]
    with psycopg.connect(database_url) as conn:
        assignments.enrol(
            conn, device_id=device, patient_id=patient, ward="ward-d",
            valid_from=NOW - timedelta(days=1),
        )  # fmt: skip
        with conn.transaction():
            # Worn until 40 min ago, then off the wrist; battery falling to 8 %.
            rows = [(t, Metric.WORN, 1.0 if t < NOW - timedelta(minutes=40) else 0.0)
                    for t in minutes]  # fmt: skip
            rows += [(minutes[-1], Metric.BATTERY, 8.0), (minutes[0], Metric.BATTERY, 30.0)]
            insert_readings(conn, _readings(device, patient, rows))
            devices.insert_statuses(
                conn,
                [DeviceStatus(device, _us(NOW - timedelta(minutes=2)), 8.0, False, "1.2.3",
                              400.0, None, _us(NOW - timedelta(minutes=2)))],
            )  # fmt: skip
            insert_quarantine(
                conn,
                [QuarantineRow(NOW - timedelta(minutes=5), f"wardwatch/v1/devices/{device}/vitals",
                               device, "future timestamp", "ts is 400 s after ...", b"[]")] * 3,
            )  # fmt: skip
    _check(database_url, NOW)
    with psycopg.connect(database_url) as conn:
        opened = _open(conn, patient)
        alerts = {a.rule: a for a in alert_store.list_alerts(conn) if a.patient_id == patient}
    assert set(opened) == {Rule.BATTERY_CRITICAL, Rule.NOT_WORN, Rule.CLOCK_SKEW}
    assert opened[Rule.BATTERY_CRITICAL].startswith(f"battery of device {device} at 8 %")
    assert opened[Rule.NOT_WORN] == (
        f"device {device} off the body for 39 min: no vital signs are being measured"
    )
    assert opened[Rule.CLOCK_SKEW] == (
        f"device {device}: clock 400 s ahead; 3 readings refused as future-dated in the last "
        "hour (set its clock or check its time sync)"
    )
    assert all(a.severity is Severity.TECHNICAL for a in alerts.values())

    # Charged and back on the wrist, clock fixed: each alert resolves at once (no hold-down).
    later = NOW + timedelta(hours=2)
    with psycopg.connect(database_url) as conn, conn.transaction():
        fixed = [(later - timedelta(minutes=1), Metric.WORN, 1.0),
                 (later - timedelta(minutes=1), Metric.BATTERY, 95.0)]  # fmt: skip
        insert_readings(conn, _readings(device, patient, fixed))
        devices.insert_statuses(
            conn,
            [DeviceStatus(device, _us(later - timedelta(minutes=1)), 95.0, True, "1.2.3", 0.4,
                          None, _us(later - timedelta(minutes=1)))],
        )  # fmt: skip
    _check(database_url, later)
    with psycopg.connect(database_url) as conn:
        assert _open(conn, patient) == {}
        states = {a.rule: a.state for a in alert_store.list_alerts(conn) if a.patient_id == patient}
    assert states == dict.fromkeys(
        (Rule.BATTERY_CRITICAL, Rule.NOT_WORN, Rule.CLOCK_SKEW), AlertState.RESOLVED
    )


def test_a_low_battery_is_one_alert_and_becomes_critical_as_it_falls(
    database_url: str, uid: str
) -> None:
    device, patient = f"dev-{uid}", f"pt-{uid}"
    with psycopg.connect(database_url) as conn:
        assignments.enrol(
            conn, device_id=device, patient_id=patient, ward="ward-d",
            valid_from=NOW - timedelta(days=1),
        )  # fmt: skip
        with conn.transaction():
            insert_readings(conn, _readings(device, patient, [(NOW, Metric.BATTERY, 18.0)]))
    _check(database_url, NOW)
    _check(database_url, NOW + timedelta(seconds=30))  # a second tick changes nothing
    with psycopg.connect(database_url) as conn:
        assert set(_open(conn, patient)) == {Rule.BATTERY}
        with conn.transaction():
            later = NOW + timedelta(hours=3)
            insert_readings(conn, _readings(device, patient, [(later, Metric.BATTERY, 9.0)]))
    _check(database_url, NOW + timedelta(hours=3))
    with psycopg.connect(database_url) as conn:
        assert set(_open(conn, patient)) == {Rule.BATTERY_CRITICAL}
        battery = [a for a in alert_store.list_alerts(conn) if a.patient_id == patient]
    assert sorted((a.rule.value, a.state.value) for a in battery) == [
        ("battery", "resolved"),
        ("battery_critical", "open"),
    ]
