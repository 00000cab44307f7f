"""How a ward's alerting performed over a period: pure statistics over plain rows.

The issue asks for alerts per patient-day, time to acknowledge (median and 90th percentile) and
escalations, per ward. ``storage.report`` reads the rows; everything here is a function of them
and of the period, so the figures are tested with hand-computed numbers and no database.

The cohort is the alerts **opened** in ``[since, until)``; their history (acknowledgement,
escalations, notifications) counts up to ``until``, so a report for a closed period never changes.
Time to acknowledge is over acknowledged alerts only: an alert still unacknowledged at ``until``
and one that resolved on its own before anyone acknowledged it are counted separately, never
silently dropped (a median over acknowledged alerts alone understates the wait while many
alerts are still open; the counts beside it say how many).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from alerts.escalation import EscalationPolicy
from alerts.model import Severity

DAY_S = 86_400.0
#: Name of the row that sums every ward in the report.
ALL_WARDS = "all wards"


@dataclass(frozen=True, slots=True)
class Enrolment:
    """One device assignment of a patient: the patient was on the ward from ``valid_from``."""

    patient_id: str
    ward: str
    valid_from: datetime
    valid_until: datetime | None  # None: still enrolled


@dataclass(frozen=True, slots=True)
class AlertRow:
    """One alert opened in the period, with what had happened to it by the period's end."""

    alert_id: int
    ward: str
    severity: Severity
    opened_at: datetime
    acknowledged_at: datetime | None  # None, or after the period's end: not acknowledged
    resolved_at: datetime | None
    escalations: int  # "escalated" events before the period's end: the level it reached


@dataclass(frozen=True, slots=True)
class NotificationRow:
    """One outbox row of an alert in the cohort."""

    alert_id: int
    ward: str
    state: str  # pending, sent, dead (given up) or inhibited (muted by a worse alert)
    sent_at: datetime | None
    dead_at: datetime | None


@dataclass(frozen=True, slots=True)
class WardReport:
    """One ward's figures for the period (or every ward's, under the name ``ALL_WARDS``)."""

    ward: str
    patient_days: float
    alerts_by_severity: Mapping[Severity, int]
    acknowledged: int
    ack_median_s: float | None  # None when nothing was acknowledged
    ack_p90_s: float | None
    resolved_unacknowledged: int  # cleared on its own before anyone acknowledged it
    open_unacknowledged: int  # still waiting for someone at the period's end
    escalation_events: int  # pages to a further tier, repeats and final notices
    alerts_escalated: int  # alerts paged beyond the first tier at least once
    reached_tier: Mapping[str, int]  # tier (role) -> alerts paged to it, the first tier included
    notifications_delivered: int
    notifications_failed: int  # given up (dead-lettered): never to be delivered
    notifications_inhibited: int  # muted by a more severe open alert of the same patient
    notifications_pending: int  # neither by the period's end: waiting, grouping or retrying

    @property
    def alerts(self) -> int:
        return sum(self.alerts_by_severity.values())

    def per_patient_day(self, severity: Severity | None = None) -> float | None:
        """Alerts (of ``severity``, or all) per patient-day; None with no patient-days."""
        if self.patient_days <= 0:
            return None
        n = self.alerts if severity is None else self.alerts_by_severity.get(severity, 0)
        return n / self.patient_days


