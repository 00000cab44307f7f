"""The alerting report over real PostgreSQL: alerts, acks and escalations made by storage.alerts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from alerts.escalation import EscalationPolicy
from alerts.lifecycle import Fire, Resolve
from alerts.model import Condition, Rule, Severity
from alerts.policy import Policy, WardPolicy
from alerts.report import ALL_WARDS
from storage import alerts as alert_store
from storage import assignments
from storage.report import report
from wardwatch.cli import main

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 2, tzinfo=UTC)
UNTIL = T0 + timedelta(days=1)
MIN = timedelta(minutes=1)
H = timedelta(hours=1)
POLICY = EscalationPolicy()
Conn = psycopg.Connection[tuple[object, ...]]


def _fire(conn: Conn, patient: str, ward: str, rule: Rule, severity: Severity, at: datetime) -> int:
    with conn.transaction():
        outcome = alert_store.apply(
            conn,
            Fire(Condition(patient, rule, severity, f"{rule} {severity.label}")),
            ward=ward,
            now=at,
            policy=POLICY,
            channels=("log",),
        )
    return outcome.alert_id


def _ward_history(conn: Conn, uid: str) -> dict[str, int]:
    """Two wards' day, every figure of which is worked out by hand in the test below."""
    for patient, device, ward, start in (
        ("p1", "d1", "w1", T0 - timedelta(days=1)),  # the whole day: 1
        ("p2", "d2", "w1", T0 + 12 * H),  # half the day: 0.5
        ("p3", "d3", "w2", T0 + 18 * H),  # a quarter: 0.25
    ):
        assignments.enrol(
            conn,
            device_id=f"{device}-{uid}",
            patient_id=f"{patient}-{uid}",
            ward=f"{ward}-{uid}",
            valid_from=start,
        )
    p1, p2, p3 = (f"{p}-{uid}" for p in ("p1", "p2", "p3"))
    w1, w2 = f"w1-{uid}", f"w2-{uid}"
    ids = {
        # Before the period: not in the report.
        "early": _fire(conn, p1, w1, Rule.NEWS2, Severity.URGENT, T0 - H),
        "a1": _fire(conn, p2, w1, Rule.NEWS2, Severity.EMERGENCY, T0 + 13 * H),
        "a3": _fire(conn, p1, w1, Rule.NO_DATA, Severity.TECHNICAL, T0 + 15 * H),
        "a4": _fire(conn, p3, w2, Rule.NEWS2, Severity.REVIEW, T0 + 20 * H),
    }
    with conn.transaction():
        alert_store.apply(
            conn,
            Resolve(ids["early"], "condition cleared"),
            ward=w1,
            now=T0 - H / 2,
            policy=POLICY,
            channels=("log",),
        )
    ids["a2"] = _fire(conn, p1, w1, Rule.NEWS2, Severity.URGENT, T0 + 14 * H)
    # a1 acknowledged after 2 min, before its 5 min deadline.
    alert_store.acknowledge(conn, ids["a1"], user="nurse", note=None, now=T0 + 13 * H + 2 * MIN)
    # a2 unacknowledged past its 15 min: the senior clinician is paged; acknowledged at 20 min.
    with conn.transaction():
        pages = alert_store.escalate_due(
            conn, now=T0 + 14 * H + 16 * MIN, policy=Policy(default=WardPolicy(escalation=POLICY))
        )
    assert [p.alert_id for p in pages] == [ids["a2"]]
    alert_store.acknowledge(conn, ids["a2"], user="nurse", note=None, now=T0 + 14 * H + 20 * MIN)
    # a3 (technical) pages the device team again after 60 min and stays unacknowledged.
    with conn.transaction():
        pages = alert_store.escalate_due(
            conn, now=T0 + 16 * H + MIN, policy=Policy(default=WardPolicy(escalation=POLICY))
        )
    assert [p.alert_id for p in pages] == [ids["a3"]]
    # a4 clears on its own before anyone acknowledges it.
    with conn.transaction():
        alert_store.apply(
            conn,
            Resolve(ids["a4"], "condition cleared"),
            ward=w2,
            now=T0 + 21 * H,
            policy=POLICY,
            channels=("log",),
        )
    # What the dispatcher records (migration 004): a1's page delivered, a2's first given up.
    conn.execute(
        "update notifications set state = 'sent', sent_at = %s where alert_id = %s",
        (T0 + 13 * H + MIN, ids["a1"]),
    )
    conn.execute(
        "update notifications set state = 'dead', dead_at = %s"
        " where alert_id = %s and dedup_key like %s",
        (T0 + 15 * H, ids["a2"], f"{ids['a2']}:fired%"),
    )
    conn.commit()
    return ids


