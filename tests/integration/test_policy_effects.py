"""A stored policy changes what happens: "for" durations, per-ward tiers, rules switched off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import psycopg
import pytest
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

from alerts.model import Alert, Rule
from alerts.policy import Overrides, Pause
from ingest import pipeline as pipe
from signals.vitals import Metric, Readings
from storage import alerts as alert_store
from storage import assignments
from storage import policy as policy_store
from storage.readings import insert_readings
from storage.ward import PostgresWard
from wardwatch import jobs

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
POLICY = """\
version: 1
default:
  rules:
    news2: {for: 2m}
wards:
  resp:
    escalation:
      clinical_tiers: [ward nurse, respiratory consultant]
      ack_within: {emergency: 3m}
  frailty:
    rules:
      not_worn: {enabled: false}
"""
SICK = {"heart_rate": 135, "resp_rate": 29, "spo2": 88, "temperature": 39.4, "on_oxygen": False}
WELL = {"heart_rate": 72, "resp_rate": 14, "spo2": 97, "temperature": 36.8, "on_oxygen": False}


def _us(t: datetime) -> int:
    return int(t.timestamp() * 1_000_000)


@pytest.fixture
def stored(database_url: str) -> str:
    with psycopg.connect(database_url) as conn:
        policy_store.save(conn, POLICY, set_by="Matron Lee", at=T0 - timedelta(days=1))
    return database_url


def _enrol(url: str, uid: str, ward: str) -> tuple[str, str]:
    device, patient = f"dev-{ward}-{uid}", f"pt-{ward}-{uid}"
    with psycopg.connect(url) as conn:
        assignments.enrol(
            conn, device_id=device, patient_id=patient, ward=ward,
            valid_from=T0 - timedelta(hours=1),
        )  # fmt: skip
    return device, patient


def _feed(p: pipe.Pipeline, device: str, at: datetime, vitals: dict[str, object]) -> None:
    sample = {"ts": at.isoformat(), **vitals}
    p.process([(f"wardwatch/v1/devices/{device}/vitals", orjson.dumps([sample]), _us(at))])


def _open(url: str, patient: str) -> dict[Rule, str]:
    with psycopg.connect(url) as conn:
        return {r: a.summary for (pid, r), a in alert_store.open_alerts(conn, [patient]).items()}


def test_news2_fires_only_once_the_score_has_lasted_the_policys_for(stored: str, uid: str) -> None:
    device, patient = _enrol(stored, uid, "ward-a")
    p = pipe.Pipeline(
        stored, settings=pipe.Settings(), metrics=pipe.PipelineMetrics.create(CollectorRegistry()),
        clock=lambda: T0 + timedelta(minutes=5),
    )  # fmt: skip
    try:
        # One bad minute (an artefact) and back to normal: nothing is raised.
        _feed(p, device, T0, SICK)
        _feed(p, device, T0 + timedelta(minutes=1), WELL)
        _feed(p, device, T0 + timedelta(minutes=3), SICK)  # waiting again, from minute 3
        _feed(p, device, T0 + timedelta(minutes=4), SICK)
        assert _open(stored, patient) == {}
        _feed(p, device, T0 + timedelta(minutes=5), SICK)  # lasted 2 min: now it fires
        assert list(_open(stored, patient)) == [Rule.NEWS2]
        with psycopg.connect(stored) as conn:
            assert alert_store.pending(conn, [patient]) == {}
    finally:
        p.close()


def test_each_ward_escalates_through_its_own_tiers(stored: str, uid: str) -> None:
    resp_device, resp_patient = _enrol(stored, uid, "resp")
    a_device, a_patient = _enrol(stored, uid, "ward-a")
    p = pipe.Pipeline(
        stored, settings=pipe.Settings(), metrics=pipe.PipelineMetrics.create(CollectorRegistry()),
        clock=lambda: T0,
    )  # fmt: skip
    try:
        for minute in (0, 1, 2):
            for device in (resp_device, a_device):
                _feed(p, device, T0 + timedelta(minutes=minute), SICK)
    finally:
        p.close()
    with psycopg.connect(stored) as conn:
        policy = policy_store.current(conn).policy
        assert jobs.escalate(conn, now=T0 + timedelta(minutes=3, seconds=1), policy=policy) == 1
        pages = conn.execute(
            "select a.patient_id, n.recipient from notifications n join alerts a"
            " on a.id = n.alert_id where n.dedup_key like %s",
            ("%:esc:%",),
        ).fetchall()
    # The respiratory ward's 3-minute tier has passed; ward-a's default 5 minutes has not.
    assert {(str(pid), str(r)) for pid, r in pages} == {(resp_patient, "respiratory consultant")}
    assert a_patient in {a.patient_id for a in _all_open(stored)}


def _all_open(url: str) -> list[Alert]:
    with psycopg.connect(url) as conn:
        return alert_store.list_alerts(conn)


def test_a_rule_switched_off_for_a_ward_raises_nothing_there(stored: str, uid: str) -> None:
    off, frail = _enrol(stored, uid, "frailty")
    on, usual = _enrol(stored, uid, "ward-a")
    with psycopg.connect(stored) as conn:
        with conn.transaction():
            for device, patient in ((off, frail), (on, usual)):
                ts = np.array([_us(T0 + timedelta(minutes=m)) for m in range(45)], np.int64)
                n = ts.size
                insert_readings(
                    conn,
                    Readings(
                        device_id=np.full(n, device, dtype=object),
                        patient_id=np.full(n, patient, dtype=object),
                        metric=np.full(n, int(Metric.WORN), np.int16),
                        ts_us=ts,
                        value=np.zeros(n),
                        utc_offset_min=np.zeros(n, np.int16),
                        received_us=ts,
                    ),
                )
        jobs.check_devices(
            conn, now=T0 + timedelta(minutes=45), policy=policy_store.current(conn).policy
        )
    assert list(_open(stored, usual)) == [Rule.NOT_WORN]
    assert _open(stored, frail) == {}


def test_the_ward_view_shows_a_pause_and_the_spo2_scale(stored: str, uid: str) -> None:
    _, patient = _enrol(stored, uid, "ward-a")
    now = datetime.now(UTC)
    with psycopg.connect(stored) as conn:
        policy_store.set_overrides(
            conn,
            patient,
            Overrides(
                spo2_scale=2, pause=Pause("day case at the hospital", now, now + timedelta(hours=6))
            ),
            set_by="Dr Shah",
            reason="COPD, hypercapnic, target 88-92 %",
            now=now,
        )
    with ConnectionPool(stored, min_size=1, max_size=1, open=True) as pool:
        status = next(p for p in PostgresWard(pool).patients() if p.patient_id == patient)
    assert status.spo2_scale == 2
    assert status.pause is not None
    assert status.pause.reason == "day case at the hospital"
    assert status.pause.covers(now + timedelta(hours=1))
