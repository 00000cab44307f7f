"""How an alert moves between states when a rule's condition appears, worsens or clears.

One open alert per patient and rule; severity only rises while an alert is open (a nurse who has
been told "emergency" is not quietly told "urgent" before anyone has looked). An alert resolves
only after its condition has stayed clear for a hold-down time, so a value hovering at a band
edge (SpO2 91/92 %) makes one alert, not a storm of fire-resolve-fire.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.model import Alert, AlertState, Condition, Severity

#: Default hold-down: RCP NEWS2 2017 asks for at least hourly observations at a score of 5-6;
#: a quarter of that keeps a recovering patient visible to the nurse without flapping.
DEFAULT_HOLD_DOWN = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Fire:
    condition: Condition


@dataclass(frozen=True, slots=True)
class Worsen:
    alert_id: int
    severity: Severity
    summary: str


@dataclass(frozen=True, slots=True)
class Clearing:
    """The condition is gone as of ``since``; the alert stays open through the hold-down."""

    alert_id: int
    since: datetime


@dataclass(frozen=True, slots=True)
class Recur:
    """The condition came back during the hold-down: the same alert carries on."""

    alert_id: int
    summary: str


@dataclass(frozen=True, slots=True)
class Resolve:
    alert_id: int
    reason: str


Transition = Fire | Worsen | Clearing | Recur | Resolve


def decide(  # noqa: PLR0911 - one return per transition reads better than a dispatch table
    current: Alert | None,
    condition: Condition | None,
    *,
    at: datetime,
    hold_down: timedelta = DEFAULT_HOLD_DOWN,
) -> Transition | None:
    """The transition that brings ``current`` in line with ``condition`` at time ``at``."""
    if current is None or current.state is AlertState.RESOLVED:
        return Fire(condition) if condition is not None else None
    if condition is None:
        if current.cleared_at is None:
            return (
                Resolve(current.id, "condition cleared")
                if not hold_down
                else Clearing(current.id, at)
            )
        if at - current.cleared_at >= hold_down:
            minutes = int(hold_down.total_seconds() // 60)
            return Resolve(current.id, f"condition clear for {minutes} min")
        return None
    if condition.severity > current.severity:
        return Worsen(current.id, condition.severity, condition.summary)
    if current.cleared_at is not None:
        return Recur(current.id, condition.summary)
    return None


def held(
    condition: Condition | None,
    current: Alert | None,
    *,
    at: datetime,
    for_: timedelta,
    pending_since: datetime | None,
) -> tuple[Condition | None, datetime | None]:
    """Apply a rule's "for" duration: a new condition counts only once it has lasted ``for_``.

    Returns the condition to hand to :func:`decide` (None while still pending) and the new
    "pending since" to remember (None when nothing is pending). Prometheus's ``for``: a value
    that crosses a threshold for one sample (a motion artefact, a loose probe) raises nothing.
    An alert already open is judged as before: the duration gates raising, never clearing.
    """
    if current is not None and current.state is not AlertState.RESOLVED:
        return condition, None
    if condition is None:
        return None, None
    if not for_:
        return condition, None
    since = pending_since if pending_since is not None and pending_since <= at else at
    if at - since >= for_:
        return condition, None
    return None, since
