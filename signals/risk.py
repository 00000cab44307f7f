"""Behaviour-based risk: how far tonight's features sit from the patient's own baseline, explained.

Each day's features (resting heart rate, HRV, respiratory rate, temperature, SpO2, activity,
sleep) are compared with the patient's personal baselines (``signals.baseline``). Only deviations
in the direction that signals illness count: a resting heart rate *above* usual, HRV *below*
usual; a quieter-than-usual heart is not a warning. The deviations, as robust z-scores, are
weighted, averaged over the features that were measured, and mapped to 0-100. Every score carries
each feature's contribution, so a nurse sees *why* ("resting HR +9/min, 4.1 SD above usual").

One bad night must not page anyone: ``Sustained`` is a one-sided CUSUM (Page 1954) over the daily
deviation, which alarms only when deviations accumulate over consecutive days. A mean dilutes a
lone deviation among usual features, so resting heart rate, respiratory rate, temperature and
SpO2 each also have their own chart (``own_chart``): any one of them far off for nights on end
alarms by itself. The reference point is Alavi et al., Nature Medicine 2022: personal
resting-heart-rate baselines flagged 80 % of infections a median of 3 days before symptoms at
1.15 false alert-days per person.

Limits (docs/risk.md): weights and thresholds are set from physiology and the literature, not
yet fitted to outcomes; a baseline learnt while already unwell makes illness look normal; devices
differ in how they measure "resting" heart rate and sleep.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from signals.baseline import Baseline, RollingRobust


class Feature(enum.StrEnum):
    RESTING_HR = "resting_hr"  # beats/min, nightly (asleep or after a stretch without steps)
    HRV_RMSSD = "hrv_rmssd"  # ms, nightly
    RESP_RATE = "resp_rate"  # breaths/min, nightly
    TEMPERATURE = "temperature"  # °C (skin or core), nightly
    SPO2 = "spo2"  # %, nightly
    STEPS = "steps"  # steps/day
    SLEEP_MINUTES = "sleep_minutes"  # minutes asleep in the main sleep period
    ACTIVE_MINUTES = "active_minutes"  # minutes/day of light or more (raw accelerometer, no steps)


@dataclass(frozen=True, slots=True)
class FeatureRule:
    """Which way is concerning (+1: higher is worse, -1: lower is worse) and how much it counts."""

    direction: int
    weight: float
    unit: str
    min_sd: (
        float  # floor under the baseline's scale: the device's resolution and night-to-night noise
    )
    #: Watched on its own as well (``own_chart``): a sustained deviation of this feature alone
    #: alarms even when the other features are usual and would dilute it in the mean.
    own_chart: bool = False


#: Scale floors (``min_sd``), set a priori from device resolution, not fitted: wearables report
#: heart rate, SpO2 and respiratory rate in whole units and temperature to 0.1 °C, so a patient
#: whose nightly values repeated for a week has a MAD of 0 and, without a floor, a 1-unit change
#: would read as "6 SD". Steps, sleep and active-minute floors are a few percent of a typical day.
#: Active minutes stand in for steps on devices that send raw acceleration but count no steps
#: (signals.daily measures one or the other on a day, never both), so activity never counts twice.
#: Weights: resting HR carries the published evidence (Alavi 2022; Mishra 2020); respiratory
#: rate, temperature and SpO2 are the NEWS2 physiology; HRV falls with infection but is noisy
#: night to night; activity and sleep change with illness and with everything else. The same
#: four full-weight features each have their own chart (``own_chart``): any one of them
#: deviating for nights on end is worth a review even if everything else is usual.
DEFAULT_RULES: Mapping[Feature, FeatureRule] = MappingProxyType(
    {
        Feature.RESTING_HR: FeatureRule(+1, 1.0, "/min", 1.0, own_chart=True),
        Feature.HRV_RMSSD: FeatureRule(-1, 0.6, "ms", 3.0),
        Feature.RESP_RATE: FeatureRule(+1, 1.0, "/min", 0.5, own_chart=True),
        Feature.TEMPERATURE: FeatureRule(+1, 1.0, "°C", 0.1, own_chart=True),
        Feature.SPO2: FeatureRule(-1, 1.0, "%", 0.5, own_chart=True),
        Feature.STEPS: FeatureRule(-1, 0.4, "steps", 500.0),
        Feature.SLEEP_MINUTES: FeatureRule(-1, 0.4, "min", 20.0),
        Feature.ACTIVE_MINUTES: FeatureRule(-1, 0.4, "min", 15.0),
    }
)

#: Features that measure the same thing on different devices: one measured means the other is not
#: "missing" (a watch that counts steps is not short of active minutes, and vice versa).
STANDS_IN_FOR: Mapping[Feature, Feature] = MappingProxyType(
    {Feature.ACTIVE_MINUTES: Feature.STEPS, Feature.STEPS: Feature.ACTIVE_MINUTES}
)

#: A z-score beyond this is counted as this: one wild value must not dominate the sum.
Z_CAP = 6.0
#: Mean weighted deviation (in SDs) at which the score reaches 63 (1 - 1/e) of 100.
SCALE_SD = 2.0


@dataclass(frozen=True, slots=True)
class Contribution:
    feature: Feature
    value: float
    usual: float
    z: float  # signed robust z-score, in the concerning direction (0 if not concerning)
    points: float  # this feature's share of the 0-100 score

    def describe(self, unit: str) -> str:
        delta = self.value - self.usual
        return f"{self.feature.value} {delta:+.3g}{unit} ({self.z:.1f} SD from usual)"


def reasons(contributions: Iterable[Contribution], *, limit: int = 3) -> tuple[str, ...]:
    """What a nurse is told: the largest contributions worth a point or more, in words."""
    told = [c for c in contributions if c.points >= 1]
    told.sort(key=lambda c: -c.points)
    return tuple(c.describe(DEFAULT_RULES[c.feature].unit) for c in told[:limit])


@dataclass(frozen=True, slots=True)
class RiskScore:
    """A day's score, 0-100, with each feature's contribution and what could not be assessed."""

    score: float
    deviation_sd: float  # weighted mean concerning deviation, the CUSUM's input
    contributions: tuple[Contribution, ...]  # largest first
    missing: tuple[Feature, ...]  # not measured that day
    learning: tuple[Feature, ...]  # measured, but the baseline is not ready yet

    @property
    def assessable(self) -> bool:
        return bool(self.contributions)


def daily_risk(
    values: Mapping[Feature, float | None],
    baselines: Mapping[Feature, Baseline | None],
    *,
    rules: Mapping[Feature, FeatureRule] = DEFAULT_RULES,
) -> RiskScore:
    """Score one day's ``values`` against the patient's ``baselines``."""
    parts: list[tuple[Feature, float, float, float, float]] = []  # feature, value, usual, z, w
    missing: list[Feature] = []
    learning: list[Feature] = []
    for feature, rule in rules.items():
        value = values.get(feature)
        if value is None or not math.isfinite(value):
            missing.append(feature)
            continue
        baseline = baselines.get(feature)
        if baseline is None:
            learning.append(feature)
            continue
        z = rule.direction * (value - baseline.centre) / max(baseline.scale, rule.min_sd)
        parts.append((feature, value, baseline.centre, min(max(z, 0.0), Z_CAP) + 0.0, rule.weight))
    measured = {f for f, *_ in parts} | set(learning)
    missing = [f for f in missing if STANDS_IN_FOR.get(f) not in measured]
    if not parts:
        return RiskScore(0.0, 0.0, (), tuple(missing), tuple(learning))
    total_weight = sum(w for *_, w in parts)
    deviation = sum(z * w for *_, z, w in parts) / total_weight
    score = 100.0 * (1.0 - math.exp(-deviation / SCALE_SD))
    contributions = sorted(
        (
            Contribution(
                f, v, u, z, score * (z * w) / (deviation * total_weight) if deviation else 0
            )
            for f, v, u, z, w in parts
        ),
        key=lambda c: -c.points,
    )
    return RiskScore(score, deviation, tuple(contributions), tuple(missing), tuple(learning))


#: The CUSUM's reference value (slack), SD a day. Only deviations in the concerning direction
#: count, so a healthy day is not 0 but the mean of a half-normal, 1/sqrt(2*pi) = 0.40 SD, and a
#: slack at or below that makes the sum creep upward in health (the first Welltory run showed
#: exactly that: 0.51 SD a day against a slack of 0.5). Page's rule puts the reference value
#: midway between the in-control mean (0.4) and the shift to detect; 1.0 is midway to a mean
#: deviation of 1.6 SD, e.g. resting heart rate 4 SD above usual with two other features usual.
CUSUM_SLACK_SD = 1.0
#: Alarm threshold: two nights at 3 SD in a row (S = 2, then 4) alarm; one night never does.
CUSUM_THRESHOLD = 4.0
#: Ceiling on the sum: without it weeks of deviation pile up and the alarm outlives the illness
#: by weeks; with it the alarm clears after about (6 - 4) / (1.0 - 0.4) = 3-4 usual days.
CUSUM_CAP = 6.0


@dataclass(slots=True)
class Sustained:
    """One-sided CUSUM of daily deviations: alarms when deviation persists, not on one night.

    ``S = min(cap, max(0, S + min(d, threshold) - slack))``; alarm while ``S >= threshold``.
    A day adds at most ``threshold - slack``, so one night, however far off, never alarms on its
    own (acute deterioration is NEWS2's to catch, within minutes); two nights at 3 SD in a row
    (S = 2, then 4) do. A usual night (d ≈ 0.4) takes 0.6 off, and the sum never exceeds
    ``cap``, so an alarm ends within days of the deviation ending. Page E.S. 1954, Biometrika
    41:100-115.
    """

    slack: float = CUSUM_SLACK_SD
    threshold: float = CUSUM_THRESHOLD
    cap: float = CUSUM_CAP
    value: float = field(default=0.0)

    def update(self, deviation_sd: float) -> bool:
        """Add a day's deviation (None-safe callers pass 0 for a day that could not be assessed)."""
        day = min(deviation_sd, self.threshold)
        self.value = min(self.cap, max(0.0, self.value + day - self.slack))
        return self.alarm

    @property
    def alarm(self) -> bool:
        return self.value >= self.threshold

    def snapshot(self) -> dict[str, float]:
        """The state only: the parameters are code, so a new release's parameters apply."""
        return {"value": self.value}

    @classmethod
    def restore(cls, state: Mapping[str, float], **parameters: float) -> Sustained:
        return cls(value=float(state["value"]), **parameters)


#: One feature's own chart (``FeatureRule.own_chart``). The weighted mean dilutes a lone
#: deviation: resting heart rate 4 SD above usual with six usual features is a mean of 0.74 SD,
#: under the mean's slack, and never alarms. These charts watch the full-weight features one by
#: one. Parameters from simulation, not from outcomes (docs/risk.md): a healthy patient whose
#: device measures all seven features, baselines learnt as in use (28 nights, median and MAD,
#: whole-number heart rate), 6 x 10 years: slack 1.5 / threshold 3 gave 1.5-2.5 false
#: alert-days a year from these charts; 1.75 / 3.5 gives 0.4-0.8 (normal, Student-t(5) noise)
#: and still flags 4 SD on night 2 (median; 90 %: night 4) and 3 SD on night 3; 2.0 / 3.0
#: gave 0.05 but took 3 nights for 4 SD. A day adds at most 3.5 - 1.75, so one night never
#: alarms; 2.5 SD alarms on night 5; at 1.75 SD or below it never builds.
OWN_CHART_SLACK_SD = 1.75
OWN_CHART_THRESHOLD = 3.5


def own_chart(value: float = 0.0) -> Sustained:
    """A feature's own sustained-deviation chart (same cap as the mean's: clears within days)."""
    return Sustained(slack=OWN_CHART_SLACK_SD, threshold=OWN_CHART_THRESHOLD, value=value)


#: After this many days in a row held back from learning, the baselines learn again: a change
#: that lasts two weeks is the patient's new normal (or is already being managed), not news.
RELEARN_AFTER_DAYS = 14


def _default_baseline() -> RollingRobust:
    """28 nights, ready after 7: Alavi et al. 2022 used a 28-day personal baseline."""
    return RollingRobust(window=28, min_count=7)


@dataclass(frozen=True, slots=True)
class Assessment:
    """One day of one patient: the score, the accumulated deviation and whether it alarms."""

    risk: RiskScore
    cusum: float  # the weighted mean's CUSUM
    alarm: bool  # the mean's CUSUM or any feature's own chart at its threshold
    alone: tuple[Feature, ...] = ()  # features whose own chart alarms (deviating for days)
    alarm_by_mean: bool = False  # the weighted mean's CUSUM alarms (alone or with own charts)


class PatientRisk:
    """One patient's baselines and sustained-deviation state, stepped one day at a time.

    The score of a day is taken against the baselines learnt *before* it, then the day is
    learnt, unless it leaves evidence of a sustained deviation building (the mean's CUSUM above
    0): such days are held back, up to ``RELEARN_AFTER_DAYS`` in a row, because otherwise an
    illness that comes on over a few days would be learnt as the patient's usual before it had
    accumulated enough to alarm. A feature's own chart holds nothing back: it is above 0 after
    any night past 1.75 SD, and a baseline that never learns its high nights drifts low and
    alarms more (docs/risk.md: measured). The same object serves the live pipeline (state
    snapshotted to PostgreSQL) and ``wardwatch evaluate``.
    """

    def __init__(
        self,
        *,
        rules: Mapping[Feature, FeatureRule] = DEFAULT_RULES,
        make_baseline: Callable[[], RollingRobust] = _default_baseline,
        sustained: Sustained | None = None,
    ) -> None:
        self.rules = rules
        self.baselines = {f: make_baseline() for f in rules}
        self.sustained = sustained if sustained is not None else Sustained()
        self.own = {f: own_chart() for f, rule in rules.items() if rule.own_chart}
        self.held_days = 0  # consecutive days of the current excursion (mean's CUSUM above 0)
        self.held: list[dict[Feature, float]] = []  # their values, learnt if it comes to nothing
        self.excursion_alarmed = False  # the current excursion has alarmed: never learn its days

    def step(self, values: Mapping[Feature, float | None]) -> Assessment:
        """Score one day's feature values (None or NaN: not measured), then learn them."""
        risk = daily_risk(values, {f: b.get() for f, b in self.baselines.items()}, rules=self.rules)
        mean_alarm = self.sustained.update(risk.deviation_sd)
        z = {c.feature: c.z for c in risk.contributions}
        alone = tuple(f for f, chart in self.own.items() if chart.update(z.get(f, 0.0)))
        assessment = Assessment(
            risk, self.sustained.value, mean_alarm or bool(alone), alone, alarm_by_mean=mean_alarm
        )
        if self.sustained.value > 0:  # an excursion: hold the day back until it is decided
            self.held_days += 1
            self.excursion_alarmed = self.excursion_alarmed or assessment.alarm
            self.held.append(_learnable(values))
            if self.held_days <= RELEARN_AFTER_DAYS:
                return assessment
        # Decided: back to 0, or on for two weeks (a new normal). The days of an excursion that
        # never alarmed were usual after all and are learnt now, in order: dropping them would
        # cut off the baseline's upper tail, which then drifts low and alarms more and more
        # (docs/risk.md: measured). The days of one that alarmed stay out of the baseline.
        if not self.excursion_alarmed or self.held_days > RELEARN_AFTER_DAYS:
            for day in self.held:
                self._learn(day)
        self.held.clear()
        if self.sustained.value <= 0:
            self._learn(_learnable(values))
            self.held_days, self.excursion_alarmed = 0, False
        return assessment

    def _learn(self, values: Mapping[Feature, float]) -> None:
        for feature, value in values.items():
            baseline = self.baselines.get(feature)
            if baseline is not None:
                baseline.update(value)

    def snapshot(self) -> dict[str, Any]:
        """Plain JSON-able state; the rules are code and are not part of it."""
        return {
            "baselines": {f.value: b.snapshot() for f, b in self.baselines.items()},
            "sustained": self.sustained.snapshot(),
            "own": {f.value: chart.snapshot() for f, chart in self.own.items()},
            "held_days": self.held_days,
            "held": [{f.value: v for f, v in day.items()} for day in self.held],
            "excursion_alarmed": self.excursion_alarmed,
        }

    @classmethod
    def restore(
        cls, state: Mapping[str, Any], *, rules: Mapping[Feature, FeatureRule] = DEFAULT_RULES
    ) -> PatientRisk:
        """Rebuild from :meth:`snapshot`; an older release's state starts the new parts empty."""
        p = cls(rules=rules, sustained=Sustained.restore(state["sustained"]))
        for name, snap in state["baselines"].items():
            feature = Feature(name)
            if feature in p.baselines:
                p.baselines[feature] = RollingRobust.restore(snap)
        for name, snap in state.get("own", {}).items():
            feature = Feature(name)
            if feature in p.own:
                p.own[feature] = own_chart(float(snap["value"]))
        p.held_days = int(state["held_days"])
        p.held = [{Feature(f): float(v) for f, v in day.items()} for day in state.get("held", [])]
        p.excursion_alarmed = bool(state.get("excursion_alarmed", p.sustained.alarm))
        return p


def _learnable(values: Mapping[Feature, float | None]) -> dict[Feature, float]:
    """The measured values of a day (None and NaN are not learnt: no measurement that night)."""
    return {f: float(v) for f, v in values.items() if v is not None and math.isfinite(v)}
