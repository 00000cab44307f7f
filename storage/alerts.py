"""Alerts, their event history and the notification outbox in PostgreSQL.

Each function runs inside the caller's transaction, so an alert change, its audit event and the
notifications it causes commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import args_row

from alerts.content import NEWS2_VALUE_METRICS, describe_values
from alerts.escalation import EscalationPolicy, Page, due
from alerts.grouping import Inhibited, Pending, RetryPolicy
from alerts.lifecycle import Clearing, Fire, Recur, Transition, Worsen, decide, held
from alerts.model import (
    RESOLUTION_OUTCOMES,
    Alert,
    AlertEvent,
    AlertState,
    Condition,
    Rule,
    Severity,
)
from alerts.policy import Policy, RuleSettings, WardPolicy
from storage import readings
from storage.views import ConflictError, NotFoundError

Conn = psycopg.Connection[tuple[object, ...]]

_ALERT_COLUMNS = (
    "id, patient_id, ward, rule, severity, state, summary, opened_at, updated_at,"
    " acknowledged_by, acknowledged_at, resolved_at, escalation_level, next_escalation_at,"
    " cleared_at"
)


def _alert_row(*v: Any) -> Alert:
    return Alert(v[0], v[1], v[2], Rule(v[3]), Severity(v[4]), AlertState(v[5]), *v[6:])


def _rows(
    conn: Conn, query: str, params: Sequence[object] | Mapping[str, object] = ()
) -> list[Alert]:
    with conn.cursor(row_factory=args_row(_alert_row)) as cur:
        return cur.execute(query, params).fetchall()


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a transition did, for metrics and logs."""

    alert_id: int
    kind: str  # fired, worsened, clearing, recurred, resolved
    severity: Severity


def open_alerts(conn: Conn, patient_ids: Iterable[str]) -> dict[tuple[str, Rule], Alert]:
    rows = _rows(
        conn,
        f"select {_ALERT_COLUMNS} from alerts where state <> 'resolved' and patient_id = any(%s)",
        (list(patient_ids),),
    )
    return {(a.patient_id, a.rule): a for a in rows}


def _event(
    conn: Conn,
    alert_id: int,
    at: datetime,
    kind: str,
    severity: Severity,
    actor: str | None,
    detail: str,
) -> None:
    conn.execute(
        "insert into alert_events (alert_id, at, kind, severity, actor, detail)"
        " values (%s, %s, %s, %s, %s, %s)",
        (alert_id, at, kind, int(severity), actor, detail),
    )


def _notify(
    conn: Conn,
    alert_id: int,
    dedup: str,
    recipient: str,
    body: str,
    now: datetime,
    channels: Iterable[str],
) -> None:
    for channel in channels:
        conn.execute(
            "insert into notifications (alert_id, dedup_key, channel, recipient, body, created_at)"
            " values (%s, %s, %s, %s, %s, %s) on conflict (dedup_key) do nothing",
            (alert_id, f"{dedup}:{channel}", channel, recipient, body, now),
        )


