"""Alert vocabulary shared by the rules, the escalation policy, storage and the dashboard."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class Severity(enum.IntEnum):
    """How urgently a person must respond; ordered so that ``max`` picks the worse.

    Clinical severities follow the RCP NEWS2 2017 clinical response chart: a score of 3 in any
    single parameter asks for an urgent ward-based review; an aggregate of 5-6 an urgent response;
    7 or more an emergency response. ``TECHNICAL`` alerts (a silent device) go to whoever fixes
    devices and never outrank a clinical alert.
    """

    TECHNICAL = 0
    REVIEW = 1
    URGENT = 2
    EMERGENCY = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> Severity:
        return cls[label.upper()]


class AlertState(enum.StrEnum):
    OPEN = "open"  # fired, nobody has acknowledged it yet
    ACKNOWLEDGED = "acknowledged"  # a named user has taken it on
    RESOLVED = "resolved"  # the condition cleared (or a user closed it)


class Rule(enum.StrEnum):
    """What raised an alert; one open alert per patient and rule."""

    NEWS2 = "news2"
    NO_DATA = "no_data"
    MESSAGE_GAP = "message_gap"  # a device's numbered messages went missing upstream of us
    RISK = "risk"  # behaviour-based risk: a sustained deviation from the patient's own baseline
    BATTERY = "battery"  # the device's battery is low
    BATTERY_CRITICAL = "battery_critical"  # ... and about to die: a separate, louder alert
    NOT_WORN = "not_worn"  # the device reports it is off the body
    CLOCK_SKEW = "clock_skew"  # the device's clock disagrees with ours
    STALL = "stall"  # wardwatch itself stopped processing (raised by the watchdog)
    SENSOR = "sensor"  # a vital-sign sensor frozen or noisy: its values are kept out of NEWS2


@dataclass(frozen=True, slots=True)
class Condition:
    """A rule's verdict for one patient at one moment: firing at a severity, with a reason."""

    patient_id: str
    rule: Rule
    severity: Severity
    summary: str  # shown to the nurse, e.g. "NEWS2 7 (high): RR 3, SpO2 3, HR 1"


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    patient_id: str
    ward: str
    rule: Rule
    severity: Severity
    state: AlertState
    summary: str
    opened_at: datetime
    updated_at: datetime
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    escalation_level: int
    next_escalation_at: datetime | None
    cleared_at: datetime | None = None  # when the condition cleared, if it has (hold-down)


@dataclass(frozen=True, slots=True)
class AlertEvent:
    alert_id: int
    at: datetime
    kind: str  # fired, escalated_severity, notified, acknowledged, escalated, resolved
    severity: Severity
    actor: str | None
    detail: str


#: What a user says happened when they close an alert themselves: a small fixed vocabulary so the
#: ward's report can count outcomes (a free-text note goes beside it).
RESOLUTION_OUTCOMES: tuple[str, ...] = (
    "managed at home",
    "escalated to hospital",
    "no action needed",
    "false alarm (artefact)",
    "device problem fixed",
    "other",
)
