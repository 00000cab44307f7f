"""The dashboard API's JSON shapes, and their mapping from the store's read models.

Pydantic models so that ``/openapi.json`` documents the API; the domain keeps its own frozen
dataclasses (``alerts.model``, ``storage.views``) and only this module translates between them.
Every datetime leaves as RFC 3339 in UTC (``2024-03-01T09:30:00Z``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from alerts.model import RESOLUTION_OUTCOMES, Alert, AlertEvent, AlertState, Rule, Severity
from alerts.policy import Overrides, PolicyError, to_data
from storage.live import AlertChange
from storage.policy import OverrideRecord, StoredPolicy
from storage.views import BehaviourRisk, PatientStatus

SeverityLabel = Literal["technical", "review", "urgent", "emergency"]

_SEVERITY_LABELS: dict[Severity, SeverityLabel] = {
    Severity.TECHNICAL: "technical",
    Severity.REVIEW: "review",
    Severity.URGENT: "urgent",
    Severity.EMERGENCY: "emergency",
}

#: Display order of NEWS2 risk bands, worst first (RCP NEWS2 2017, clinical response chart);
#: a patient not yet scored sorts after every scored one.
RISK_ORDER: tuple[str, ...] = ("high", "medium", "low-medium", "low")


def _utc(at: datetime) -> datetime:
    # astimezone on a naive datetime would silently assume the server's local zone.
    if at.tzinfo is None:
        msg = "naive datetime reached the dashboard; the store must return UTC-aware datetimes"
        raise ValueError(msg)
    return at.astimezone(UTC)


def _utc_or_none(at: datetime | None) -> datetime | None:
    return None if at is None else _utc(at)


class BehaviourOut(BaseModel):
    """A patient's latest day of behaviour-based risk, with its reasons."""

    day: date
    score: float = Field(description="0-100: how far the day sits from the patient's usual.")
    alarm: bool = Field(description="True when the deviation has lasted (CUSUM): a review.")
    reasons: list[str] = Field(description="The largest contributions, largest first.")
    learning: list[str] = Field(description="Features whose baseline is still being learnt.")

    @classmethod
    def of(cls, b: BehaviourRisk) -> BehaviourOut:
        return cls(
            day=b.day,
            score=round(b.score, 1),
            alarm=b.alarm,
            reasons=list(b.reasons),
            learning=list(b.learning),
        )


class PatientOut(BaseModel):
    """One patient's line on the ward list."""

    patient_id: str
    ward: str
    device_id: str | None
    news2_total: int | None = Field(description="Latest NEWS2 aggregate; null until first scored.")
    news2_risk: str | None = Field(
        description="low, low-medium, medium or high (RCP NEWS2 2017); null until first scored."
    )
    news2_missing: list[str] = Field(
        description="Parameters the latest score lacked (metric wire names); non-empty means "
        "the score is partial, e.g. no blood pressure or consciousness from a wearable."
    )
    scored_at: AwareDatetime | None
    last_seen_at: AwareDatetime | None = Field(
        description="When wardwatch last received anything from the patient's device."
    )
    stale: bool = Field(
        description="True when nothing has been received for longer than the dashboard's "
        "stale threshold (or ever)."
    )
    latest: dict[str, float] = Field(
        description="Latest value per metric wire name (heart_rate, spo2, resp_rate, ...)."
    )
    open_alerts: int
    derived: list[str] = Field(
        default_factory=list,
        description="Of `latest`, the metrics wardwatch derived from a waveform rather than the "
        "device measured (e.g. resp_rate from the PPG).",
    )
    spo2_scale: int = Field(
        default=1,
        description="NEWS2 SpO2 scale: 2 for prescribed hypercapnic targets (set by a clinician).",
    )
    paused: PauseOut | None = Field(
        default=None,
        description="A monitoring pause in force now: NEWS2 and risk alerts are not raised.",
    )
    behaviour: BehaviourOut | None = Field(
        default=None,
        description="The latest day of the behaviour-based risk score (deviation from the "
        "patient's own baseline, docs/risk.md); null until a day has been scored.",
    )

    @classmethod
    def of(cls, status: PatientStatus, *, now: datetime, stale_after: timedelta) -> PatientOut:
        last_seen_at = _utc_or_none(status.last_seen_at)
        return cls(
            patient_id=status.patient_id,
            ward=status.ward,
            device_id=status.device_id,
            news2_total=status.news2_total,
            news2_risk=status.news2_risk,
            news2_missing=list(status.news2_missing),
            scored_at=_utc_or_none(status.scored_at),
            last_seen_at=last_seen_at,
            stale=last_seen_at is None or now - last_seen_at > stale_after,
            latest=dict(status.latest),
            open_alerts=status.open_alerts,
            behaviour=None if status.behaviour is None else BehaviourOut.of(status.behaviour),
            spo2_scale=status.spo2_scale,
            derived=list(status.derived),
            paused=(
                PauseOut(
                    reason=status.pause.reason,
                    since=status.pause.since.astimezone(UTC),
                    until=status.pause.until.astimezone(UTC),
                )
                if status.pause is not None and status.pause.covers(now)
                else None
            ),
        )