@dataclass(frozen=True, slots=True)
class Report:
    since: datetime
    until: datetime
    wards: tuple[WardReport, ...]  # sorted by ward name
    total: WardReport = field(repr=False)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), interpolating linearly between closest ranks.

    Hyndman & Fan (1996) definition 7, numpy's default, so figures match ``numpy.percentile``.

    >>> percentile([4.0, 1.0, 3.0, 2.0], 50)
    2.5
    >>> percentile([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], 90)
    9.1
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be within 0-100, got {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def patient_days(
    enrolments: Iterable[Enrolment], since: datetime, until: datetime
) -> dict[str, float]:
    """Patient-days per ward: each patient's enrolled time within the period, in days.

    A patient wearing two devices at once counts once: the assignments are merged per patient
    before measuring, so a watch and a ring do not make two patient-days of one.
    """
    by_patient: dict[tuple[str, str], list[tuple[datetime, datetime]]] = defaultdict(list)
    for e in enrolments:
        start = max(e.valid_from, since)
        end = until if e.valid_until is None else min(e.valid_until, until)
        if end > start:
            by_patient[(e.ward, e.patient_id)].append((start, end))
    days: dict[str, float] = defaultdict(float)
    for (ward, _patient), spans in by_patient.items():
        covered = timedelta()
        current_start, current_end = None, None
        for start, end in sorted(spans):
            if current_end is None or start > current_end:
                if current_start is not None and current_end is not None:
                    covered += current_end - current_start
                current_start, current_end = start, end
            else:
                current_end = max(current_end, end)
        if current_start is not None and current_end is not None:
            covered += current_end - current_start
        days[ward] += covered.total_seconds() / DAY_S
    return dict(days)


def ward_report(
    ward: str,
    *,
    days: float,
    alerts: Sequence[AlertRow],
    notifications: Sequence[NotificationRow],
    until: datetime,
    policy: EscalationPolicy,
) -> WardReport:
    """One ward's figures from its alerts and their notifications (all opened in the period)."""
    waits: list[float] = []
    resolved_unacked = open_unacked = 0
    tiers: Counter[str] = Counter()
    for a in alerts:
        acked = a.acknowledged_at is not None and a.acknowledged_at < until
        if acked:
            assert a.acknowledged_at is not None
            waits.append((a.acknowledged_at - a.opened_at).total_seconds())
        elif a.resolved_at is not None and a.resolved_at < until:
            resolved_unacked += 1
        else:
            open_unacked += 1
        chain = policy.tiers(a.severity)
        # Level n pages chain[min(n, last)]; repeats to the last tier count that tier once.
        for recipient in dict.fromkeys(
            chain[min(n, len(chain) - 1)] for n in range(a.escalations + 1)
        ):
            tiers[recipient] += 1
    delivered = sum(1 for n in notifications if n.sent_at is not None and n.sent_at < until)
    failed = sum(1 for n in notifications if n.dead_at is not None and n.dead_at < until)
    # Inhibition has no time of its own; it is decided when the notification falls due.
    inhibited = sum(1 for n in notifications if n.state == "inhibited")
    return WardReport(
        ward=ward,
        patient_days=days,
        alerts_by_severity=MappingProxyType(dict(Counter(a.severity for a in alerts))),
        acknowledged=len(waits),
        ack_median_s=percentile(waits, 50) if waits else None,
        ack_p90_s=percentile(waits, 90) if waits else None,
        resolved_unacknowledged=resolved_unacked,
        open_unacknowledged=open_unacked,
        escalation_events=sum(a.escalations for a in alerts),
        alerts_escalated=sum(1 for a in alerts if a.escalations > 0),
        reached_tier=MappingProxyType(dict(tiers)),
        notifications_delivered=delivered,
        notifications_failed=failed,
        notifications_inhibited=inhibited,
        notifications_pending=len(notifications) - delivered - failed - inhibited,
    )


def build(
    *,
    since: datetime,
    until: datetime,
    enrolments: Iterable[Enrolment],
    alerts: Iterable[AlertRow],
    notifications: Iterable[NotificationRow],
    policy: EscalationPolicy,
) -> Report:
    """Every ward's report for ``[since, until)``; a ward appears if it had patients or alerts.

    ``alerts`` must be those opened in the period and ``notifications`` theirs (the query's job);
    an alert opened outside the period is refused rather than quietly skewing the figures.
    """
    if until <= since:
        raise ValueError(f"the period is empty: {since.isoformat()} to {until.isoformat()}")
    days = patient_days(enrolments, since, until)
    alert_rows = list(alerts)
    for a in alert_rows:
        if not since <= a.opened_at < until:
            raise ValueError(f"alert {a.alert_id} opened outside the period")
    notes = list(notifications)
    by_ward_alerts: dict[str, list[AlertRow]] = defaultdict(list)
    by_ward_notes: dict[str, list[NotificationRow]] = defaultdict(list)
    for a in alert_rows:
        by_ward_alerts[a.ward].append(a)
    for n in notes:
        by_ward_notes[n.ward].append(n)
    wards = tuple(
        ward_report(
            w,
            days=days.get(w, 0.0),
            alerts=by_ward_alerts.get(w, []),
            notifications=by_ward_notes.get(w, []),
            until=until,
            policy=policy,
        )
        for w in sorted(set(days) | set(by_ward_alerts))
    )
    total = ward_report(
        ALL_WARDS,
        days=sum(days.values()),
        alerts=alert_rows,
        notifications=notes,
        until=until,
        policy=policy,
    )
    return Report(since, until, wards, total)


# --- presentation: JSON for the API, a table for the terminal ---------------------------------


def ward_as_dict(w: WardReport) -> dict[str, Any]:
    """One ward as JSON-ready values (seconds for durations, severity labels for keys)."""
    rate = w.per_patient_day()
    return {
        "ward": w.ward,
        "patient_days": round(w.patient_days, 3),
        "alerts": w.alerts,
        "alerts_per_patient_day": None if rate is None else round(rate, 4),
        "alerts_by_severity": {s.label: w.alerts_by_severity.get(s, 0) for s in Severity},
        "alerts_per_patient_day_by_severity": {
            s.label: None if (r := w.per_patient_day(s)) is None else round(r, 4) for s in Severity
        },
        "time_to_acknowledge_s": {
            "acknowledged": w.acknowledged,
            "median": _ms(w.ack_median_s),
            "p90": _ms(w.ack_p90_s),
            "resolved_unacknowledged": w.resolved_unacknowledged,
            "open_unacknowledged": w.open_unacknowledged,
        },
        "escalations": {
            "events": w.escalation_events,
            "alerts_escalated": w.alerts_escalated,
            "alerts_reaching_tier": dict(w.reached_tier),
        },
        "notifications": {
            "delivered": w.notifications_delivered,
            "failed": w.notifications_failed,
            "inhibited": w.notifications_inhibited,
            "pending": w.notifications_pending,
        },
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def as_dict(report: Report) -> dict[str, Any]:
    """The whole report as JSON-ready values: what ``GET /api/report`` and ``--json`` return."""
    return {
        "since": report.since.isoformat(),
        "until": report.until.isoformat(),
        "wards": [ward_as_dict(w) for w in report.wards],
        "total": ward_as_dict(report.total),
    }


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def as_table(report: Report) -> str:
    """A plain-text table, one line a ward and a total line; the column key follows."""
    header = (
        f"{'ward':<16} {'pt-days':>8} {'alerts':>6} {'/pt-day':>7} {'emerg':>6} {'urgent':>6} "
        f"{'review':>6} {'tech':>6} {'acked':>5} {'ack p50':>8} {'ack p90':>8} {'unack':>5} "
        f"{'self-res':>8} {'esc':>4} {'esc al':>6} {'sent':>5} {'failed':>6} {'muted':>5} "
        f"{'pend':>4}"
    )

    def line(w: WardReport) -> str:
        sev = [_rate(w.per_patient_day(s)) for s in reversed(Severity)]
        return (
            f"{w.ward[:16]:<16} {w.patient_days:>8.2f} {w.alerts:>6} "
            f"{_rate(w.per_patient_day()):>7} {sev[0]:>6} {sev[1]:>6} {sev[2]:>6} {sev[3]:>6} "
            f"{w.acknowledged:>5} {_duration(w.ack_median_s):>8} {_duration(w.ack_p90_s):>8} "
            f"{w.open_unacknowledged:>5} {w.resolved_unacknowledged:>8} "
            f"{w.escalation_events:>4} {w.alerts_escalated:>6} {w.notifications_delivered:>5} "
            f"{w.notifications_failed:>6} {w.notifications_inhibited:>5} "
            f"{w.notifications_pending:>4}"
        )

    rows = [
        f"alerts opened {report.since.astimezone(UTC):%Y-%m-%d %H:%M} to "
        f"{report.until.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
        header,
        *(line(w) for w in report.wards),
    ]
    if len(report.wards) != 1:
        rows.append(line(report.total))
    tiers = ", ".join(f"{t} {n}" for t, n in report.total.reached_tier.items()) or "none"
    rows += [
        "",
        f"alerts reaching each tier: {tiers}",
        "/pt-day, emerg/urgent/review/tech: alerts per patient-day, in all and by severity",
        "ack p50/p90: time to acknowledge, over the acknowledged alerts only; unack: not "
        "acknowledged by the end; self-res: resolved before anyone acknowledged",
        "esc: escalation pages; esc al: alerts escalated; sent/failed/muted/pend: notifications "
        "delivered, given up, inhibited, still pending",
    ]
    return "\n".join(rows)
