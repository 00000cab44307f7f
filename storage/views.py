"""Read models the store returns to the dashboard: one row a patient, typed, no ORM."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from alerts.policy import Pause


@dataclass(frozen=True, slots=True)
class PatientStatus:
    """What a nurse needs on one line: who, where, how they score and how fresh the data are."""

    patient_id: str
    ward: str
    device_id: str | None
    news2_total: int | None  # None until the first score
    news2_risk: str | None  # low, low-medium, medium, high
    news2_missing: tuple[str, ...]  # parameters the last score lacked (incomplete score)
    scored_at: datetime | None  # event time of the last score
    last_seen_at: datetime | None  # when wardwatch last received anything from the device
    latest: dict[str, float]  # latest value per metric wire name (heart_rate, spo2, ...)
    open_alerts: int
    behaviour: BehaviourRisk | None = None  # the latest scored day, once there is one
    spo2_scale: int = 1  # NEWS2 SpO2 scale (2: prescribed hypercapnic targets)
    pause: Pause | None = None  # the latest monitoring pause, ended or not (the reader judges)
    derived: tuple[str, ...] = ()  # of ``latest``, the values wardwatch derived (e.g. RR from PPG)


@dataclass(frozen=True, slots=True)
class BehaviourRisk:
    """The latest day of the behaviour-based risk score (signals.risk), as the nurse sees it."""

    day: date
    score: float  # 0-100
    alarm: bool  # a sustained deviation: the "risk" alert is raised
    reasons: tuple[str, ...]  # the largest contributions, e.g. "resting_hr +9/min (4.1 SD ...)"
    learning: tuple[str, ...]  # features whose baseline is still being learnt


class NotFoundError(LookupError):
    """No such alert (or patient)."""


class ConflictError(RuntimeError):
    """The request does not fit the alert's state (e.g. acknowledging a resolved alert)."""