class AlertOut(BaseModel):
    """An alert as the nurse and the API see it."""

    id: int
    patient_id: str
    ward: str
    rule: Rule
    severity: SeverityLabel
    state: AlertState
    summary: str
    opened_at: AwareDatetime
    updated_at: AwareDatetime
    acknowledged_by: str | None
    acknowledged_at: AwareDatetime | None
    resolved_at: AwareDatetime | None
    escalation_level: int
    next_escalation_at: AwareDatetime | None

    @classmethod
    def of(cls, alert: Alert) -> AlertOut:
        return cls(
            id=alert.id,
            patient_id=alert.patient_id,
            ward=alert.ward,
            rule=alert.rule,
            severity=_SEVERITY_LABELS[alert.severity],
            state=alert.state,
            summary=alert.summary,
            opened_at=_utc(alert.opened_at),
            updated_at=_utc(alert.updated_at),
            acknowledged_by=alert.acknowledged_by,
            acknowledged_at=_utc_or_none(alert.acknowledged_at),
            resolved_at=_utc_or_none(alert.resolved_at),
            escalation_level=alert.escalation_level,
            next_escalation_at=_utc_or_none(alert.next_escalation_at),
        )


class AlertEventOut(BaseModel):
    """One step in an alert's history."""

    alert_id: int
    at: AwareDatetime
    kind: str = Field(
        description="fired, escalated_severity, notified, acknowledged, escalated or resolved."
    )
    severity: SeverityLabel
    actor: str | None
    detail: str

    @classmethod
    def of(cls, event: AlertEvent) -> AlertEventOut:
        return cls(
            alert_id=event.alert_id,
            at=_utc(event.at),
            kind=event.kind,
            severity=_SEVERITY_LABELS[event.severity],
            actor=event.actor,
            detail=event.detail,
        )


class AlertChangeOut(BaseModel):
    """One alert change on the live stream (``GET /api/stream``, event ``alert``): ids only.

    The page re-reads ``/api/alerts`` when one arrives; names and summaries never travel here.
    """

    id: int = Field(description="The change's id (alert_events): also the SSE event id.")
    alert_id: int
    kind: str = Field(
        description="fired, worsened, clearing, recurred, acknowledged, escalated, resolved, "
        "notified, notify_failed, notify_dead_letter or notify_inhibited."
    )
    severity: SeverityLabel
    ward: str

    @classmethod
    def of(cls, change: AlertChange) -> AlertChangeOut:
        return cls(
            id=change.id,
            alert_id=change.alert_id,
            kind=change.kind,
            severity=_SEVERITY_LABELS[change.severity],
            ward=change.ward,
        )


UserName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)]
#: A free-text note where blank is the same as none.
OptionalNote = Annotated[Note | None, AfterValidator(lambda note: note or None)]


class AckIn(BaseModel):
    """A nurse taking an alert on."""

    model_config = ConfigDict(extra="forbid")

    user: UserName = Field(description="Who acknowledges: 1-100 characters after trimming.")
    note: OptionalNote = Field(
        default=None, description="Optional free text; blank is the same as none."
    )


class ResolveIn(BaseModel):
    """A nurse or clinician closing an alert and saying what happened."""

    model_config = ConfigDict(extra="forbid")

    user: UserName = Field(description="Who resolves: 1-100 characters after trimming.")
    outcome: str = Field(
        description="What happened, one of: " + "; ".join(RESOLUTION_OUTCOMES) + "."
    )
    note: OptionalNote = Field(default=None, description="Optional free text.")

    @field_validator("outcome")
    @classmethod
    def _known_outcome(cls, outcome: str) -> str:
        if outcome not in RESOLUTION_OUTCOMES:
            raise ValueError("must be one of: " + "; ".join(RESOLUTION_OUTCOMES))
        return outcome


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["reachable", "unreachable"]


def patient_order(patient: PatientOut) -> tuple[int, int, str]:
    """Sort key: worst risk band first, then highest NEWS2, then patient id for a stable list."""
    rank = (
        RISK_ORDER.index(patient.news2_risk)
        if patient.news2_risk in RISK_ORDER
        else len(RISK_ORDER)
    )
    total = -1 if patient.news2_total is None else patient.news2_total
    return (rank, -total, patient.patient_id)