def apply(
    conn: Conn,
    transition: Transition,
    *,
    ward: str,
    now: datetime,
    policy: EscalationPolicy,
    channels: tuple[str, ...],
) -> Outcome:
    """Carry out a lifecycle transition with its audit event and first notifications."""
    if isinstance(transition, Fire):
        c = transition.condition
        deadline = policy.first_deadline(c.severity, now)
        row = conn.execute(
            "insert into alerts (patient_id, ward, rule, severity, state, summary, opened_at,"
            " updated_at, escalation_level, next_escalation_at)"
            " values (%s, %s, %s, %s, 'open', %s, %s, %s, 0, %s) returning id",
            (c.patient_id, ward, c.rule.value, int(c.severity), c.summary, now, now, deadline),
        ).fetchone()
        assert row is not None
        alert_id = int(row[0])  # type: ignore[call-overload]
        _event(conn, alert_id, now, "fired", c.severity, None, c.summary)
        recipient = policy.tiers(c.severity)[0]
        # Patient, ward, bed and link head the message when it is sent (alerts.content); the
        # row keeps what fired and the values behind it as they were at this moment.
        body = f"[{c.severity.label}] {c.summary}"
        if c.rule is Rule.NEWS2:
            latest = readings.latest_values(conn, [c.patient_id], NEWS2_VALUE_METRICS)
            values = describe_values(latest[c.patient_id])
            if values:
                body += f". Values: {values}"
        _notify(conn, alert_id, f"{alert_id}:fired", recipient, body, now, channels)
        return Outcome(alert_id, "fired", c.severity)
    if isinstance(transition, Worsen):
        row = conn.execute(
            "update alerts set severity = %s, summary = %s, updated_at = %s, cleared_at = null,"
            " next_escalation_at = case when state = 'open'"
            "   then least(next_escalation_at, %s) else next_escalation_at end"
            " where id = %s returning patient_id, ward, escalation_level, state",
            (
                int(transition.severity),
                transition.summary,
                now,
                policy.first_deadline(transition.severity, now),
                transition.alert_id,
            ),
        ).fetchone()
        assert row is not None
        patient_id, a_ward, level, _state = row
        _event(
            conn,
            transition.alert_id,
            now,
            "worsened",
            transition.severity,
            None,
            transition.summary,
        )
        tiers = policy.tiers(transition.severity)
        recipient = tiers[min(int(level), len(tiers) - 1)]  # type: ignore[call-overload]
        body = (
            f"[{transition.severity.label}] WORSE: {transition.summary}"
            f" (patient {patient_id}, {a_ward})"
        )
        _notify(
            conn,
            transition.alert_id,
            f"{transition.alert_id}:worse:{int(transition.severity)}",
            recipient,
            body,
            now,
            channels,
        )
        return Outcome(transition.alert_id, "worsened", transition.severity)
    if isinstance(transition, Clearing | Recur):
        cleared = transition.since if isinstance(transition, Clearing) else None
        row = conn.execute(
            "update alerts set cleared_at = %s, updated_at = %s where id = %s returning severity",
            (cleared, now, transition.alert_id),
        ).fetchone()
        assert row is not None
        severity = Severity(int(row[0]))  # type: ignore[call-overload]
        if isinstance(transition, Clearing):
            detail = f"condition clear since {transition.since:%H:%M} UTC; holding before resolving"
            _event(conn, transition.alert_id, now, "clearing", severity, None, detail)
            return Outcome(transition.alert_id, "clearing", severity)
        _event(conn, transition.alert_id, now, "recurred", severity, None, transition.summary)
        return Outcome(transition.alert_id, "recurred", severity)
    row = conn.execute(
        "update alerts set state = 'resolved', resolved_at = %s, updated_at = %s,"
        " next_escalation_at = null where id = %s returning severity",
        (now, now, transition.alert_id),
    ).fetchone()
    assert row is not None
    severity = Severity(int(row[0]))  # type: ignore[call-overload]
    _event(conn, transition.alert_id, now, "resolved", severity, None, transition.reason)
    return Outcome(transition.alert_id, "resolved", severity)


def escalate_due(conn: Conn, *, now: datetime, policy: Policy) -> list[Page]:
    """Page the next tier for every open alert past its deadline; idempotent per level.

    Each alert follows its own ward's tiers, times and channels (``policy.for_ward``).
    """
    alerts = _rows(
        conn,
        f"select {_ALERT_COLUMNS} from alerts where state = 'open'"
        " and next_escalation_at <= %s order by next_escalation_at for update skip locked",
        (now,),
    )
    pages: list[Page] = []
    for alert in alerts:
        ward = policy.for_ward(alert.ward)
        page = due(alert, now, ward.escalation)
        if page is None:
            continue
        conn.execute(
            "update alerts set escalation_level = %s, next_escalation_at = %s, updated_at = %s"
            " where id = %s",
            (page.level, page.next_at, now, alert.id),
        )
        what = "final notice" if page.final else f"escalated to {page.recipient}"
        _event(
            conn,
            alert.id,
            now,
            "escalated",
            alert.severity,
            None,
            f"{what}: not acknowledged (level {page.level})",
        )
        prefix = "FINAL NOTICE, " if page.final else ""
        body = (
            f"[{alert.severity.label}] {prefix}UNACKNOWLEDGED for "
            f"{int((now - alert.opened_at).total_seconds() // 60)} min: {alert.summary}"
            f" (patient {alert.patient_id}, {alert.ward})"
        )
        _notify(
            conn, alert.id, f"{alert.id}:esc:{page.level}", page.recipient, body, now,
            ward.channels,
        )  # fmt: skip
        pages.append(page)
    return pages


def _unresolved_for_update(conn: Conn, alert_id: int) -> Alert:
    """The alert, row-locked for a user's change; NotFoundError / ConflictError if it cannot be."""
    rows = _rows(conn, f"select {_ALERT_COLUMNS} from alerts where id = %s for update", (alert_id,))
    if not rows:
        raise NotFoundError(f"no alert {alert_id}")
    if rows[0].state is AlertState.RESOLVED:
        raise ConflictError(f"alert {alert_id} is already resolved")
    return rows[0]


