"""The alerts core: NEWS2 and no-data rules, the alert lifecycle with hold-down, and escalation.

All pure functions of their inputs and ``now``; the clock here is a list of datetimes. NEWS2
scores are real ``news2(...)`` results built from vitals, as ingest feeds them to the rules.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.escalation import DEFAULT_ACK_WITHIN, EscalationPolicy, Page, due
from alerts.lifecycle import (
    DEFAULT_HOLD_DOWN,
    Clearing,
    Fire,
    Recur,
    Resolve,
    Transition,
    Worsen,
    decide,
    held,
)
from alerts.model import Alert, AlertState, Condition, Rule, Severity
from alerts.rules import describe, news2_condition, no_data_condition
from signals.news2 import News2, news2

T0 = datetime(2026, 5, 28, 6, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
SEC = timedelta(seconds=1)

NORMAL: dict[str, Any] = {
    "resp_rate": 16,
    "spo2": 97,
    "on_oxygen": False,
    "temperature": 37.0,
    "systolic_bp": 120,
    "heart_rate": 70,
    "consciousness": "A",
}


def vitals(**changes: Any) -> News2:
    """Score a normal patient with some observations changed (None: not measured)."""
    return news2(**{**NORMAL, **changes})


# --- news2_condition: RCP NEWS2 2017 clinical response chart ----------------------------------

# (case, observations changed from normal, expected total, expected severity)
NEWS2_BANDS: list[tuple[str, dict[str, Any], int, Severity | None]] = [
    ("all normal", {}, 0, None),
    ("oxygen alone", {"on_oxygen": True}, 2, None),
    ("4 without a 3", {"resp_rate": 21, "spo2": 94, "heart_rate": 91}, 4, None),
    ("single 3 alone", {"consciousness": "C"}, 3, Severity.REVIEW),
    ("single 3, total 4", {"resp_rate": 25, "heart_rate": 91}, 4, Severity.REVIEW),
    ("two 3s, total 6", {"resp_rate": 25, "spo2": 91}, 6, Severity.URGENT),
    ("5 without a 3", {"resp_rate": 21, "spo2": 94, "heart_rate": 91, "temperature": 38.1}, 5,
     Severity.URGENT),
    ("5 with a 3", {"resp_rate": 25, "spo2": 92}, 5, Severity.URGENT),
    ("6", {"resp_rate": 21, "spo2": 92, "heart_rate": 91, "temperature": 38.1}, 6,
     Severity.URGENT),
    ("7", {"resp_rate": 21, "spo2": 92, "heart_rate": 111, "temperature": 38.1}, 7,
     Severity.EMERGENCY),
    ("7 on oxygen", {"on_oxygen": True, "resp_rate": 21, "spo2": 93, "temperature": 38.1}, 7,
     Severity.EMERGENCY),
    ("12 with 3s", {"resp_rate": 30, "spo2": 85, "heart_rate": 135, "consciousness": "V"}, 12,
     Severity.EMERGENCY),
    # Incomplete scores (no blood pressure, no consciousness) fire on what they have.
    ("incomplete 0", {"systolic_bp": None, "consciousness": None}, 0, None),
    ("incomplete single 3", {"systolic_bp": None, "consciousness": None, "resp_rate": 8}, 3,
     Severity.REVIEW),
    ("incomplete 5",
     {"systolic_bp": None, "consciousness": None, "resp_rate": 21, "spo2": 93, "heart_rate": 91},
     5, Severity.URGENT),
    ("incomplete 9",
     {"systolic_bp": None, "consciousness": None, "resp_rate": 25, "spo2": 91, "heart_rate": 131},
     9, Severity.EMERGENCY),
    ("nothing measured", dict.fromkeys(NORMAL), 0, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "total", "severity"),
    [pytest.param(c, t, s, id=name) for name, c, t, s in NEWS2_BANDS],
)
def test_news2_condition_follows_the_response_bands(
    changes: dict[str, Any], total: int, severity: Severity | None
) -> None:
    score = vitals(**changes)
    assert score.total == total  # the table's arithmetic, checked against the chart
    condition = news2_condition("patient-1", score)
    if severity is None:
        assert condition is None
    else:
        assert condition == Condition("patient-1", Rule.NEWS2, severity, describe(score))


def test_incomplete_score_is_named_as_such_in_the_condition() -> None:
    score = vitals(systolic_bp=None, consciousness=None, resp_rate=25, spo2=91, heart_rate=91)
    condition = news2_condition("patient-1", score)
    assert condition is not None
    assert condition.severity is Severity.EMERGENCY
    assert condition.summary == "NEWS2 7 (high): RR 3, SpO2 3, HR 1; not measured: SBP, ACVPU"


@pytest.mark.parametrize(
    ("changes", "text"),
    [
        pytest.param({}, "NEWS2 0 (low)", id="nothing scores"),
        pytest.param({"on_oxygen": True}, "NEWS2 2 (low): O2 2", id="oxygen"),
        pytest.param(
            {"consciousness": "V", "temperature": 39.1},
            "NEWS2 5 (medium): ACVPU 3, Temp 2",
            id="chart order",
        ),
        pytest.param(
            {"resp_rate": 25, "heart_rate": 91},
            "NEWS2 4 (low-medium): RR 3, HR 1",
            id="red score",
        ),
        pytest.param(
            {"systolic_bp": 95, "on_oxygen": None},
            "NEWS2 2 (low): SBP 2; not measured: O2",
            id="oxygen not recorded",
        ),
        pytest.param(
            {**dict.fromkeys(NORMAL), "heart_rate": 70},
            "NEWS2 0 (low); not measured: RR, SpO2, O2, SBP, ACVPU, Temp",
            id="only pulse",
        ),
    ],
)
def test_describe_names_scoring_and_unmeasured_parameters(
    changes: dict[str, Any], text: str
) -> None:
    assert describe(vitals(**changes)) == text


# --- no_data_condition ------------------------------------------------------------------------

SILENT_AFTER = timedelta(minutes=10)


def no_data(
    *, last_received: datetime | None, enrolled_at: datetime = T0 - timedelta(days=3)
) -> Condition | None:
    now = T0
    return no_data_condition(
        "patient-1",
        "dev-7",
        last_received=last_received,
        enrolled_at=enrolled_at,
        now=now,
        silent_after=SILENT_AFTER,
    )


@pytest.mark.parametrize(
    ("silent_for", "summary"),
    [
        pytest.param(timedelta(0), None, id="just now"),
        pytest.param(SILENT_AFTER - timedelta(microseconds=1), None, id="just below"),
        pytest.param(SILENT_AFTER, "no data from device dev-7 for 10 min", id="exactly at"),
        pytest.param(SILENT_AFTER + SEC, "no data from device dev-7 for 10 min", id="just above"),
        pytest.param(26 * MIN - SEC, "no data from device dev-7 for 25 min", id="whole minutes"),
        pytest.param(timedelta(hours=3), "no data from device dev-7 for 180 min", id="hours"),
    ],
)
def test_no_data_fires_once_the_device_is_silent_for_the_threshold(
    silent_for: timedelta, summary: str | None
) -> None:
    condition = no_data(last_received=T0 - silent_for)
    if summary is None:
        assert condition is None
    else:
        assert condition == Condition("patient-1", Rule.NO_DATA, Severity.TECHNICAL, summary)


@pytest.mark.parametrize(
    ("since_enrolment", "fires"),
    [
        pytest.param(timedelta(0), False, id="enrolled just now"),
        pytest.param(SILENT_AFTER - SEC, False, id="just below"),
        pytest.param(SILENT_AFTER, True, id="exactly at"),
        pytest.param(SILENT_AFTER + MIN, True, id="above"),
    ],
)
def test_a_device_that_never_sent_counts_from_enrolment(
    since_enrolment: timedelta, fires: bool
) -> None:
    condition = no_data(last_received=None, enrolled_at=T0 - since_enrolment)
    if not fires:
        assert condition is None
        return
    assert condition is not None
    minutes = int(since_enrolment.total_seconds() // 60)
    assert condition.summary == (
        f"no data from device dev-7 for {minutes} min (nothing received since enrolment)"
    )
    assert condition.severity is Severity.TECHNICAL


def test_last_received_wins_over_an_old_enrolment() -> None:
    assert no_data(last_received=T0 - MIN, enrolled_at=T0 - timedelta(days=30)) is None


# --- lifecycle.decide with the hold-down -----------------------------------------------------

ALERT_ID = 42
ACTIVE = [AlertState.OPEN, AlertState.ACKNOWLEDGED]  # acknowledged behaves like open here


def make_alert(
    *,
    state: AlertState = AlertState.OPEN,
    severity: Severity = Severity.URGENT,
    cleared_at: datetime | None = None,
    alert_id: int = ALERT_ID,
) -> Alert:
    acknowledged = state is AlertState.ACKNOWLEDGED
    return Alert(
        id=alert_id,
        patient_id="patient-1",
        ward="ward-a",
        rule=Rule.NEWS2,
        severity=severity,
        state=state,
        summary=f"summary {severity.label}",
        opened_at=T0 - timedelta(hours=1),
        updated_at=T0 - timedelta(hours=1),
        acknowledged_by="nurse.jones" if acknowledged else None,
        acknowledged_at=T0 - timedelta(minutes=50) if acknowledged else None,
        resolved_at=T0 - MIN if state is AlertState.RESOLVED else None,
        escalation_level=0,
        next_escalation_at=None if state is not AlertState.OPEN else T0 + MIN,
        cleared_at=cleared_at,
    )


def cond(severity: Severity) -> Condition:
    return Condition("patient-1", Rule.NEWS2, severity, f"now {severity.label}")


def test_no_alert_and_no_condition_is_nothing() -> None:
    assert decide(None, None, at=T0) is None


@pytest.mark.parametrize("severity", list(Severity))
def test_no_alert_and_a_condition_fires(severity: Severity) -> None:
    assert decide(None, cond(severity), at=T0) == Fire(cond(severity))


@pytest.mark.parametrize("state", ACTIVE)
def test_active_alert_and_a_worse_condition_worsens(state: AlertState) -> None:
    current = make_alert(state=state, severity=Severity.URGENT)
    assert decide(current, cond(Severity.EMERGENCY), at=T0) == Worsen(
        ALERT_ID, Severity.EMERGENCY, "now emergency"
    )


@pytest.mark.parametrize("state", ACTIVE)
@pytest.mark.parametrize("severity", [Severity.URGENT, Severity.REVIEW])
def test_severity_never_drops_while_the_alert_is_active(
    state: AlertState, severity: Severity
) -> None:
    current = make_alert(state=state, severity=Severity.URGENT)
    assert decide(current, cond(severity), at=T0) is None


@pytest.mark.parametrize("state", ACTIVE)
def test_active_alert_whose_condition_clears_starts_the_hold_down(state: AlertState) -> None:
    assert decide(make_alert(state=state), None, at=T0) == Clearing(ALERT_ID, T0)


@pytest.mark.parametrize("state", ACTIVE)
@pytest.mark.parametrize(
    ("clear_for", "expected"),
    [
        pytest.param(timedelta(0), None, id="same moment"),
        pytest.param(DEFAULT_HOLD_DOWN - SEC, None, id="just before"),
        pytest.param(
            DEFAULT_HOLD_DOWN, Resolve(ALERT_ID, "condition clear for 15 min"), id="exactly at"
        ),
        pytest.param(
            timedelta(hours=2), Resolve(ALERT_ID, "condition clear for 15 min"), id="long after"
        ),
    ],
)
def test_clearing_alert_resolves_only_after_the_hold_down(
    state: AlertState, clear_for: timedelta, expected: Transition | None
) -> None:
    current = make_alert(state=state, cleared_at=T0)
    assert decide(current, None, at=T0 + clear_for) == expected


@pytest.mark.parametrize("state", ACTIVE)
@pytest.mark.parametrize("severity", [Severity.URGENT, Severity.REVIEW])
def test_condition_back_during_the_hold_down_recurs(state: AlertState, severity: Severity) -> None:
    current = make_alert(state=state, severity=Severity.URGENT, cleared_at=T0)
    assert decide(current, cond(severity), at=T0 + 5 * MIN) == Recur(
        ALERT_ID, f"now {severity.label}"
    )


@pytest.mark.parametrize("state", ACTIVE)
def test_worse_condition_back_during_the_hold_down_worsens(state: AlertState) -> None:
    current = make_alert(state=state, severity=Severity.REVIEW, cleared_at=T0)
    assert decide(current, cond(Severity.URGENT), at=T0 + 5 * MIN) == Worsen(
        ALERT_ID, Severity.URGENT, "now urgent"
    )


def test_resolved_alert_and_a_condition_fires_a_new_alert() -> None:
    current = make_alert(state=AlertState.RESOLVED, severity=Severity.EMERGENCY)
    assert decide(current, cond(Severity.REVIEW), at=T0) == Fire(cond(Severity.REVIEW))


def test_resolved_alert_and_no_condition_is_nothing() -> None:
    assert decide(make_alert(state=AlertState.RESOLVED), None, at=T0) is None


@pytest.mark.parametrize("state", ACTIVE)
def test_zero_hold_down_resolves_at_once(state: AlertState) -> None:
    result = decide(make_alert(state=state), None, at=T0, hold_down=timedelta(0))
    assert result == Resolve(ALERT_ID, "condition cleared")


def test_custom_hold_down_is_honoured() -> None:
    current = make_alert(cleared_at=T0)
    hold = timedelta(minutes=5)
    assert decide(current, None, at=T0 + hold - SEC, hold_down=hold) is None
    assert decide(current, None, at=T0 + hold, hold_down=hold) == Resolve(
        ALERT_ID, "condition clear for 5 min"
    )


def apply(current: Alert | None, t: Transition, at: datetime, next_id: int) -> Alert:
    """Apply a transition the way storage does, to an in-memory alert."""
    if isinstance(t, Fire):
        fresh = make_alert(severity=t.condition.severity, alert_id=next_id)
        return dataclasses.replace(fresh, summary=t.condition.summary, opened_at=at)
    assert current is not None
    assert t.alert_id == current.id
    if isinstance(t, Worsen):
        return dataclasses.replace(current, severity=t.severity, summary=t.summary, cleared_at=None)
    if isinstance(t, Clearing):
        return dataclasses.replace(current, cleared_at=t.since)
    if isinstance(t, Recur):
        return dataclasses.replace(current, summary=t.summary, cleared_at=None)
    return dataclasses.replace(current, state=AlertState.RESOLVED, resolved_at=at)


def run_lifecycle(
    observations: list[tuple[datetime, Condition | None]], hold_down: timedelta
) -> list[tuple[datetime, Transition, Alert]]:
    """Drive ``decide`` over observations; return each transition with the alert after it."""
    current: Alert | None = None
    log: list[tuple[datetime, Transition, Alert]] = []
    for at, condition in observations:
        t = decide(current, condition, at=at, hold_down=hold_down)
        if t is not None:
            current = apply(current, t, at, next_id=len(log) + 1)
            log.append((at, t, current))
    return log


def test_a_value_flapping_at_a_band_edge_makes_one_alert() -> None:
    # SpO2 91/92 % every minute for an hour: scores 3 (REVIEW) then 2 (nothing), alternating.
    flapping = [(T0 + i * MIN, cond(Severity.REVIEW) if i % 2 == 0 else None) for i in range(60)]
    steady: list[tuple[datetime, Condition | None]] = [
        (T0 + (60 + i) * MIN, None) for i in range(30)
    ]
    log = run_lifecycle(flapping + steady, DEFAULT_HOLD_DOWN)
    kinds = [type(t) for _, t, _ in log]
    assert kinds.count(Fire) == 1
    assert kinds.count(Resolve) == 1
    resolved_at = next(at for at, t, _ in log if isinstance(t, Resolve))
    assert resolved_at == T0 + 59 * MIN + DEFAULT_HOLD_DOWN  # last clear began at minute 59


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=20),  # minutes since the previous observation
            st.none() | st.sampled_from([Severity.REVIEW, Severity.URGENT, Severity.EMERGENCY]),
        ),
        max_size=60,
    ),
    hold_minutes=st.integers(min_value=0, max_value=30),
)
def test_lifecycle_invariants_over_any_observation_sequence(
    steps: list[tuple[int, Severity | None]], hold_minutes: int
) -> None:
    hold_down = timedelta(minutes=hold_minutes)
    observations: list[tuple[datetime, Condition | None]] = []
    at = T0
    for gap, severity in steps:
        at += gap * MIN
        observations.append((at, None if severity is None else cond(severity)))
    current: Alert | None = None
    clear_since: datetime | None = None  # first clear observation since the condition was seen
    for at, condition in observations:
        if condition is not None:
            clear_since = None
        elif clear_since is None:
            clear_since = at
        active = current is not None and current.state is not AlertState.RESOLVED
        t = decide(current, condition, at=at, hold_down=hold_down)
        if t is not None:
            after = apply(current, t, at, next_id=(current.id + 1) if current else 1)
            if isinstance(t, Fire):
                assert not active  # one alert per patient and rule
            elif isinstance(t, Resolve):
                # Only once the condition has stayed away for the whole hold-down.
                assert condition is None
                assert clear_since is not None
                assert at - clear_since >= hold_down
            else:
                assert current is not None
                assert after.severity >= current.severity  # never drops while active
            current = after
        if condition is not None:
            # A firing condition is always covered by an active alert at least as severe.
            assert current is not None
            assert current.state is not AlertState.RESOLVED
            assert current.severity >= condition.severity


# --- escalation.due --------------------------------------------------------------------------

POLICY = EscalationPolicy()


def open_alert(severity: Severity = Severity.URGENT, *, policy: EscalationPolicy = POLICY) -> Alert:
    """A freshly fired alert: level 0 (the first tier was told at firing) and its deadline."""
    return dataclasses.replace(
        make_alert(severity=severity),
        opened_at=T0,
        updated_at=T0,
        escalation_level=0,
        next_escalation_at=policy.first_deadline(severity, T0),
    )


def after(alert: Alert, page: Page) -> Alert:
    """The alert as storage leaves it after sending ``page``."""
    return dataclasses.replace(alert, escalation_level=page.level, next_escalation_at=page.next_at)


def test_nothing_is_due_before_the_deadline() -> None:
    alert = open_alert(Severity.URGENT)
    assert due(alert, T0, POLICY) is None
    assert due(alert, T0 + 15 * MIN - timedelta(microseconds=1), POLICY) is None


@pytest.mark.parametrize("severity", [Severity.REVIEW, Severity.URGENT, Severity.EMERGENCY])
def test_clinical_escalation_walks_the_tiers_then_repeats_then_stops(severity: Severity) -> None:
    ack = DEFAULT_ACK_WITHIN[severity]
    repeat = POLICY.repeat_every
    alert = open_alert(severity)
    expected = [
        (T0 + ack, Page(ALERT_ID, 1, "senior clinician", T0 + 2 * ack, final=False)),
        (T0 + 2 * ack, Page(ALERT_ID, 2, "on-call doctor", T0 + 2 * ack + repeat, final=False)),
        (
            T0 + 2 * ack + repeat,
            Page(ALERT_ID, 3, "on-call doctor", T0 + 2 * ack + 2 * repeat, final=False),
        ),
        (
            T0 + 2 * ack + 2 * repeat,
            Page(ALERT_ID, 4, "on-call doctor", T0 + 2 * ack + 3 * repeat, final=False),
        ),
        (T0 + 2 * ack + 3 * repeat, Page(ALERT_ID, 5, "on-call doctor", None, final=True)),
    ]
    for now, page in expected:
        assert due(alert, now - timedelta(microseconds=1), POLICY) is None
        assert due(alert, now, POLICY) == page
        alert = after(alert, page)
    assert len(expected) == len(POLICY.clinical_tiers) - 1 + POLICY.max_repeats
    assert due(alert, T0 + timedelta(days=7), POLICY) is None


def test_a_late_tick_sends_one_page_and_waits_from_now() -> None:
    alert = open_alert(Severity.EMERGENCY)  # deadline T0 + 5 min
    late = T0 + timedelta(hours=2)
    page = due(alert, late, POLICY)
    assert page == Page(ALERT_ID, 1, "senior clinician", late + 5 * MIN, final=False)


def test_technical_alerts_only_ever_page_the_device_team() -> None:
    alert = open_alert(Severity.TECHNICAL)
    now = T0 + DEFAULT_ACK_WITHIN[Severity.TECHNICAL]
    pages: list[Page] = []
    while (page := due(alert, now, POLICY)) is not None:
        pages.append(page)
        alert = after(alert, page)
        now = page.next_at if page.next_at is not None else now + timedelta(days=1)
    assert [p.recipient for p in pages] == ["device team"] * POLICY.max_repeats
    assert [p.level for p in pages] == [1, 2, 3]
    assert pages[0].next_at == T0 + timedelta(minutes=60) + POLICY.repeat_every
    assert [p.final for p in pages] == [False, False, True]
    assert pages[-1].next_at is None


@pytest.mark.parametrize("state", [AlertState.ACKNOWLEDGED, AlertState.RESOLVED])
@pytest.mark.parametrize("severity", list(Severity))
def test_acknowledged_and_resolved_alerts_never_page(state: AlertState, severity: Severity) -> None:
    # Even with a stale deadline left on the row.
    alert = dataclasses.replace(open_alert(severity), state=state)
    assert due(alert, T0 + timedelta(days=1), POLICY) is None


@st.composite
def policies(draw: st.DrawFn) -> tuple[EscalationPolicy, Severity]:
    """An escalation policy and the severity of the alert it escalates."""
    severity = draw(st.sampled_from(list(Severity)))
    n = draw(st.integers(min_value=1, max_value=4))
    policy = EscalationPolicy(
        ack_within={s: draw(st.integers(1, 60)) * MIN for s in Severity},
        clinical_tiers=tuple(f"tier {i}" for i in range(n)),
        repeat_every=draw(st.integers(1, 60)) * MIN,
        max_repeats=draw(st.integers(min_value=0, max_value=5)),
    )
    return policy, severity


@settings(max_examples=300, deadline=None)
@given(
    case=policies(),
    gaps_s=st.lists(st.integers(min_value=0, max_value=4 * 3600), max_size=40),
)
def test_escalation_pages_each_level_once_up_the_tiers_and_stops(
    case: tuple[EscalationPolicy, Severity], gaps_s: list[int]
) -> None:
    policy, severity = case
    tiers = policy.tiers(severity)
    alert = open_alert(severity, policy=policy)
    now = T0
    pages: list[Page] = []
    for gap in gaps_s:
        now += gap * SEC
        deadline = alert.next_escalation_at
        page = due(alert, now, policy)
        if page is None:
            assert deadline is None or now < deadline
            continue
        assert deadline is not None
        assert now >= deadline
        assert page.alert_id == alert.id
        assert page.final == (page.next_at is None)
        assert page.next_at is None or page.next_at > now
        pages.append(page)
        alert = after(alert, page)

    levels = [p.level for p in pages]
    assert levels == list(range(1, len(pages) + 1))  # each level paged once, in order
    ranks = [tiers.index(p.recipient) for p in pages]
    assert ranks == sorted(ranks)  # never back down the tiers
    assert len(pages) <= len(tiers) - 1 + policy.max_repeats
    assert all(not p.final for p in pages[:-1])


def test_single_tier_with_no_repeats_sends_no_page_after_firing() -> None:
    policy = EscalationPolicy(max_repeats=0)
    alert = open_alert(Severity.TECHNICAL, policy=policy)
    assert due(alert, T0 + timedelta(days=1), policy) is None


# --- the "for" duration -----------------------------------------------------------------------


def _cond() -> Condition:
    return Condition("p1", Rule.NEWS2, Severity.EMERGENCY, "NEWS2 9 (high)")


@pytest.mark.parametrize(
    ("pending_min", "now_min", "fires", "still_pending_from"),
    [
        (None, 0, False, 0),  # first sight: starts waiting
        (0, 1, False, 0),  # still waiting
        (0, 2, True, None),  # lasted the 2 min: fires, nothing pending
        (0, 9, True, None),
        (5, 3, False, 3),  # a pending start in the future (clock trouble) restarts at now
    ],
)
def test_a_condition_raises_only_once_it_has_lasted_for(
    pending_min: int | None, now_min: int, fires: bool, still_pending_from: int | None
) -> None:
    t0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    since = None if pending_min is None else t0 + timedelta(minutes=pending_min)
    effective, pending = held(
        _cond(), None, at=t0 + timedelta(minutes=now_min), for_=timedelta(minutes=2),
        pending_since=since,
    )  # fmt: skip
    assert (effective is not None) is fires
    assert pending == (
        None if still_pending_from is None else t0 + timedelta(minutes=still_pending_from)
    )


def test_the_for_duration_never_delays_clearing_or_an_open_alert() -> None:
    t0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    assert held(None, None, at=t0, for_=timedelta(minutes=2), pending_since=t0) == (None, None)
    assert held(_cond(), None, at=t0, for_=timedelta(0), pending_since=None) == (_cond(), None)
    alert = open_alert()
    assert held(_cond(), alert, at=t0, for_=timedelta(minutes=2), pending_since=None) == (
        _cond(),
        None,
    )
