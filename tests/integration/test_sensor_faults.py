"""A frozen sensor is found, kept out of NEWS2 with the reason said, and let back in on recovery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import psycopg
import pytest
from prometheus_client import CollectorRegistry

from alerts.model import AlertState, Rule, Severity
from alerts.policy import Policy
from ingest import pipeline as pipe
from signals.vitals import Metric, Readings
from storage import alerts as alert_store
from storage import assignments, devices
from storage.readings import insert_readings
from wardwatch import jobs

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def _us(t: datetime) -> int:
    return int(t.timestamp() * 1_000_000)


def _hour(device: str, patient: str, start: datetime, hr: np.ndarray) -> Readings:
    """An hour of minute readings: the given heart rates, and a breathing SpO2."""
    n = hr.size
    ts = np.array([_us(start + timedelta(minutes=k)) for k in range(n)], dtype=np.int64)
    spo2 = 96.0 + (np.arange(n) % 3)
    return Readings(
        device_id=np.full(2 * n, device, dtype=object),
        patient_id=np.full(2 * n, patient, dtype=object),
        metric=np.concatenate([np.full(n, int(Metric.HEART_RATE)), np.full(n, int(Metric.SPO2))])
        .astype(np.int16),
        ts_us=np.concatenate([ts, ts]),
        value=np.concatenate([hr, spo2]),
        utc_offset_min=np.zeros(2 * n, np.int16),
        received_us=np.concatenate([ts, ts]),
    )  # fmt: skip


def test_a_frozen_heart_rate_is_kept_out_of_news2_and_said_so(database_url: str, uid: str) -> None:
    device, patient = f"dev-{uid}", f"pt-{uid}"
    with psycopg.connect(database_url) as conn:
        assignments.enrol(
            conn, device_id=device, patient_id=patient, ward="w", valid_from=T0 - timedelta(days=1)
        )
        with conn.transaction():
            insert_readings(conn, _hour(device, patient, T0, np.full(60, 72.0)))  # frozen
        jobs.check_sensors(conn, now=T0 + timedelta(hours=1), policy=Policy())
        assert devices.sensor_faults(conn, [patient]) == {patient: {Metric.HEART_RATE: "stuck"}}
        (alert,) = [a for a in alert_store.list_alerts(conn) if a.patient_id == patient]
    assert (alert.rule, alert.severity) == (Rule.SENSOR, Severity.TECHNICAL)
    assert alert.summary == (
        f"device {device}: heart rate stuck over the last hour"
        " (kept out of NEWS2 until it recovers)"
    )

    # Breathing fast and a fever: NEWS2 fires, without the frozen heart rate, and says why.
    p = pipe.Pipeline(
        database_url, settings=pipe.Settings(),
        metrics=pipe.PipelineMetrics.create(CollectorRegistry()),
        clock=lambda: T0 + timedelta(hours=1),
    )  # fmt: skip
    try:
        at = T0 + timedelta(hours=1)
        sample = {"ts": at.isoformat(), "resp_rate": 27, "temperature": 39.3, "heart_rate": 72}
        p.process([(f"wardwatch/v1/devices/{device}/vitals", orjson.dumps([sample]), _us(at))])
    finally:
        p.close()
    with psycopg.connect(database_url) as conn:
        news2 = [
            a for a in alert_store.list_alerts(conn, AlertState.OPEN)
            if a.patient_id == patient and a.rule is Rule.NEWS2
        ]  # fmt: skip
    (clinical,) = news2
    assert "not measured:" in clinical.summary
    assert "HR (sensor stuck)" in clinical.summary

    # The sensor works again for an hour: the fault clears and the technical alert resolves.
    with psycopg.connect(database_url) as conn:
        later = T0 + timedelta(hours=2)
        with conn.transaction():
            moving = 70.0 + np.arange(60) % 5
            insert_readings(conn, _hour(device, patient, later, moving))
        jobs.check_sensors(conn, now=later + timedelta(hours=1), policy=Policy())
        assert devices.sensor_faults(conn, [patient]) == {}
        states = {a.rule: a.state for a in alert_store.list_alerts(conn) if a.patient_id == patient}
    assert states[Rule.SENSOR] is AlertState.RESOLVED


def test_a_patients_two_devices_keep_their_own_faults(database_url: str, uid: str) -> None:
    # A watch (SpO2 fine) and an oximeter whose pulse rate froze for the hour: checking the watch
    # after the oximeter must not clear the oximeter's fault; returning the oximeter clears it.
    watch, oximeter, patient = f"watch-{uid}", f"ox-{uid}", f"pt-{uid}"
    n = 60
    ts = np.array([_us(T0 + timedelta(minutes=k)) for k in range(n)], dtype=np.int64)

    def rows(device: str, metric: Metric, values: np.ndarray) -> Readings:
        return Readings(
            device_id=np.full(n, device, dtype=object),
            patient_id=np.full(n, patient, dtype=object),
            metric=np.full(n, int(metric), np.int16), ts_us=ts, value=values,
            utc_offset_min=np.zeros(n, np.int16), received_us=ts,
        )  # fmt: skip

    with psycopg.connect(database_url) as conn:
        for device in (oximeter, watch):  # the watch is checked last
            assignments.enrol(conn, device_id=device, patient_id=patient, ward="w",
                              valid_from=T0 - timedelta(days=1))  # fmt: skip
        with conn.transaction():
            insert_readings(conn, rows(watch, Metric.SPO2, 95.0 + np.arange(n) % 3))
            insert_readings(conn, rows(oximeter, Metric.HEART_RATE, np.full(n, 72.0)))  # frozen
        now = T0 + timedelta(hours=1)
        for _ in range(2):  # whatever order the devices come in, twice over
            jobs.check_sensors(conn, now=now, policy=Policy())
            assert devices.sensor_faults(conn, [patient]) == {patient: {Metric.HEART_RATE: "stuck"}}
        # The job's device order is the database's; the rule itself, in both orders:
        for first, second in ((oximeter, watch), (watch, oximeter)):
            faults = {oximeter: {Metric.HEART_RATE: "stuck"}, watch: {}}
            devices.set_sensor_faults(conn, patient, first, faults[first], now=now)
            devices.set_sensor_faults(conn, patient, second, faults[second], now=now)
            assert devices.sensor_faults(conn, [patient]) == {patient: {Metric.HEART_RATE: "stuck"}}
        assignments.end(conn, device_id=oximeter, at=now)
        jobs.check_sensors(conn, now=now + timedelta(minutes=5), policy=Policy())
        assert devices.sensor_faults(conn, [patient]) == {}