def acknowledge(conn: Conn, alert_id: int, *, user: str, note: str | None, now: datetime) -> Alert:
    """Record that a named user has taken the alert on; stops its escalation."""
    with conn.transaction():
        alert = _unresolved_for_update(conn, alert_id)
        if alert.state is AlertState.ACKNOWLEDGED:
            raise ConflictError(
                f"alert {alert_id} was already acknowledged by {alert.acknowledged_by}"
            )
        conn.execute(
            "update alerts set state = 'acknowledged', acknowledged_by = %s,"
            " acknowledged_at = %s, updated_at = %s, next_escalation_at = null where id = %s",
            (user, now, now, alert_id),
        )
        _event(conn, alert_id, now, "acknowledged", alert.severity, user, note or "")
        return _rows(conn, f"select {_ALERT_COLUMNS} from alerts where id = %s", (alert_id,))[0]


def resolve(
    conn: Conn, alert_id: int, *, user: str, outcome: str, note: str | None, now: datetime
) -> Alert:
    """Close an alert by hand, saying what happened; stops its escalation.

    If the condition is still present the rule raises a new alert at its next evaluation: a
    patient whose readings are expected to stay abnormal needs an override or a pause
    (docs/policy.md), not a closed alert that hides a real deterioration.
    """
    if outcome not in RESOLUTION_OUTCOMES:
        raise ValueError(
            f"outcome must be one of: {', '.join(RESOLUTION_OUTCOMES)}; got {outcome!r}"
        )
    with conn.transaction():
        alert = _unresolved_for_update(conn, alert_id)
        conn.execute(
            "update alerts set state = 'resolved', resolved_at = %s, updated_at = %s,"
            " next_escalation_at = null where id = %s",
            (now, now, alert_id),
        )
        detail = outcome if not note else f"{outcome}: {note}"
        _event(conn, alert_id, now, "resolved", alert.severity, user, detail)
        return _rows(conn, f"select {_ALERT_COLUMNS} from alerts where id = %s", (alert_id,))[0]


def list_alerts(
    conn: Conn, state: AlertState | None = None, ward: str | None = None
) -> list[Alert]:
    return _rows(
        conn,
        f"select {_ALERT_COLUMNS} from alerts where (%(state)s::text is null or state = %(state)s)"
        " and (%(ward)s::text is null or ward = %(ward)s) order by severity desc, opened_at",
        {"state": state.value if state else None, "ward": ward},
    )


def events(conn: Conn, alert_id: int) -> list[AlertEvent]:
    if conn.execute("select 1 from alerts where id = %s", (alert_id,)).fetchone() is None:
        raise NotFoundError(f"no alert {alert_id}")
    rows = conn.execute(
        "select alert_id, at, kind, severity, actor, detail from alert_events"
        " where alert_id = %s order by id",
        (alert_id,),
    ).fetchall()
    return [
        AlertEvent(int(a), at, str(k), Severity(int(s)), actor, str(d))  # type: ignore[call-overload,arg-type]
        for a, at, k, s, actor, d in rows
    ]


#: The default retry policy's last attempt (alerts.grouping.RetryPolicy). Since migration 004 a
#: notification that was given up on has ``state = 'dead'``; count those rather than attempts.
MAX_ATTEMPTS = RetryPolicy().max_attempts

#: An outbox row due to be sent, with its alert's patient, ward, bed, rule and severity.
PendingNotification = Pending


def _pending_row(*v: Any) -> Pending:
    return Pending(
        v[0],
        v[1],
        v[2],
        v[3],
        v[4],
        v[5],
        v[6],
        v[7],
        v[8],
        v[9],
        Rule(v[10]),
        Severity(v[11]),
        v[12],
    )


def claim_pending(conn: Conn, *, now: datetime, limit: int = 500) -> list[Pending]:
    """Pending notifications due by ``now``, locked for this sender until its transaction ends.

    Only the outbox rows are locked (``for update of n``), never the alerts: ingest and
    acknowledgement go on while a sender works. Rows another sender holds are skipped.
    """
    with conn.cursor(row_factory=args_row(_pending_row)) as cur:
        return cur.execute(
            "select n.id, n.alert_id, n.channel, n.recipient, n.body, n.attempts, n.created_at,"
            " a.patient_id, a.ward, p.bed, a.rule, a.severity, n.message_id"
            " from notifications n join alerts a on a.id = n.alert_id"
            " left join patients p on p.patient_id = a.patient_id"
            " where n.state = 'pending' and (n.next_attempt_at is null or n.next_attempt_at <= %s)"
            " order by n.id limit %s for update of n skip locked",
            (now, limit),
        ).fetchall()


