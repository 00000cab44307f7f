"""The alerting report's statistics, against figures computed by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.escalation import EscalationPolicy
from alerts.model import Severity
from alerts.report import (
    ALL_WARDS,
    AlertRow,
    Enrolment,
    NotificationRow,
    as_dict,
    as_table,
    build,
    patient_days,
    percentile,
    ward_report,
)

SINCE = datetime(2026, 1, 1, tzinfo=UTC)
UNTIL = datetime(2026, 1, 8, tzinfo=UTC)  # 7 days
H = timedelta(hours=1)
S = timedelta(seconds=1)
POLICY = EscalationPolicy()


# --- percentile -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([3.0, 1.0, 2.0], 50, 2.0),  # odd count: the middle value
        ([4.0, 1.0, 3.0, 2.0], 50, 2.5),  # even count: halfway between the middle two
        ([7.0], 50, 7.0),
        ([7.0], 90, 7.0),
        ([float(v) for v in range(1, 11)], 90, 9.1),  # rank 0.9 * 9 = 8.1: 9 + 0.1 * (10 - 9)
        ([10.0, 20.0, 30.0, 40.0, 50.0], 90, 46.0),  # rank 3.6: 40 + 0.6 * 10
        ([10.0, 20.0, 30.0, 40.0, 50.0], 0, 10.0),
        ([10.0, 20.0, 30.0, 40.0, 50.0], 100, 50.0),
    ],
)
def test_percentile_by_hand(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == pytest.approx(expected)


@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=50),
    st.floats(0, 100),
)
def test_percentile_is_numpys_default(values: list[float], q: float) -> None:
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), abs=1e-6)


def test_percentile_refuses_nothing_and_bad_q() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match="0-100"):
        percentile([1.0], 101)


# --- patient-days -----------------------------------------------------------------------------


def test_patient_days_over_partial_and_overlapping_enrolments() -> None:
    day = timedelta(days=1)
    enrolments = [
        # Enrolled before the period, left 2.5 days in: 2.5.
        Enrolment("a", "w1", SINCE - 2 * day, SINCE + 2.5 * day),
        # Joined 4.25 days in, still enrolled: 7 - 4.25 = 2.75.
        Enrolment("b", "w1", SINCE + 4.25 * day, None),
        # A watch (days 1-3) and a ring (days 2-4) at once: the union, days 1-4 = 3, not 4.
        Enrolment("c", "w2", SINCE + day, SINCE + 3 * day),
        Enrolment("c", "w2", SINCE + 2 * day, SINCE + 4 * day),
        # Two separate stays: 1 + 0.5.
        Enrolment("e", "w2", SINCE, SINCE + day),
        Enrolment("e", "w2", SINCE + 5 * day, SINCE + 5.5 * day),
        # Entirely after the period, and one ending exactly as it starts: nothing.
        Enrolment("d", "w2", UNTIL, None),
        Enrolment("f", "w3", SINCE - day, SINCE),
    ]
    days = patient_days(enrolments, SINCE, UNTIL)
    assert days == pytest.approx({"w1": 5.25, "w2": 4.5})


def test_patient_days_touching_spans_of_one_patient_are_joined() -> None:
    day = timedelta(days=1)
    spans = [Enrolment("a", "w", SINCE, SINCE + day), Enrolment("a", "w", SINCE + day, None)]
    assert patient_days(spans, SINCE, UNTIL) == pytest.approx({"w": 7.0})


# --- one ward ---------------------------------------------------------------------------------


def _alert(
    alert_id: int,
    severity: Severity = Severity.URGENT,
    *,
    ack_after: timedelta | None = None,
    resolved_after: timedelta | None = None,
    escalations: int = 0,
    ward: str = "w1",
) -> AlertRow:
    opened = SINCE + alert_id * H
    return AlertRow(
        alert_id,
        ward,
        severity,
        opened,
        None if ack_after is None else opened + ack_after,
        None if resolved_after is None else opened + resolved_after,
        escalations,
    )


ALERTS = [
    _alert(1, Severity.EMERGENCY, ack_after=60 * S, resolved_after=2 * H),
    _alert(2, ack_after=120 * S),
    _alert(3, ack_after=300 * S, escalations=1),
    _alert(4, Severity.REVIEW, ack_after=600 * S, escalations=4),
    _alert(5, resolved_after=H),  # cleared before anyone acknowledged it
    _alert(6, escalations=2),  # never acknowledged
    _alert(7, Severity.TECHNICAL, ack_after=30 * 24 * H),  # acknowledged after the period
]


def _note(
    state: str, *, sent: timedelta | None = None, dead: timedelta | None = None
) -> NotificationRow:
    return NotificationRow(
        1,
        "w1",
        state,
        None if sent is None else SINCE + sent,
        None if dead is None else SINCE + dead,
    )


NOTES = [
    _note("sent", sent=H),
    _note("sent", sent=2 * H),
    _note("sent", sent=30 * 24 * H),  # delivered after the period: pending at its end
    _note("dead", dead=3 * H),
    _note("inhibited"),
    _note("pending"),
]


def test_ward_report_by_hand() -> None:
    w = ward_report("w1", days=5.25, alerts=ALERTS, notifications=NOTES, until=UNTIL, policy=POLICY)
    assert w.alerts == 7
    assert dict(w.alerts_by_severity) == {
        Severity.EMERGENCY: 1,
        Severity.URGENT: 4,
        Severity.REVIEW: 1,
        Severity.TECHNICAL: 1,
    }
    assert w.per_patient_day() == pytest.approx(7 / 5.25)
    assert w.per_patient_day(Severity.URGENT) == pytest.approx(4 / 5.25)
    # Waits 60, 120, 300, 600 s: median (120 + 300) / 2; p90 at rank 2.7: 300 + 0.7 * 300.
    assert w.acknowledged == 4
    assert w.ack_median_s == pytest.approx(210.0)
    assert w.ack_p90_s == pytest.approx(510.0)
    assert w.resolved_unacknowledged == 1
    assert w.open_unacknowledged == 2  # alert 6, and alert 7 acknowledged only after the period
    assert w.escalation_events == 7
    assert w.alerts_escalated == 3
    # Every alert reached its first tier; levels 1+ the senior; 2+ the on-call doctor (alert 4's
    # repeats to the last tier count it once).
    assert dict(w.reached_tier) == {
        "ward nurse": 6,
        "senior clinician": 3,
        "on-call doctor": 2,
        "device team": 1,
    }
    assert (w.notifications_delivered, w.notifications_failed) == (2, 1)
    assert (w.notifications_inhibited, w.notifications_pending) == (1, 2)


def test_nothing_acknowledged_gives_no_times_and_no_patients_no_rate() -> None:
    w = ward_report("w", days=0.0, alerts=[_alert(6)], notifications=[], until=UNTIL, policy=POLICY)
    assert (w.acknowledged, w.ack_median_s, w.ack_p90_s) == (0, None, None)
    assert w.open_unacknowledged == 1
    assert w.per_patient_day() is None


# --- every ward -------------------------------------------------------------------------------


def test_build_splits_wards_and_totals() -> None:
    day = timedelta(days=1)
    report = build(
        since=SINCE,
        until=UNTIL,
        enrolments=[
            Enrolment("a", "w1", SINCE, None),  # 7 days
            Enrolment("b", "w2", SINCE, SINCE + 2 * day),  # 2 days
        ],
        alerts=[
            _alert(1, ack_after=60 * S),
            _alert(2, ack_after=180 * S),
            _alert(3, ack_after=600 * S, ward="w2"),
            _alert(4, ward="w3"),  # a ward with alerts and no enrolment in the period
        ],
        notifications=[],
        policy=POLICY,
    )
    assert [w.ward for w in report.wards] == ["w1", "w2", "w3"]
    w1, w2, w3 = report.wards
    assert w1.per_patient_day() == pytest.approx(2 / 7)
    assert w1.ack_median_s == pytest.approx(120.0)
    assert w2.per_patient_day() == pytest.approx(0.5)
    assert w3.per_patient_day() is None
    assert report.total.ward == ALL_WARDS
    assert report.total.patient_days == pytest.approx(9.0)
    assert report.total.alerts == 4
    assert report.total.ack_median_s == pytest.approx(180.0)
    assert report.total.open_unacknowledged == 1


def test_build_refuses_alerts_outside_the_period_and_empty_periods() -> None:
    outside = _alert(1)
    early = AlertRow(9, "w", Severity.URGENT, SINCE - H, None, None, 0)
    with pytest.raises(ValueError, match="outside the period"):
        build(
            since=SINCE, until=UNTIL, enrolments=[], alerts=[outside, early], notifications=[],
            policy=POLICY,
        )  # fmt: skip
    with pytest.raises(ValueError, match="empty"):
        build(since=UNTIL, until=SINCE, enrolments=[], alerts=[], notifications=[], policy=POLICY)


def test_json_and_table_carry_the_figures() -> None:
    report = build(
        since=SINCE,
        until=UNTIL,
        enrolments=[Enrolment("a", "w1", SINCE - H, None)],
        alerts=ALERTS,
        notifications=NOTES,
        policy=POLICY,
    )
    data = json.loads(json.dumps(as_dict(report)))
    (w1,) = data["wards"]
    assert w1["patient_days"] == 7.0
    assert w1["alerts_per_patient_day"] == 1.0
    assert w1["alerts_by_severity"] == {"technical": 1, "review": 1, "urgent": 4, "emergency": 1}
    assert w1["time_to_acknowledge_s"] == {
        "acknowledged": 4,
        "median": 210.0,
        "p90": 510.0,
        "resolved_unacknowledged": 1,
        "open_unacknowledged": 2,
    }
    assert w1["escalations"]["alerts_reaching_tier"]["on-call doctor"] == 2
    assert w1["notifications"] == {"delivered": 2, "failed": 1, "inhibited": 1, "pending": 2}
    table = as_table(report)
    assert "2026-01-01 00:00 to 2026-01-08 00:00 UTC" in table
    (line,) = [row for row in table.splitlines() if row.startswith("w1 ")]
    assert line.split()[:4] == ["w1", "7.00", "7", "1.00"]
    assert "3.5 min" in line  # 210 s
    assert "8.5 min" in line  # 510 s
    assert ALL_WARDS not in table  # one ward: no total line
