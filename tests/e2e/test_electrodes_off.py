"""Simulator → Mosquitto → ingest → PostgreSQL → derive_beats → check_sensors → a technical alert.

A chest patch (no heart rate of its own, no lead-off detection) streams its ECG; half an hour to an
hour in its electrodes come off (scenario ``electrodes_off``) and it goes on streaming noise. The
service, with its own scheduler, must first derive the patient's heart rate and then, an hour
into the noise, tell the device team, and never page clinically for it.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from alerts.model import Rule, Severity
from signals.vitals import Metric
from simulator import make_ward, simulate
from storage import alerts as alert_store
from storage.devices import DERIVED_SUFFIX
from tests.e2e.test_end_to_end import _until
from wardwatch.demo import enrol_ward
from wardwatch.service import Options, running
from wardwatch.settings import Settings

pytestmark = pytest.mark.integration


def test_a_patch_whose_electrodes_come_off_is_reported_to_the_device_team(
    mqtt_url: str, database_url: str, uid: str
) -> None:
    ward = make_ward(1, seed=3, scenario="electrodes_off", ward=f"ward-{uid}", first_number=7301)
    (patient,) = ward
    assert patient.onset is not None
    enrol_ward(database_url, ward, datetime.now(UTC) - timedelta(hours=3))
    settings = Settings(mqtt_url, database_url, "127.0.0.1", 0)
    options = Options(client_id=f"ingest-{uid}", derive_tick_s=1.0, sensor_tick_s=1.0)
    with running(settings, options):
        # 12 s of wall time at 600x: the two hours before now, the patch streaming 125 Hz.
        stats = simulate(ward, mqtt_url=mqtt_url, speed=600, minutes=12 / 60, seed=4,
                         stop=threading.Event(), ecg_hz=125)  # fmt: skip
        off_at = stats.event_start + patient.onset
        assert stats.event_end - off_at >= timedelta(hours=1)  # an hour of noise at least

        def sensor_alert() -> str | None:
            with psycopg.connect(database_url) as conn:
                a = alert_store.open_alerts(conn, [patient.patient_id]).get(
                    (patient.patient_id, Rule.SENSOR)
                )
            return None if a is None else a.summary

        summary = _until("the sensor alert", sensor_alert, timeout_s=90)
        with psycopg.connect(database_url) as conn:
            rows = conn.execute(
                "select ts, device_id from readings where patient_id = %s and metric = %s",
                (patient.patient_id, int(Metric.HEART_RATE)),
            ).fetchall()
            alerts = alert_store.open_alerts(conn, [patient.patient_id])
    assert "no heartbeat found in its ECG over the last hour" in summary
    # Before the electrodes came off, the heart rate was derived from the ECG, and only then.
    assert {d for _, d in rows} == {patient.device_id + DERIVED_SUFFIX}
    assert len(rows) >= 20
    assert max(ts for ts, _ in rows) <= off_at + timedelta(minutes=1)
    # Technical: the device team's, never a clinical page.
    assert {a.severity for a in alerts.values()} == {Severity.TECHNICAL}
