"""Who is told next about an unacknowledged alert, and when: a pure function of the alert and now.

APScheduler only ticks; the state (level, next deadline) lives with the alert in PostgreSQL, so a
restart mid-escalation neither drops nor repeats a page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType

from alerts.model import Alert, AlertState, Severity

# Time to acknowledge before the next tier is told. RCP NEWS2 2017 asks for an emergency response
# to 7+ "immediately" and an urgent response to 5-6 or a single 3 within the hour; the tier times
# below leave room for that response after acknowledgement. Wards set their own (issue 5).
DEFAULT_ACK_WITHIN: Mapping[Severity, timedelta] = MappingProxyType(
    {
        Severity.EMERGENCY: timedelta(minutes=5),
        Severity.URGENT: timedelta(minutes=15),
        Severity.REVIEW: timedelta(minutes=30),
        Severity.TECHNICAL: timedelta(minutes=60),
    }
)


@dataclass(frozen=True, slots=True)
class EscalationPolicy:
    ack_within: Mapping[Severity, timedelta] = field(default_factory=lambda: DEFAULT_ACK_WITHIN)
    clinical_tiers: tuple[str, ...] = ("ward nurse", "senior clinician", "on-call doctor")
    # Device problems go to whoever fixes devices; they never page clinicians.
    technical_tiers: tuple[str, ...] = ("device team",)
    repeat_every: timedelta = timedelta(minutes=15)
    max_repeats: int = 3  # pages to the last tier after the first, then a final notice

    def tiers(self, severity: Severity) -> tuple[str, ...]:
        return self.technical_tiers if severity is Severity.TECHNICAL else self.clinical_tiers

    def first_deadline(self, severity: Severity, now: datetime) -> datetime | None:
        """When the first page falls due unacknowledged; None when no page would follow."""
        if len(self.tiers(severity)) == 1 and self.max_repeats == 0:
            return None
        return now + self.ack_within[severity]


@dataclass(frozen=True, slots=True)
class Page:
    """Tell ``recipient`` about the alert; then wait until ``next_at`` (None: no more pages)."""

    alert_id: int
    level: int
    recipient: str
    next_at: datetime | None
    final: bool


def due(alert: Alert, now: datetime, policy: EscalationPolicy) -> Page | None:
    """The page owed for an open, unacknowledged alert whose deadline has passed, if any."""
    if alert.state is not AlertState.OPEN or alert.next_escalation_at is None:
        return None
    if now < alert.next_escalation_at:
        return None
    tiers = policy.tiers(alert.severity)
    level = alert.escalation_level + 1
    last = len(tiers) - 1
    recipient = tiers[min(level, last)]
    repeats = level - last  # pages to the last tier beyond its first
    if repeats > policy.max_repeats:
        return None
    if repeats == policy.max_repeats:
        return Page(alert.id, level, recipient, None, final=True)
    wait = policy.ack_within[alert.severity] if level < last else policy.repeat_every
    return Page(alert.id, level, recipient, now + wait, final=False)