def test_report_from_alerts_acks_and_escalations(database_url: str, uid: str) -> None:
    with psycopg.connect(database_url) as conn:
        _ward_history(conn, uid)
        result = report(conn, since=T0, until=UNTIL)
        pending = conn.execute(
            "select count(*) from notifications n join alerts a on a.id = n.alert_id"
            " where a.ward = %s and a.opened_at >= %s",
            (f"w1-{uid}", T0),
        ).fetchone()
    assert pending is not None
    w1, w2 = result.wards
    assert (w1.ward, w2.ward) == (f"w1-{uid}", f"w2-{uid}")

    assert w1.patient_days == pytest.approx(1.5)
    assert w1.alerts == 3  # "early" opened before the period
    assert w1.per_patient_day() == pytest.approx(2.0)
    assert w1.per_patient_day(Severity.EMERGENCY) == pytest.approx(1 / 1.5)
    # Waits 120 s and 1200 s: median 660 s; p90 = 120 + 0.9 * 1080 = 1092 s.
    assert w1.acknowledged == 2
    assert w1.ack_median_s == pytest.approx(660.0)
    assert w1.ack_p90_s == pytest.approx(1092.0)
    assert (w1.open_unacknowledged, w1.resolved_unacknowledged) == (1, 0)
    assert (w1.escalation_events, w1.alerts_escalated) == (2, 2)
    assert dict(w1.reached_tier) == {"ward nurse": 2, "senior clinician": 1, "device team": 1}
    # a1 fired, a2 fired + escalated, a3 fired + escalated: one log notification each.
    assert (w1.notifications_delivered, w1.notifications_failed) == (1, 1)
    assert w1.notifications_pending == int(pending[0]) - 2  # type: ignore[call-overload]
    assert w1.notifications_pending == 3

    assert w2.patient_days == pytest.approx(0.25)
    assert w2.per_patient_day(Severity.REVIEW) == pytest.approx(4.0)
    assert (w2.acknowledged, w2.ack_median_s) == (0, None)
    assert (w2.resolved_unacknowledged, w2.open_unacknowledged) == (1, 0)

    assert result.total.ward == ALL_WARDS
    assert result.total.alerts == 4
    assert result.total.patient_days == pytest.approx(1.75)


def test_report_ends_at_until(database_url: str, uid: str) -> None:
    """A report for a closed period does not change with what happened after it."""
    with psycopg.connect(database_url) as conn:
        _ward_history(conn, uid)
        # Ends after a2's page to the senior clinician, before its acknowledgement.
        result = report(conn, since=T0, until=T0 + 14 * H + 18 * MIN, ward=f"w1-{uid}")
    (w1,) = result.wards
    assert w1.alerts == 2  # a1, a2; a3 is opened later
    assert w1.acknowledged == 1
    assert w1.ack_median_s == pytest.approx(120.0)
    assert w1.open_unacknowledged == 1
    assert dict(w1.reached_tier) == {"ward nurse": 2, "senior clinician": 1}
    assert w1.patient_days == pytest.approx((14 * 60 + 18) / 1440 + (2 * 60 + 18) / 1440)


def test_cli_report_prints_json_and_a_table(
    database_url: str, uid: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with psycopg.connect(database_url) as conn:
        _ward_history(conn, uid)
    period = ["--since", T0.isoformat(), "--until", UNTIL.isoformat()]
    flags = ["--ward", f"w1-{uid}", "--database-url", database_url]
    assert main(["report", *period, *flags, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (w1,) = data["wards"]
    assert w1["alerts_per_patient_day"] == 2.0
    assert w1["time_to_acknowledge_s"]["median"] == 660.0
    assert w1["escalations"]["alerts_escalated"] == 2

    assert main(["report", *period, *flags]) == 0
    table = capsys.readouterr().out
    assert f"w1-{uid}" in table
    assert "11.0 min" in table  # the 660 s median

    assert main(["report", "--since", UNTIL.isoformat(), "--until", T0.isoformat(), *flags]) == 2