def alert_order(alert: Alert) -> tuple[int, datetime, int]:
    """Sort key: most severe first, then oldest first (it has waited longest)."""
    return (-int(alert.severity), alert.opened_at, alert.id)


# --- alerting policy and patient overrides (docs/policy.md) ------------------------------------

PolicyText = Annotated[str, StringConstraints(max_length=100_000)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]


class PolicyIn(BaseModel):
    """A new alerting policy: its YAML text and who sets it."""

    model_config = ConfigDict(extra="forbid")

    user: UserName = Field(description="Who sets the policy; kept with the version.")
    text: PolicyText = Field(description="The policy file's text (YAML, docs/policy.md).")


class PolicyOut(BaseModel):
    """The policy in force: its text as written, and every setting it resolves to."""

    version: int = Field(description="Increases with each change; 0 is the built-in policy.")
    text: str = Field(description="As written; empty for the built-in policy.")
    set_by: str | None
    set_at: AwareDatetime | None
    policy: dict[str, Any] = Field(
        description="The parsed policy with every setting spelt out: the default ward and each "
        "ward the text names (the file's own layout)."
    )

    @classmethod
    def of(cls, stored: StoredPolicy) -> PolicyOut:
        return cls(
            version=stored.version,
            text=stored.text,
            set_by=stored.set_by,
            set_at=_utc_or_none(stored.set_at),
            policy=to_data(stored.policy),
        )


class PolicyIssueOut(BaseModel):
    line: int = Field(description="1-based line of the policy text.")
    path: str = Field(description="Dotted key path, e.g. default.escalation.ack_within.urgent.")
    message: str


class PolicyRefusedOut(BaseModel):
    """Why a policy was refused (HTTP 422); the policy in force is unchanged."""

    message: str = Field(description="Every issue, one line each: 'policy.yaml line 12: ...'.")
    issues: list[PolicyIssueOut]

    @classmethod
    def of(cls, exc: PolicyError) -> PolicyRefusedOut:
        return cls(
            message=str(exc),
            issues=[
                PolicyIssueOut(line=i.line, path=i.path, message=i.message) for i in exc.issues
            ],
        )


class PauseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason = Field(description="Why monitoring is paused, e.g. admitted for a procedure.")
    until: AwareDatetime = Field(description="When the pause ends by itself (at most 7 days).")


class PauseOut(BaseModel):
    reason: str
    since: AwareDatetime
    until: AwareDatetime


class OverridesIn(BaseModel):
    """A clinician's overrides for one patient: the whole new state, with who and why."""

    model_config = ConfigDict(extra="forbid")

    user: UserName = Field(description="The clinician who sets the overrides.")
    reason: Reason = Field(description="Why; kept in the patient's override history.")
    spo2_scale: Literal[1, 2] = Field(
        default=1,
        description="NEWS2 SpO2 scale; 2 only for prescribed hypercapnic respiratory failure "
        "targets (RCP NEWS2 2017).",
    )
    spo2_target_pct: tuple[int, int] | None = Field(
        default=None, description="Prescribed SpO2 target range, e.g. [88, 92]; null for none."
    )
    pause: PauseIn | None = Field(
        default=None,
        description="Pause monitoring (no clinical alerts) until a time; null ends it.",
    )


class OverridesOut(BaseModel):
    """A patient's overrides in force (or one change of them, in the history)."""

    patient_id: str
    spo2_scale: Literal[1, 2]
    spo2_target_pct: tuple[int, int] | None
    pause: PauseOut | None = Field(description="The pause last set, even if it has ended.")
    paused: bool = Field(
        description="True while the pause is in force (at the server's now); always false for "
        "a superseded change in the history."
    )
    set_by: str | None = Field(description="Who set these; null when never set.")
    reason: str | None
    set_at: AwareDatetime | None

    @classmethod
    def of(
        cls, patient_id: str, record: OverrideRecord | None, *, now: datetime | None
    ) -> OverridesOut:
        """``now`` None: a superseded change, never "paused" whatever its times."""
        o = record.overrides if record else Overrides()
        pause = o.pause
        return cls(
            patient_id=patient_id,
            spo2_scale=2 if o.spo2_scale == 2 else 1,
            spo2_target_pct=o.spo2_target_pct,
            pause=None
            if pause is None
            else PauseOut(reason=pause.reason, since=_utc(pause.since), until=_utc(pause.until)),
            paused=now is not None and o.paused_at(now),
            set_by=record.set_by if record else None,
            reason=record.reason if record else None,
            set_at=_utc(record.set_at) if record else None,
        )
