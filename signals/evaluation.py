"""Score behaviour-based risk against known illness onsets: sensitivity, lead time, false alerts.

The question a virtual ward asks of ``signals.risk`` is the one Alavi et al. (Nature Medicine
2022, 28:175-184) answered for their resting-heart-rate alerts: of the people who fell ill, how
many were flagged, how many days before their symptoms began, and how many days did everyone
else spend under a needless alert? Their figures: 80 % of infections (67/84) flagged, a median
of 3 days before symptom onset, 1.15 false alert-days per person.

Definitions (all in whole calendar days; ``onset`` is the day symptoms began):

- **Detection window** ``[onset - 14, onset + 7]``: an alarm on a monitored day in it detects
  the illness. Two weeks before covers the pre-symptomatic phase in which wearable signals were
  seen to change (Mishra et al., Nat Biomed Eng 2020, 4:1208-1220, found resting heart rate
  rising before symptoms in most infections; SARS-CoV-2 incubates for about 5 days, up to 14);
  one week after allows for a self-reported onset that is late or rounded. Mishra 2020 and
  Alavi 2022 looked for alerts in comparable windows around onset, but our exact bounds were
  chosen a priori, before any result was seen, and are not copied from either paper.
- **Lead time** ``onset - first alarmed monitored day in the detection window``: positive means
  before symptoms. Only detected illnesses have one.
- **Carried-in detection**: the alarm that detects was already standing before the window
  opened (the last monitored day before it alarmed, and no quiet monitored day came between).
  It counts as a detection, as the definition says, but is reported apart: an alarm raised
  weeks before onset and never cleared says nothing about the illness, and its lead time is
  just ``DETECT_BEFORE_DAYS``.
- **Illness window** ``[onset - 21, onset + 28]``: wider than the detection window on purpose.
  An alarm a little earlier than the detection window, or in the weeks of illness and recovery
  after it (resting heart rate stays raised for weeks after COVID-19: Radin et al., JAMA Netw
  Open 2021), is about the illness, so it is neither a detection nor a false alert. Also a
  priori.
- **False alert-days**: alarmed monitored days outside the illness window; for someone without
  an onset date, every alarmed monitored day. Reported per person (the mean, as Alavi 2022 did)
  and per 30 monitored days outside illness windows, because a per-person count grows with how
  long a person was watched and Welltory participants were watched for very different times.

An alarm counts only on a *monitored* day (one with at least one measured feature): through a
gap in the data the CUSUM only decays, so an alarm standing on a day without data is the echo
of earlier days, not a judgement the model made about that day, and counting it would charge
the model with days it had nothing to judge. So ``Episode.alarm_days`` must be a subset of
``Episode.days``.

Pure: no I/O; ``wardwatch.evaluate`` reads the data and prints the report.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Protocol

from signals.risk import Assessment, Feature, PatientRisk

__all__ = [
    "DETECT_AFTER_DAYS",
    "DETECT_BEFORE_DAYS",
    "ILLNESS_AFTER_DAYS",
    "ILLNESS_BEFORE_DAYS",
    "DayModel",
    "Episode",
    "Evaluation",
    "NightSignal",
    "Outcome",
    "episode",
    "evaluate",
    "has_data",
    "replay",
]

#: Days before / after onset in which an alarm detects the illness (see the module docstring).
DETECT_BEFORE_DAYS = 14
DETECT_AFTER_DAYS = 7
#: Days before / after onset in which an alarm is about the illness, so never a false alert.
ILLNESS_BEFORE_DAYS = 21
ILLNESS_AFTER_DAYS = 28

DayValues = Mapping[Feature, float | None]


class Alarming(Protocol):
    @property
    def alarm(self) -> bool: ...


class DayModel(Protocol):
    """Anything stepped one day at a time that says whether the day alarms: ``PatientRisk``,
    or a published rule run on the same data for comparison (``NightSignal``)."""

    def step(self, values: DayValues) -> Alarming: ...


@dataclass(frozen=True, slots=True)
class NightSignalDay:
    alarm: bool
    elevated: bool


@dataclass(slots=True)
class NightSignal:
    """Alavi et al. 2022's published alert rule, for comparison on the same data, not ours.

    Their NightSignal state machine (Nat Med 2022, Extended Data Fig. 3) raises a red alert
    "if for two consecutive nights, the average RHR overnight is at least four bpm above the
    calculated baseline (streaming median of averages of RHR overnight)". Implemented as said:
    the baseline is the median of every earlier night's resting heart rate; a night is elevated
    at ≥ baseline + 4 /min; a night alarms when it and the night before (the previous calendar
    day, measured) are both elevated. The paper's other states (yellow alerts, recovery) change
    what a user sees, not when red fires; the minimum number of nights before a baseline counts
    is not given there, so ours (7, as ``RollingRobust``) is used. Only resting heart rate is
    read: the rule Alavi's 80 % came from.
    """

    min_nights: int = 7
    elevation_bpm: float = 4.0
    nights: list[float] = field(default_factory=list)
    _was_elevated: bool = False

    def step(self, values: DayValues) -> NightSignalDay:
        rhr = values.get(Feature.RESTING_HR)
        if rhr is None or not math.isfinite(rhr):
            self._was_elevated = False  # a night without a value breaks "consecutive"
            return NightSignalDay(alarm=False, elevated=False)
        elevated = (
            len(self.nights) >= self.min_nights
            and rhr >= statistics.median(self.nights) + self.elevation_bpm
        )
        alarm = elevated and self._was_elevated
        self.nights.append(rhr)
        self._was_elevated = elevated
        return NightSignalDay(alarm=alarm, elevated=elevated)


@dataclass(frozen=True, slots=True)
class Episode:
    """One person's monitored days and the days among them that alarmed.

    ``days`` are the days with any measured feature, ascending; ``alarm_days`` the subset that
    alarmed. ``onset`` is the symptom-onset day, or None for someone with no known illness.
    """

    patient: str
    onset: date | None
    days: tuple[date, ...]
    alarm_days: tuple[date, ...]

    def __post_init__(self) -> None:
        if any(a >= b for a, b in itertools.pairwise(self.days)):
            raise ValueError(f"{self.patient}: days must be strictly ascending")
        stray = sorted(set(self.alarm_days) - set(self.days))
        if stray:
            raise ValueError(
                f"{self.patient}: alarm days must be monitored days; not monitored: {stray[:3]}"
            )


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the evaluation found for one person."""

    patient: str
    onset: date | None
    monitored_days: int
    detected: bool | None  # None: no onset, nothing to detect
    lead_days: int | None  # onset - first alarm in the detection window; > 0 is before onset
    carried_in: bool  # detected by an alarm already standing before the window opened
    false_alert_days: int
    days_outside_illness: int  # monitored days outside the illness window (all, without onset)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The figures, comparable with Alavi et al. 2022, and each person's outcome behind them."""

    outcomes: tuple[Outcome, ...]
    detect_before_days: int
    detect_after_days: int
    illness_before_days: int
    illness_after_days: int

    @property
    def n_participants(self) -> int:
        return len(self.outcomes)

    @property
    def n_with_onset(self) -> int:
        return sum(o.onset is not None for o in self.outcomes)

    @property
    def n_detected(self) -> int:
        return sum(bool(o.detected) for o in self.outcomes)

    @property
    def n_carried_in(self) -> int:
        """Detections by an alarm already standing before the detection window opened."""
        return sum(o.carried_in for o in self.outcomes)

    @property
    def sensitivity(self) -> float:
        """Detected / with onset; NaN when nobody had an onset (not 0: nothing was measured)."""
        return self.n_detected / self.n_with_onset if self.n_with_onset else math.nan

    @property
    def lead_days(self) -> tuple[int, ...]:
        return tuple(o.lead_days for o in self.outcomes if o.lead_days is not None)

    @property
    def median_lead_days(self) -> float:
        return float(statistics.median(self.lead_days)) if self.lead_days else math.nan

    @property
    def false_alert_days(self) -> int:
        return sum(o.false_alert_days for o in self.outcomes)

    @property
    def days_outside_illness(self) -> int:
        return sum(o.days_outside_illness for o in self.outcomes)

    @property
    def false_alert_days_per_person(self) -> float:
        return self.false_alert_days / self.n_participants if self.outcomes else math.nan

    @property
    def false_alert_days_per_30_days(self) -> float:
        """Per 30 monitored days outside illness windows: comparable across watch lengths."""
        days = self.days_outside_illness
        return 30.0 * self.false_alert_days / days if days else math.nan


