"""Grouping, inhibition, retry schedule and message content: pure functions of rows and now."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from alerts.content import describe_values, news2_response, patient_link, render
from alerts.grouping import Pending, RetryPolicy, inhibitor, plan
from alerts.model import Alert, AlertState, Rule, Severity
from alerts.notify import sign, topic_level
from signals.vitals import Metric

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
WAIT = timedelta(seconds=10)


def pending(
    nid: int,
    *,
    alert_id: int | None = None,
    patient: str = "pt-1",
    rule: Rule = Rule.NEWS2,
    severity: Severity = Severity.URGENT,
    recipient: str = "ward nurse",
    channel: str = "webhook",
    at: datetime = T0,
    attempts: int = 0,
    bed: str | None = None,
    message_id: str | None = None,
) -> Pending:
    return Pending(
        id=nid,
        alert_id=alert_id if alert_id is not None else nid,
        channel=channel,
        recipient=recipient,
        body=f"[{severity.label}] body of {nid}",
        attempts=attempts,
        created_at=at,
        patient_id=patient,
        ward="w1",
        bed=bed,
        rule=rule,
        severity=severity,
        message_id=message_id,
    )


def alert(
    aid: int,
    *,
    patient: str = "pt-1",
    rule: Rule = Rule.NEWS2,
    severity: Severity = Severity.EMERGENCY,
    state: AlertState = AlertState.OPEN,
) -> Alert:
    return Alert(aid, patient, "w1", rule, severity, state, "s", T0, T0, None, None, None, 0, None)


# --- grouping --------------------------------------------------------------------------------


def test_one_patients_alerts_in_one_wave_make_one_message() -> None:
    rows = [
        pending(1, rule=Rule.NEWS2, severity=Severity.REVIEW),
        pending(2, rule=Rule.RISK, severity=Severity.REVIEW, at=T0 + timedelta(seconds=3)),
        pending(3, patient="pt-2", severity=Severity.REVIEW),
    ]
    decided = plan(rows, [], now=T0 + WAIT, group_wait=WAIT)
    assert [(g.patient_id, g.ids) for g in decided.send] == [("pt-1", (1, 2)), ("pt-2", (3,))]
    assert decided.inhibited == ()
    assert decided.waiting == ()


def test_the_wait_is_measured_from_the_first_notification_of_the_group() -> None:
    rows = [pending(1), pending(2, alert_id=9, at=T0 + timedelta(seconds=8))]
    early = plan(rows, [], now=T0 + WAIT - timedelta(microseconds=1), group_wait=WAIT)
    assert early.send == ()
    assert [p.id for p in early.waiting] == [1, 2]
    (group,) = plan(rows, [], now=T0 + WAIT, group_wait=WAIT).send
    assert group.ids == (1, 2)


def test_a_retry_goes_at_once_because_it_is_older_than_the_wait() -> None:
    rows = [pending(1, at=T0 - timedelta(minutes=1), attempts=2)]
    (group,) = plan(rows, [], now=T0, group_wait=WAIT).send
    assert group.attempts == 2


def test_groups_are_per_recipient_and_channel_most_severe_first() -> None:
    rows = [
        pending(1, rule=Rule.NO_DATA, severity=Severity.TECHNICAL, recipient="device team"),
        pending(2, rule=Rule.BATTERY, severity=Severity.TECHNICAL, recipient="device team"),
        pending(3, severity=Severity.EMERGENCY),
        pending(4, severity=Severity.EMERGENCY, channel="email"),
    ]
    decided = plan(rows, [alert(3)], now=T0 + WAIT, group_wait=WAIT)
    assert [(g.recipient, g.channel, g.ids) for g in decided.send] == [
        ("ward nurse", "webhook", (3,)),
        ("ward nurse", "email", (4,)),
        ("device team", "webhook", (1, 2)),
    ]


def test_within_a_group_the_most_severe_alert_comes_first() -> None:
    rows = [
        pending(1, rule=Rule.RISK, severity=Severity.REVIEW),
        pending(2, alert_id=1, rule=Rule.RISK, severity=Severity.URGENT),
    ]
    (group,) = plan(rows, [], now=T0 + WAIT, group_wait=WAIT).send
    assert group.ids == (2, 1)
    assert group.severity is Severity.URGENT


# --- inhibition ------------------------------------------------------------------------------


def test_a_more_severe_clinical_alert_mutes_the_patients_lesser_ones() -> None:
    emergency = alert(10, severity=Severity.EMERGENCY)
    rows = [
        pending(1, alert_id=10, severity=Severity.EMERGENCY),
        pending(2, alert_id=11, rule=Rule.RISK, severity=Severity.REVIEW),
    ]
    risk = alert(11, rule=Rule.RISK, severity=Severity.REVIEW)
    decided = plan(rows, [emergency, risk], now=T0 + WAIT, group_wait=WAIT)
    assert [g.ids for g in decided.send] == [(1,)]
    (muted,) = decided.inhibited
    assert (muted.pending.id, muted.by.id) == (2, 10)


@pytest.mark.parametrize(
    ("row", "other", "muted"),
    [
        pytest.param(
            pending(1, rule=Rule.NO_DATA, severity=Severity.TECHNICAL, recipient="device team"),
            alert(10),
            False,
            id="technical is never muted by clinical",
        ),
        pytest.param(
            pending(1, rule=Rule.RISK, severity=Severity.REVIEW),
            alert(10, patient="pt-2"),
            False,
            id="another patient's alert",
        ),
        pytest.param(
            pending(1, rule=Rule.RISK, severity=Severity.URGENT),
            alert(10, severity=Severity.URGENT),
            False,
            id="equal severity",
        ),
        pytest.param(
            pending(1, rule=Rule.RISK, severity=Severity.REVIEW),
            alert(10, state=AlertState.RESOLVED),
            False,
            id="a resolved alert",
        ),
        pytest.param(
            pending(1, rule=Rule.RISK, severity=Severity.REVIEW),
            alert(10, state=AlertState.ACKNOWLEDGED),
            True,
            id="an acknowledged alert still mutes",
        ),
        pytest.param(
            pending(1, alert_id=10, severity=Severity.REVIEW),
            alert(10, severity=Severity.EMERGENCY),
            False,
            id="an alert never mutes itself",
        ),
        pytest.param(
            pending(1, rule=Rule.RISK, severity=Severity.REVIEW),
            alert(10, rule=Rule.BATTERY, severity=Severity.TECHNICAL),
            False,
            id="technical never mutes clinical",
        ),
    ],
)
def test_inhibition_rules(row: Pending, other: Alert, muted: bool) -> None:
    assert (inhibitor(row, [other]) is not None) is muted


def test_the_most_severe_of_several_is_named_as_the_inhibitor() -> None:
    row = pending(1, rule=Rule.RISK, severity=Severity.REVIEW)
    by = inhibitor(row, [alert(10, severity=Severity.URGENT), alert(11, rule=Rule.STALL)])
    assert by is not None
    assert by.id == 11


# --- retries ---------------------------------------------------------------------------------


def test_backoff_doubles_from_5_s_is_capped_and_ends_in_a_dead_letter() -> None:
    policy = RetryPolicy(
        first_delay=timedelta(seconds=5), max_delay=timedelta(seconds=30), max_attempts=6
    )
    delays = [policy.next_attempt(n, T0) for n in range(1, 7)]
    assert [(d - T0).total_seconds() if d else None for d in delays] == [
        5.0,
        10.0,
        20.0,
        30.0,
        30.0,
        None,
    ]


def test_a_large_attempt_count_does_not_overflow() -> None:
    policy = RetryPolicy(max_attempts=1000)
    assert policy.next_attempt(999, T0) == T0 + policy.max_delay


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"first_delay": timedelta(0)},
        {"first_delay": timedelta(minutes=10), "max_delay": timedelta(minutes=1)},
    ],
)
def test_a_nonsense_retry_policy_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


# --- content ---------------------------------------------------------------------------------


def _us(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000)


def test_values_are_shown_with_their_time_and_stale_ones_left_out() -> None:
    latest = {
        Metric.HEART_RATE: (_us(T0), 140.0),
        Metric.RESP_RATE: (_us(T0 - timedelta(minutes=4)), 29.0),
        Metric.SPO2: (_us(T0), 89.0),
        Metric.TEMPERATURE: (_us(T0), 38.46),
        Metric.ON_OXYGEN: (_us(T0), 1.0),
        Metric.CONSCIOUSNESS: (_us(T0), 1.0),
        Metric.SYSTOLIC_BP: (_us(T0 - timedelta(hours=3)), 120.0),  # stale: not shown
    }
    assert describe_values(latest) == (
        "RR 29/min, SpO2 89 %, HR 140/min, Temp 38.5 °C, on oxygen, ACVPU C"
        " (measured 08:56-09:00 UTC)"
    )
    assert describe_values({}) is None


def test_news2_response_follows_the_band_and_only_for_news2() -> None:
    emergency = news2_response(Rule.NEWS2, Severity.EMERGENCY)
    urgent = news2_response(Rule.NEWS2, Severity.URGENT)
    review = news2_response(Rule.NEWS2, Severity.REVIEW)
    assert emergency is not None
    assert "critical-care competencies" in emergency
    assert urgent is not None
    assert "acutely ill" in urgent
    assert review is not None
    assert "ward-based" in review
    assert news2_response(Rule.RISK, Severity.REVIEW) is None
    assert news2_response(Rule.NEWS2, Severity.TECHNICAL) is None


def test_a_grouped_message_says_who_where_what_and_what_to_do() -> None:
    rows = [
        pending(1, alert_id=7, severity=Severity.EMERGENCY, bed="4B"),
        pending(2, alert_id=8, rule=Rule.RISK, severity=Severity.EMERGENCY, bed="4B"),
    ]
    (group,) = plan(rows, [], now=T0 + WAIT, group_wait=WAIT).send
    message = render(group, public_url="https://ward.example/")
    assert message.subject == "[emergency] patient pt-1, ward w1, bed 4B: 2 alerts"
    lines = message.text.splitlines()
    assert lines[0] == "Patient pt-1, ward w1, bed 4B"
    assert "- [emergency] body of 1" in lines
    assert "- [emergency] body of 2" in lines
    assert any("emergency response" in line for line in lines)
    assert lines[-1] == "Alerts 7, 8"
    assert message.link == "https://ward.example/?ward=w1&patient=pt-1"


def test_a_technical_message_carries_no_clinical_response() -> None:
    rows = [pending(1, rule=Rule.NO_DATA, severity=Severity.TECHNICAL, recipient="device team")]
    (group,) = plan(rows, [], now=T0 + WAIT, group_wait=WAIT).send
    text = render(group, public_url="http://127.0.0.1:8080").text
    assert "NEWS2 response" not in text
    assert "For: device team" in text


def test_the_patient_link_escapes_ward_and_patient() -> None:
    link = patient_link("http://h:8080", "Ward 7 & 8", "pt/1")
    assert parse_qs(urlsplit(link).query) == {"ward": ["Ward 7 & 8"], "patient": ["pt/1"]}


# --- wire helpers ----------------------------------------------------------------------------


def test_the_signature_covers_the_timestamp_and_the_exact_body() -> None:
    body = b'{"alert_id":1}'
    expected = hmac.new(b"k" * 16, b"1764320400." + body, hashlib.sha256).hexdigest()
    assert sign(b"k" * 16, "1764320400", body) == f"sha256={expected}"
    assert sign(b"k" * 16, "1764320401", body) != sign(b"k" * 16, "1764320400", body)
    assert sign(b"k" * 16, "1764320400", body + b" ") != sign(b"k" * 16, "1764320400", body)


@pytest.mark.parametrize(
    ("ward", "level"),
    [("w1", "w1"), ("a/b", "a_b"), ("#+", "__"), ("", "_")],
)
def test_a_ward_becomes_one_topic_level(ward: str, level: str) -> None:
    assert topic_level(ward) == level


def test_a_resend_keeps_its_message_id_and_its_company() -> None:
    """A page cut short by a crash goes out again alone, under the id it first had.

    Merged with a newer notification for the same nurse it would get a new id, and the
    receiver could not tell it was a repeat: the nurse would be paged twice.
    """
    rows = [pending(5, message_id="wardwatch-n5"), pending(7, alert_id=9)]
    groups = plan(rows, [], now=T0 + WAIT, group_wait=WAIT).send
    assert sorted((g.ids, g.message_id) for g in groups) == [
        ((5,), "wardwatch-n5"),
        ((7,), "wardwatch-n7"),
    ]
    fresh = plan([pending(3), pending(4, alert_id=8)], [], now=T0 + WAIT, group_wait=WAIT)
    assert [g.message_id for g in fresh.send] == ["wardwatch-n3-4"]
