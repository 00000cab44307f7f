"""Behaviour-based risk in the running system: days scored from PostgreSQL, the alert raised.

A simulated patient wears a device at home for 17 days and catches an infection after the first
week; their readings are stored as ingest stores them, and the risk job, ticking as APScheduler
would, scores each completed day from the database, keeps the model state there, and raises a
"risk" review alert once the deviation is sustained.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from alerts.model import AlertState, Rule, Severity
from alerts.policy import Policy
from signals.risk import Feature, PatientRisk
from simulator.cohort import Simulated, reduce_days, simulate
from storage import alerts as alert_store
from storage import assignments
from storage import risk as risk_store
from storage.readings import insert_readings
from storage.ward import PostgresWard
from wardwatch import jobs

pytestmark = pytest.mark.integration

START = datetime(2026, 1, 5, 12, tzinfo=UTC)
DAYS = 17


@pytest.fixture(scope="module")
def infected() -> Simulated:
    # Seed chosen for nothing but being fixed; the onset falls on day 8-11 by the scenario.
    return simulate("home_infection", patient_number=1, seed=11, days=DAYS, start=START,
                    rr_intervals=False)  # fmt: skip


def _store(url: str, sim: Simulated) -> str:
    with psycopg.connect(url) as conn:
        assignments.enrol(
            conn,
            device_id="sim-dev-0001",
            patient_id=sim.patient_id,
            ward="ward-a",
            valid_from=START - timedelta(hours=1),
        )
        with conn.transaction():
            insert_readings(conn, sim.readings)
    return sim.patient_id


def _tick(url: str, now: datetime) -> int:
    with psycopg.connect(url) as conn:
        return jobs.assess_risk(conn, now=now, policy=Policy())


def test_days_are_scored_from_the_database_as_the_pure_core_scores_them(
    database_url: str, infected: Simulated
) -> None:
    patient = _store(database_url, infected)
    now = START + timedelta(days=DAYS, hours=1)
    ticks = []
    while (n := _tick(database_url, now)) > 0:
        ticks.append(n)
    # 7 days a tick at most: a long history catches up over several ticks.
    assert ticks[0] == jobs.RISK_DAYS_PER_TICK
    assert sum(ticks) >= DAYS - 1
    with psycopg.connect(database_url) as conn:
        stored = {d.day: d for d in risk_store.days(conn, patient, limit=100)}

    # The same readings reduced in memory by the pure core give the same features and scores:
    # what the job read back from PostgreSQL is what was stored.
    course = reduce_days(infected)
    model = PatientRisk()
    first_whole = course.days[0][0]
    partial_first = min(stored)
    assert partial_first < first_whole  # the enrolment day, partly covered, is scored too
    model.step({f: stored[partial_first].features[f.value] or math.nan for f in Feature})
    compared = 0
    for day, features in course.days:
        if day not in stored:
            continue  # the last day is not complete until the readings pass its end
        row = stored[day]
        for f, v in features.items():
            got = row.features[f.value]
            assert (got is None and math.isnan(v)) or got == pytest.approx(v), (day, f)
        a = model.step(features)
        assert row.score == pytest.approx(a.risk.score, abs=1e-3)
        assert row.alarm == a.alarm
        compared += 1
    assert compared >= DAYS - 3
    assert course.onset is not None
    alarms = sorted(d for d, r in stored.items() if r.alarm)
    assert alarms, "the infection must raise a sustained deviation"
    assert alarms[0] >= course.onset - timedelta(days=1)  # no alarm in the healthy week
    assert all(not r.alarm for d, r in stored.items() if d < course.onset)


def test_the_risk_alert_is_one_review_alert_naming_its_reasons(
    database_url: str, infected: Simulated
) -> None:
    patient = _store(database_url, infected)
    now = START + timedelta(days=DAYS, hours=1)
    while _tick(database_url, now) > 0:
        pass
    assert _tick(database_url, now) == 0  # nothing left: a second run scores nothing twice
    with psycopg.connect(database_url) as conn:
        alerts = [a for a in alert_store.list_alerts(conn) if a.patient_id == patient]
        n_days = conn.execute(
            "select count(*), count(distinct day) from risk_days where patient_id = %s",
            (patient,),
        ).fetchone()
    risk_alerts = [a for a in alerts if a.rule is Rule.RISK]
    assert len(risk_alerts) == 1
    alert = risk_alerts[0]
    assert alert.severity is Severity.REVIEW
    assert alert.state is AlertState.OPEN
    assert alert.summary.startswith("behaviour risk ")
    assert "resting_hr +" in alert.summary
    assert "SD from usual" in alert.summary
    assert n_days is not None
    assert n_days[0] == n_days[1]


def test_a_restart_mid_history_continues_from_the_stored_state(
    database_url: str, infected: Simulated
) -> None:
    """Scoring in one go, or stopped and resumed (a new process), gives the same days."""
    patient = _store(database_url, infected)
    # First run: only the first week exists as far as "now" and the data go.
    _tick(database_url, START + timedelta(days=DAYS, hours=1))
    with psycopg.connect(database_url) as conn:
        first = risk_store.days(conn, patient, limit=100)
        state = risk_store.last_state(conn, patient)
    assert state is not None
    assert len(first) == jobs.RISK_DAYS_PER_TICK
    restored = PatientRisk.restore(state[1])
    assert restored.snapshot() == state[1]
    while _tick(database_url, START + timedelta(days=DAYS, hours=1)) > 0:
        pass
    with psycopg.connect(database_url) as conn:
        resumed = {d.day: d.score for d in risk_store.days(conn, patient, limit=100)}
    assert {d.day: d.score for d in first}.items() <= resumed.items()


def test_the_ward_view_shows_the_latest_day_with_its_reasons(
    database_url: str, infected: Simulated
) -> None:
    patient = _store(database_url, infected)
    while _tick(database_url, START + timedelta(days=DAYS, hours=1)) > 0:
        pass
    with ConnectionPool(database_url, min_size=1, max_size=1, open=True) as pool:
        status = next(p for p in PostgresWard(pool).patients() if p.patient_id == patient)
    with psycopg.connect(database_url) as conn:
        latest = risk_store.days(conn, patient, limit=1)[0]
    assert status.behaviour is not None
    assert status.behaviour.day == latest.day
    assert status.behaviour.score == pytest.approx(latest.score)
    assert status.behaviour.alarm is True
    assert status.behaviour.reasons
    assert all("SD from usual" in r for r in status.behaviour.reasons)


def test_a_patient_whose_day_fails_to_score_does_not_hold_back_the_others(
    database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    sims = [simulate("home_stable", patient_number=n, seed=n, days=9, start=START,
                     rr_intervals=False) for n in (1, 2)]  # fmt: skip
    with psycopg.connect(database_url) as conn:
        for n, sim in enumerate(sims, start=1):
            assignments.enrol(conn, device_id=f"sim-dev-{n:04d}", patient_id=sim.patient_id,
                              ward="ward-a", valid_from=START - timedelta(hours=1))  # fmt: skip
            with conn.transaction():
                insert_readings(conn, sim.readings)
    broken, fine = (s.patient_id for s in sims)
    real = jobs._assess_patient

    def flaky(conn: psycopg.Connection[tuple[object, ...]], patient_id: str, *a: object) -> int:
        if patient_id == broken:
            raise RuntimeError("injected fault")
        return real(conn, patient_id, *a)  # type: ignore[arg-type]

    monkeypatch.setattr(jobs, "_assess_patient", flaky)
    with caplog.at_level(logging.ERROR, logger="wardwatch.jobs"):
        scored = _tick(database_url, START + timedelta(days=9, hours=1))
    assert scored == jobs.RISK_DAYS_PER_TICK  # the fine patient's first week
    (failed,) = [r for r in caplog.records if broken in r.getMessage()]
    assert failed.getMessage() == f"patient {broken}: risk not assessed; the other patients go on"
    assert failed.exc_info is not None
    with psycopg.connect(database_url) as conn:
        assert risk_store.days(conn, broken, limit=100) == []
        assert len(risk_store.days(conn, fine, limit=100)) == jobs.RISK_DAYS_PER_TICK