def _within(day: date, onset: date, before: int, after: int) -> bool:
    return onset - timedelta(days=before) <= day <= onset + timedelta(days=after)


def _carried_in(e: Episode, first_hit: date, window_start: date) -> bool:
    """True if ``first_hit`` continues an alarm run that began before ``window_start``."""
    before = [d for d in e.days if d < window_start]
    if not before or before[-1] not in set(e.alarm_days):
        return False
    # Monitored days between the window's start and the first hit are quiet by definition.
    return not any(window_start <= d < first_hit for d in e.days)


def evaluate(
    episodes: Iterable[Episode],
    *,
    detect_before_days: int = DETECT_BEFORE_DAYS,
    detect_after_days: int = DETECT_AFTER_DAYS,
    illness_before_days: int = ILLNESS_BEFORE_DAYS,
    illness_after_days: int = ILLNESS_AFTER_DAYS,
) -> Evaluation:
    """Sensitivity, lead times and false alert-days of ``episodes`` (definitions: module doc).

    The illness window must contain the detection window, or a detecting alarm could also be
    counted as a false one.
    """
    if min(detect_before_days, detect_after_days) < 0:
        raise ValueError("window bounds are days before and after onset: give them >= 0")
    if illness_before_days < detect_before_days or illness_after_days < detect_after_days:
        raise ValueError("the illness window must contain the detection window")
    outcomes: list[Outcome] = []
    for e in episodes:
        if e.onset is None:
            outcomes.append(
                Outcome(
                    e.patient, None, len(e.days), None, None, False, len(e.alarm_days), len(e.days)
                )
            )
            continue
        onset = e.onset
        hits = [d for d in e.alarm_days if _within(d, onset, detect_before_days, detect_after_days)]
        lead = (onset - hits[0]).days if hits else None

        def ill(day: date, onset: date = onset) -> bool:
            return _within(day, onset, illness_before_days, illness_after_days)

        outside = [d for d in e.days if not ill(d)]
        false_alerts = sum(not ill(d) for d in e.alarm_days)
        outcomes.append(
            Outcome(
                e.patient,
                onset,
                len(e.days),
                bool(hits),
                lead,
                bool(hits) and _carried_in(e, hits[0], onset - timedelta(days=detect_before_days)),
                false_alerts,
                len(outside),
            )
        )
    return Evaluation(
        tuple(outcomes),
        detect_before_days,
        detect_after_days,
        illness_before_days,
        illness_after_days,
    )


