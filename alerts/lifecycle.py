"""How an alert moves between states when a rule's condition appears, worsens or clears.

One open alert per patient and rule; severity only rises while an alert is open (a nurse who has
been told "emergency" is not quietly told "urgent" before anyone has looked).
"""

from __future__ import annotations

from dataclasses import dataclass

from alerts.model import Alert, AlertState, Condition, Severity


@dataclass(frozen=True, slots=True)
class Fire:
    condition: Condition


@dataclass(frozen=True, slots=True)
class Worsen:
    alert_id: int
    severity: Severity
    summary: str


@dataclass(frozen=True, slots=True)
class Resolve:
    alert_id: int
    reason: str


Transition = Fire | Worsen | Resolve


def decide(current: Alert | None, condition: Condition | None) -> Transition | None:
    """The transition that brings ``current`` in line with ``condition`` (None: nothing to do)."""
    if current is None or current.state is AlertState.RESOLVED:
        return Fire(condition) if condition is not None else None
    if condition is None:
        return Resolve(current.id, "condition cleared")
    if condition.severity > current.severity:
        return Worsen(current.id, condition.severity, condition.summary)
    return None
