"""The rows behind the alerting report (``alerts.report``): enrolments, alerts, notifications.

Three queries, each bounded by the period and optionally one ward; the arithmetic is in
``alerts.report``. ``report`` is the one call the CLI and the dashboard make.
"""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg.rows import args_row, class_row

from alerts.escalation import EscalationPolicy
from alerts.model import Severity
from alerts.report import AlertRow, Enrolment, NotificationRow, Report, build

Conn = psycopg.Connection[tuple[object, ...]]


def enrolments(conn: Conn, since: datetime, until: datetime, ward: str | None) -> list[Enrolment]:
    """Assignments that overlap the period, with the patient's ward."""
    with conn.cursor(row_factory=class_row(Enrolment)) as cur:
        return cur.execute(
            "select a.patient_id, p.ward, a.valid_from, a.valid_until"
            " from assignments a join patients p using (patient_id)"
            " where a.valid_from < %(until)s"
            " and coalesce(a.valid_until, 'infinity'::timestamptz) > %(since)s"
            " and (%(ward)s::text is null or p.ward = %(ward)s)",
            {"since": since, "until": until, "ward": ward},
        ).fetchall()


def _alert_row(
    alert_id: int,
    ward: str,
    severity: int,
    opened_at: datetime,
    acknowledged_at: datetime | None,
    resolved_at: datetime | None,
    escalations: int,
) -> AlertRow:
    return AlertRow(
        alert_id, ward, Severity(severity), opened_at, acknowledged_at, resolved_at, escalations
    )


def alerts_opened(conn: Conn, since: datetime, until: datetime, ward: str | None) -> list[AlertRow]:
    """Alerts opened in the period, each with its escalation pages made before ``until``."""
    with conn.cursor(row_factory=args_row(_alert_row)) as cur:
        return cur.execute(
            "select a.id, a.ward, a.severity, a.opened_at, a.acknowledged_at, a.resolved_at,"
            " (select count(*) from alert_events e where e.alert_id = a.id"
            "  and e.kind = 'escalated' and e.at < %(until)s)::int"
            " from alerts a where a.opened_at >= %(since)s and a.opened_at < %(until)s"
            " and (%(ward)s::text is null or a.ward = %(ward)s) order by a.id",
            {"since": since, "until": until, "ward": ward},
        ).fetchall()


def notifications(
    conn: Conn, since: datetime, until: datetime, ward: str | None
) -> list[NotificationRow]:
    """The outbox rows of the alerts opened in the period."""
    with conn.cursor(row_factory=class_row(NotificationRow)) as cur:
        return cur.execute(
            "select n.alert_id, a.ward, n.state, n.sent_at, n.dead_at"
            " from notifications n join alerts a on a.id = n.alert_id"
            " where a.opened_at >= %(since)s and a.opened_at < %(until)s"
            " and (%(ward)s::text is null or a.ward = %(ward)s)",
            {"since": since, "until": until, "ward": ward},
        ).fetchall()


def report(
    conn: Conn,
    *,
    since: datetime,
    until: datetime,
    ward: str | None = None,
    policy: EscalationPolicy | None = None,
) -> Report:
    """The alerting report for ``[since, until)``, every ward or one, read in one snapshot."""
    fresh = conn.info.transaction_status is psycopg.pq.TransactionStatus.IDLE
    with conn.transaction():
        if fresh:
            # One snapshot for the three queries, so their counts agree with each other; inside
            # a caller's transaction, that transaction's isolation stands.
            conn.execute("set transaction isolation level repeatable read, read only")
        return build(
            since=since,
            until=until,
            enrolments=enrolments(conn, since, until, ward),
            alerts=alerts_opened(conn, since, until, ward),
            notifications=notifications(conn, since, until, ward),
            policy=policy or EscalationPolicy(),
        )