def postpone(
    conn: Conn, ids: Iterable[int], until: datetime, *, message_id: str | None = None
) -> None:
    """Make pending notifications not due before ``until``, without counting an attempt.

    A sender leases what it is about to send this way, so that it can talk to the channels
    outside any transaction while another sender leaves those rows alone; it also records the
    message id the rows go out under, so that a resend after a crash repeats it.
    """
    conn.execute(
        "update notifications set next_attempt_at = %s,"
        " message_id = coalesce(message_id, %s) where id = any(%s) and state = 'pending'",
        (until, message_id, list(ids)),
    )


def record_inhibited(conn: Conn, muted: Inhibited, *, now: datetime) -> None:
    """Mark a notification muted by a more severe alert of the same patient, in the history."""
    n, by = muted.pending, muted.by
    conn.execute(
        "update notifications set state = 'inhibited', outcome = %s where id = %s",
        (f"inhibited by alert {by.id}", n.id),
    )
    _event(
        conn,
        n.alert_id,
        now,
        "notify_inhibited",
        n.severity,
        None,
        f"{n.channel} to {n.recipient}: not sent, the patient has a more severe open alert"
        f" ({by.id}, {by.severity.label})",
    )


def record_delivery(
    conn: Conn,
    n: Pending,
    *,
    now: datetime,
    ok: bool,
    outcome: str,
    retry_at: datetime | None = None,
) -> str:
    """Record one delivery attempt in the outbox and the alert's history; return the event kind.

    A failure with ``retry_at`` is tried again then; a failure without one is dead-lettered:
    the channel refused for good, or that was the last attempt.
    """
    if ok:
        kind = "notified"
        conn.execute(
            "update notifications set state = 'sent', sent_at = %s, attempts = attempts + 1,"
            " outcome = %s, next_attempt_at = null where id = %s",
            (now, outcome, n.id),
        )
    elif retry_at is not None:
        kind = "notify_failed"
        conn.execute(
            "update notifications set attempts = attempts + 1, outcome = %s,"
            " next_attempt_at = %s where id = %s",
            (outcome, retry_at, n.id),
        )
        outcome = f"{outcome}; retrying at {retry_at:%H:%M:%S} UTC"
    else:
        kind = "notify_dead_letter"
        conn.execute(
            "update notifications set state = 'dead', dead_at = %s, attempts = attempts + 1,"
            " outcome = %s, next_attempt_at = null where id = %s",
            (now, outcome, n.id),
        )
        outcome = f"gave up after {n.attempts + 1} attempts: {outcome}"
    _event(
        conn, n.alert_id, now, kind, n.severity, None, f"{n.channel} to {n.recipient}: {outcome}"
    )
    return kind


# --- a rule's verdict, brought to the alert: "for", enabled, lifecycle, audit --------------------


def pending(conn: Conn, patient_ids: Iterable[str]) -> dict[tuple[str, Rule], datetime]:
    """Conditions waiting out their rule's "for" duration, and since when."""
    rows = conn.execute(
        "select patient_id, rule, since from alert_pending where patient_id = any(%s)",
        (list(patient_ids),),
    ).fetchall()
    return {(str(p), Rule(str(r))): since for p, r, since in rows}  # type: ignore[misc]


def _set_pending(conn: Conn, patient_id: str, rule: Rule, since: datetime | None) -> None:
    if since is None:
        conn.execute(
            "delete from alert_pending where patient_id = %s and rule = %s",
            (patient_id, rule.value),
        )
    else:
        conn.execute(
            "insert into alert_pending (patient_id, rule, since) values (%s, %s, %s)"
            " on conflict (patient_id, rule) do update set since = excluded.since",
            (patient_id, rule.value, since),
        )


def evaluate(
    conn: Conn,
    *,
    patient_id: str,
    ward: str,
    rule: Rule,
    condition: Condition | None,
    current: Alert | None,
    pending_since: datetime | None,
    at: datetime,
    now: datetime,
    policy: WardPolicy,
    settings: RuleSettings | None = None,
) -> Outcome | None:
    """Bring one patient's alert for ``rule`` in line with the rule's verdict at ``at``.

    The ward's policy decides whether the rule is on, how long a condition must last before it
    raises anything ("for"), the hold-down before it resolves, and who is told through which
    channels. ``settings`` overrides the ward's rule settings (a caller's own defaults).
    """
    rule_settings = settings or policy.rule(rule)
    if not rule_settings.enabled:
        condition = None
    effective, since = held(
        condition, current, at=at, for_=rule_settings.for_, pending_since=pending_since
    )
    if since != pending_since:
        _set_pending(conn, patient_id, rule, since)
    transition = decide(current, effective, at=at, hold_down=rule_settings.hold_down)
    if transition is None:
        return None
    return apply(
        conn, transition, ward=ward, now=now, policy=policy.escalation, channels=policy.channels
    )