def has_data(values: DayValues) -> bool:
    """True if any feature was measured (not None, not NaN): the day is a monitored day."""
    return any(v is not None and math.isfinite(v) for v in values.values())


def replay(
    days: Sequence[tuple[date, DayValues]],
    *,
    make_risk: Callable[[], PatientRisk] = PatientRisk,
) -> list[tuple[date, Assessment]]:
    """Step one patient's days through a fresh ``PatientRisk``, every calendar day, in order.

    A calendar day missing from ``days`` steps with no values, as the live pipeline's daily job
    does for a patient who sent nothing: the CUSUM then decays through the gap instead of a
    deviation before a week's silence adding to one after it. ``days`` must be strictly
    ascending (a repeated day would be learnt twice).
    """
    if not days:
        return []
    if any(a >= b for (a, _), (b, _) in itertools.pairwise(days)):
        raise ValueError("days must be strictly ascending, one entry per day")
    given = dict(days)
    risk = make_risk()
    first, last = days[0][0], days[-1][0]
    out: list[tuple[date, Assessment]] = []
    for i in range((last - first).days + 1):
        day = first + timedelta(days=i)
        out.append((day, risk.step(given.get(day, {}))))
    return out


def episode(
    patient: str,
    onset: date | None,
    days: Sequence[tuple[date, DayValues]],
    *,
    make_risk: Callable[[], DayModel] = PatientRisk,
) -> Episode:
    """Replay ``days`` through a fresh model and keep the monitored days and those that alarmed.

    Every calendar day is stepped, as in :func:`replay` (a missing day steps with no values).
    """
    if any(a >= b for (a, _), (b, _) in itertools.pairwise(days)):
        raise ValueError("days must be strictly ascending, one entry per day")
    monitored = {d for d, values in days if has_data(values)}
    alarmed: list[date] = []
    if days:
        given, model = dict(days), make_risk()
        for i in range((days[-1][0] - days[0][0]).days + 1):
            day = days[0][0] + timedelta(days=i)
            if model.step(given.get(day, {})).alarm and day in monitored:
                alarmed.append(day)
    return Episode(patient, onset, tuple(sorted(monitored)), tuple(alarmed))
