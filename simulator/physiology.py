"""Seeded patient models: what a wrist wearable and a home BP cuff report, minute by minute.

Pure and deterministic: no I/O, no clock. A :class:`PatientModel` is a function of event time;
``samples(lo, hi)`` gives the same answer however a run slices time, because each simulated hour
draws its noise from its own generator seeded by ``(noise seed, patient seed, hour)``.

What is modelled, and the assumptions behind it (values for an older adult on a virtual ward):

* **Heart rate** 60-85 /min at rest (normal adult 60-100); about 10 % lower asleep (nocturnal dip,
  Degaute et al., Hypertension 1991;18:199); a ±3 /min daily rhythm peaking mid-afternoon; about
  +25 /min while walking at 100 steps/min.
* **SpO2** 95-98 % (BTS Guideline for oxygen use 2017: target 94-98 % for most adults), ~1 % lower
  asleep. Pulse oximetry drops out during movement (motion artefact), so walking minutes often
  lack SpO2 and respiratory rate.
* **Respiratory rate** 13-18 /min (NEWS2 scores 0 for 12-20), a little lower asleep, from PPG.
* **Temperature**: the wrist skin (~33 °C) is corrected by the device to a core estimate, reported
  to 0.1 °C; core 36.6-37.0 °C with a ±0.3 °C daily rhythm, peak late afternoon, nadir before
  dawn (Refinetti & Menaker, Physiol Behav 1992;51:613); sensor error SD ~0.1 °C.
* **Blood pressure** from a cuff every 4 h (see ``timeline.CADENCE``), 115-145 / 70-88 mmHg, 10 %
  lower at night (dippers: O'Brien et al., Lancet 1988;2:397).
* **Steps**: older adults with chronic illness walk ~2,000-4,000 steps/day (Tudor-Locke et al.,
  IJBNPA 2011;8:80) in short bouts at 60-110 steps/min; none asleep.
* **Battery** drains 0.6-1.0 %/h (a 4-7 day band); at 15 % the patient charges it for 1.5 h with
  the device off the wrist. A daily 10-20 min wash takes the device off too. Off the wrist the
  device still sends steps (0), battery and ``worn: false``, but no vital signs.
* **RR intervals** (optional) follow the heart rate with respiratory sinus arrhythmia of ~25 ms
  that fades as sepsis sets in (reduced HRV: Ahmad et al., PLoS One 2009;4:e6642).

Consciousness and supplemental oxygen do not come from a wearable and are never produced.

Scenarios blend each value from the patient's normal state toward a target with a smoothstep over
the ramp, starting at the onset (an offset from the simulation's start, chosen by the ward). A
scenario with a recovery holds the targets for a while after the ramp, then blends back to normal
with another smoothstep.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from signals.vitals import PLAUSIBLE, Metric
from simulator.timeline import CADENCE, SAMPLE_INTERVAL_S, due, sample_times

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

#: Metrics a simulated device produces, in the order they appear in a wire sample.
GENERATED: tuple[Metric, ...] = (
    Metric.HEART_RATE,
    Metric.SPO2,
    Metric.RESP_RATE,
    Metric.TEMPERATURE,
    Metric.SYSTOLIC_BP,
    Metric.DIASTOLIC_BP,
    Metric.STEPS,
    Metric.BATTERY,
    Metric.WORN,
)

Range = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Scenario:
    """What happens to a patient: targets reached at full severity, each drawn from a range.

    Each metric moves over its own part of the ramp, ``phases[metric] = (from, to)`` as fractions
    of it (default the whole ramp), so that signs appear in a realistic order.
    """

    name: str
    summary: str
    onset_hours: Range | None = None  # onset after the simulation starts; None: nothing happens
    ramp_hours: Range = (3.0, 5.0)
    heart_rate_bpm: Range | None = None
    resp_rate_bpm: Range | None = None
    spo2_pct: Range | None = None
    temperature_c: Range | None = None
    systolic_bp_mmhg: Range | None = None
    diastolic_bp_mmhg: Range | None = None
    baseline_spo2_pct: Range = (95.0, 98.0)
    removes_device: bool = False  # at onset the device comes off the wrist, then falls silent
    comes_off: bool = False  # at onset the device comes off the body and stays off, still sending
    removed_minutes: Range = (5.0, 20.0)
    battery_start_pct: Range = (30.0, 100.0)
    phases: Mapping[Metric, Range] = field(default_factory=dict)
    # Targets relative to the patient's own baseline (e.g. +8..+14 /min), for illnesses whose
    # signature is a change from usual rather than a value (a viral infection at home).
    deltas: Mapping[Metric, Range] = field(default_factory=dict)
    # Nights differ: each day draws its own offsets of the resting vitals and its own activity
    # level. Off for the hours-long scenarios, whose story fits inside one day.
    day_to_day: bool = False
    # Recovery: after the ramp the targets hold for ``hold_hours``, then every value returns to
    # the patient's normal over ``recovery_hours``. None: the patient never recovers.
    hold_hours: Range = (0.0, 0.0)
    recovery_hours: Range | None = None
    # An illness of the whole patient: the unwell stay in bed and their beat-to-beat variation
    # shrinks. False: only the targeted signs change (a lone deviation, e.g. home_hr_rise).
    systemic: bool = True

    def targets(self) -> dict[Metric, Range]:
        """The ranges of the values this scenario drives, by metric."""
        ranges = {
            Metric.HEART_RATE: self.heart_rate_bpm,
            Metric.RESP_RATE: self.resp_rate_bpm,
            Metric.SPO2: self.spo2_pct,
            Metric.TEMPERATURE: self.temperature_c,
            Metric.SYSTOLIC_BP: self.systolic_bp_mmhg,
            Metric.DIASTOLIC_BP: self.diastolic_bp_mmhg,
        }
        return {m: r for m, r in ranges.items() if r is not None}


# Sepsis / pneumonia (Sepsis-3, Singer et al., JAMA 2016;315:801): tachycardia, tachypnoea,
# desaturation, fever and falling pressure over a few hours. Respiratory rate moves first, as it
# often does (Cretikos et al., Med J Aust 2008;188:657), then temperature and heart rate, then
# SpO2 and pressure. For a typical patient NEWS2 gets a 3 in one parameter (RR >= 25) about 40 %
# into the ramp, 5+ at 45 %, 7+ at 60 %, and ends at 11-13 (HR 2-3, RR 3, SpO2 3, temperature 2,
# systolic 2).
_DETERIORATING = Scenario(
    "deteriorating",
    "sepsis or pneumonia: after the onset RR, temperature and HR rise, SpO2 falls",
    onset_hours=(1.0, 3.0),
    ramp_hours=(4.0, 6.0),
    phases={
        Metric.RESP_RATE: (0.0, 0.6),
        Metric.TEMPERATURE: (0.1, 0.8),
        Metric.HEART_RATE: (0.2, 1.0),
        Metric.SPO2: (0.45, 1.0),
        Metric.SYSTOLIC_BP: (0.55, 1.0),
        Metric.DIASTOLIC_BP: (0.55, 1.0),
    },
    heart_rate_bpm=(120.0, 135.0),
    resp_rate_bpm=(26.0, 30.0),
    spo2_pct=(88.0, 90.0),
    temperature_c=(39.1, 39.5),
    systolic_bp_mmhg=(92.0, 100.0),
    diastolic_bp_mmhg=(55.0, 62.0),
    battery_start_pct=(70.0, 100.0),  # no charging break in the middle of the story
)

#: Scenarios by name. Targets are chosen against RCP NEWS2 2017 Chart 1 so that the aggregate
#: score climbs through each clinical response band.
SCENARIOS: Mapping[str, Scenario] = MappingProxyType(
    {
        s.name: s
        for s in (
            Scenario("stable", "plausible resting vitals with daily rhythm, activity and sleep"),
            _DETERIORATING,
            # The same illness, treated at home (e.g. antibiotics started by the virtual ward's
            # clinician): the signs hold at their worst for 1-2 h, then every value returns to
            # the patient's normal together over 3-6 h. Real recovery from sepsis takes days
            # (fever and heart rate settle within 2-3 days of effective antibiotics); the arc is
            # compressed so that one run shows an alert fire, escalate and resolve.
            replace(
                _DETERIORATING,
                name="deteriorating_recovering",
                summary="sepsis or pneumonia that responds to treatment: the signs of "
                "'deteriorating' hold for 1-2 h at their worst, then return to normal over 3-6 h",
                hold_hours=(1.0, 2.0),
                recovery_hours=(3.0, 6.0),
            ),
            # COPD exacerbation (GOLD 2024 report; BTS 2017 target 88-92 % for those at risk of
            # hypercapnia): a lower baseline SpO2 falling to ~85 % with tachypnoea, no fever.
            Scenario(
                "hypoxic",
                "COPD exacerbation: SpO2 from a low baseline falls to about 85 %, RR rises",
                onset_hours=(1.0, 3.0),
                ramp_hours=(2.0, 4.0),
                phases={Metric.RESP_RATE: (0.1, 0.9), Metric.HEART_RATE: (0.3, 1.0)},
                heart_rate_bpm=(95.0, 110.0),
                resp_rate_bpm=(23.0, 27.0),
                spo2_pct=(84.0, 87.0),
                baseline_spo2_pct=(92.0, 94.0),
                battery_start_pct=(70.0, 100.0),
            ),
            # Multi-day scenarios, for the behaviour-based risk score (signals.risk), which
            # compares each night with the patient's own previous nights.
            Scenario(
                "home_stable",
                "well at home for weeks: resting vitals, activity and sleep vary night to night",
                day_to_day=True,
            ),
            # A viral infection at home (influenza, COVID-19): over two to four days resting heart
            # rate rises 8-14 /min (Mishra et al., Nat Biomed Eng 2020: median +7 to +10),
            # temperature 0.5-1.1 °C, respiratory rate 2-4 /min, SpO2 falls 1-3 %, activity falls.
            # Onset on day 8-11, after a week of baseline: the evaluation's labelled onset.
            Scenario(
                "home_infection",
                "a viral infection at home: over 2-4 days resting HR, temperature and RR rise, "
                "SpO2 and activity fall",
                onset_hours=(7 * 24.0, 10 * 24.0),
                ramp_hours=(48.0, 96.0),
                phases={Metric.TEMPERATURE: (0.0, 0.7), Metric.SPO2: (0.3, 1.0)},
                deltas={
                    Metric.HEART_RATE: (8.0, 14.0),
                    Metric.TEMPERATURE: (0.5, 1.1),
                    Metric.RESP_RATE: (2.0, 4.0),
                    Metric.SPO2: (-3.0, -1.0),
                },
                battery_start_pct=(70.0, 100.0),
                day_to_day=True,
            ),
            # Resting heart rate alone rises 8-14 /min over one to three days and stays up,
            # everything else as usual: what dehydration, anaemia or bleeding, a new arrhythmia
            # at a controlled rate or a stopped beta-blocker can look like on a wearable. It
            # tests the one thing a weighted mean of seven features is bad at: a lone deviation.
            Scenario(
                "home_hr_rise",
                "resting heart rate alone rises 8-14 /min over 1-3 days and stays up; "
                "breathing, temperature, SpO2 and activity stay usual",
                onset_hours=(7 * 24.0, 10 * 24.0),
                ramp_hours=(24.0, 72.0),
                deltas={Metric.HEART_RATE: (8.0, 14.0)},
                battery_start_pct=(70.0, 100.0),
                day_to_day=True,
                systemic=False,
            ),
            Scenario(
                "electrodes_off",
                "a chest patch's electrodes come off 0.5-1 h in and stay off while it goes on "
                "streaming (with --ecg-hz): no heart rate can be derived, and after an hour the "
                "device team gets the sensor alert",
                onset_hours=(0.5, 1.0),
                comes_off=True,
                battery_start_pct=(70.0, 100.0),
            ),
            Scenario(
                "device_off",
                "the watch comes off (worn=false for 5-20 min), then silence, as if taken off "
                "for good or its battery died",
                onset_hours=(0.5, 3.0),
                removes_device=True,
                battery_start_pct=(70.0, 100.0),
            ),
        )
    }
)

# Night-to-night SD of the resting vitals, for the day_to_day scenarios: resting heart rate
# varies by about 2 /min from one night to the next within a person (Quer et al., Nat Med 2021;
# Mishra et al. 2020), skin-derived temperature by ~0.15 °C, breathing by ~0.5 /min.
_DAY_SD: dict[Metric, float] = {
    Metric.HEART_RATE: 2.0,
    Metric.SPO2: 0.4,
    Metric.RESP_RATE: 0.5,
    Metric.TEMPERATURE: 0.12,
    Metric.SYSTOLIC_BP: 4.0,
    Metric.DIASTOLIC_BP: 3.0,
}
_DAY_ACTIVITY_SD = 0.3  # log-normal SD of a day's activity level around the patient's usual

# Measurement noise SD and slow wobble amplitude (both in the metric's unit) per metric.
_NOISE_SD: dict[Metric, float] = {
    Metric.HEART_RATE: 2.0,
    Metric.SPO2: 0.6,
    Metric.RESP_RATE: 0.8,
    Metric.TEMPERATURE: 0.1,
    Metric.SYSTOLIC_BP: 6.0,
    Metric.DIASTOLIC_BP: 4.0,
}
_WOBBLE: dict[Metric, float] = {
    Metric.HEART_RATE: 2.5,
    Metric.SPO2: 0.4,
    Metric.RESP_RATE: 0.6,
    Metric.TEMPERATURE: 0.08,
    Metric.SYSTOLIC_BP: 0.0,
    Metric.DIASTOLIC_BP: 0.0,
}
# Chance per minute that a field is missing at rest, and extra chance while walking.
_DROPOUT: dict[Metric, tuple[float, float]] = {
    Metric.HEART_RATE: (0.01, 0.04),
    Metric.SPO2: (0.03, 0.25),
    Metric.RESP_RATE: (0.02, 0.20),
    Metric.TEMPERATURE: (0.02, 0.0),
}
_BATTERY_LOW_PCT = 15.0
_CHARGE_HOURS = 1.5
_BOUT_END_P = 0.3  # walking bouts last ~3 min on average


@dataclass(frozen=True, slots=True, eq=False)
class Samples:
    """One device's samples, columnar. ``values[m][i]`` is NaN when sample i lacks metric m."""

    ts_s: I64  # Unix seconds
    values: Mapping[Metric, F64]
    rr_intervals_ms: tuple[F64, ...] | None = None  # one array per sample when produced

    def __len__(self) -> int:
        return int(self.ts_s.shape[0])

    @staticmethod
    def empty(*, rr_intervals: bool = False) -> Samples:
        return Samples(
            np.empty(0, np.int64),
            {m: np.empty(0) for m in GENERATED},
            () if rr_intervals else None,
        )

    def take(self, index: slice | npt.NDArray[np.bool_] | npt.NDArray[np.intp]) -> Samples:
        """Samples selected by a slice, boolean mask or index array."""
        rr = None
        if self.rr_intervals_ms is not None:
            positions = np.arange(len(self))[index]
            rr = tuple(self.rr_intervals_ms[int(i)] for i in positions)
        return Samples(self.ts_s[index], {m: v[index] for m, v in self.values.items()}, rr)

    @staticmethod
    def concat(parts: list[Samples]) -> Samples:
        if not parts:
            return Samples.empty()
        rr = None
        if all(p.rr_intervals_ms is not None for p in parts):
            rr = tuple(a for p in parts for a in (p.rr_intervals_ms or ()))
        return Samples(
            np.concatenate([p.ts_s for p in parts]),
            {m: np.concatenate([p.values[m] for p in parts]) for m in parts[0].values},
            rr,
        )


@dataclass(frozen=True, slots=True, eq=False)
class MinuteStates:
    """What the wearer is doing in each minute of one event hour, for the raw accelerometer.

    Entry ``k`` describes the minute before the sample stamped ``ts_s[k]`` (the minute its
    ``steps`` were counted in): ``asleep`` and ``severity`` as the vitals use them, ``walking``
    and ``steps`` from the activity chain, ``worn`` as reported.
    """

    ts_s: I64
    asleep: Bools
    walking: Bools
    worn: Bools
    steps: F64
    severity: F64


@dataclass(frozen=True, slots=True)
class Profile:
    """One patient's own physiology and habits, drawn once from the patient's seed."""

    baseline: Mapping[Metric, float]
    targets: Mapping[Metric, float]
    ramp_s: float
    removed_s: float
    active_fraction: float  # of waking minutes spent walking
    sleep_hour: float  # local clock hours
    wake_hour: float
    wash_hour: float
    wash_minutes: float
    battery_start_pct: float
    battery_drain_pct_per_h: float
    offset_s: int  # second of the minute at which the device stamps its samples
    temperature_phase: int
    battery_phase: int
    bp_phase: int
    # Slow physiological wobble: per metric, three sines (period s, phase rad, amplitude).
    wobble: Mapping[Metric, F64] = field(default_factory=dict)
    hold_s: float = 0.0  # at the targets after the ramp, before recovering
    recovery_s: float | None = None  # back to normal over this long; None: never


def draw_profile(scenario: Scenario, patient_seed: int) -> Profile:
    """Draw a patient's baselines, habits and scenario targets."""
    rng = np.random.default_rng([patient_seed, 0])

    def uniform(r: Range) -> float:
        return float(rng.uniform(r[0], r[1]))

    systolic = uniform((115.0, 145.0))
    baseline = {
        Metric.HEART_RATE: uniform((60.0, 85.0)),
        Metric.SPO2: uniform(scenario.baseline_spo2_pct),
        Metric.RESP_RATE: uniform((13.0, 18.0)),
        Metric.TEMPERATURE: uniform((36.6, 37.0)),
        Metric.SYSTOLIC_BP: systolic,
        Metric.DIASTOLIC_BP: systolic * uniform((0.58, 0.64)),
    }
    wobble = {}
    for metric in baseline:
        periods = rng.uniform(20 * 60, 240 * 60, 3)
        phases = rng.uniform(0, 2 * math.pi, 3)
        amplitude = np.full(3, _WOBBLE[metric] * math.sqrt(2 / 3))  # SD of the sum = _WOBBLE
        wobble[metric] = np.stack([periods, phases, amplitude])
    profile = Profile(
        baseline=baseline,
        targets={m: uniform(r) for m, r in scenario.targets().items()},
        ramp_s=uniform(scenario.ramp_hours) * 3600,
        removed_s=uniform(scenario.removed_minutes) * 60,
        active_fraction=uniform((0.02, 0.06)),
        sleep_hour=uniform((22.0, 23.5)),
        wake_hour=uniform((6.5, 8.0)),
        wash_hour=uniform((8.5, 9.5)),
        wash_minutes=uniform((10.0, 20.0)),
        battery_start_pct=uniform(scenario.battery_start_pct),
        battery_drain_pct_per_h=uniform((0.6, 1.0)),
        offset_s=int(rng.integers(0, SAMPLE_INTERVAL_S)),
        temperature_phase=int(rng.integers(0, CADENCE.temperature_every)),
        battery_phase=int(rng.integers(0, CADENCE.battery_every)),
        bp_phase=int(rng.integers(0, CADENCE.blood_pressure_every)),
        wobble=wobble,
    )
    # Deltas, then the recovery, are drawn last, so the other scenarios' profiles stay as they were.
    if scenario.deltas:
        relative = {m: baseline[m] + uniform(r) for m, r in scenario.deltas.items()}
        profile = replace(profile, targets={**profile.targets, **relative})
    if scenario.recovery_hours is None:
        return profile
    hold_s = uniform(scenario.hold_hours) * 3600
    return replace(profile, hold_s=hold_s, recovery_s=uniform(scenario.recovery_hours) * 3600)


def smoothstep(x: F64) -> F64:
    """0 before, 1 after, a smooth S between: ``3x² - 2x³`` on ``x`` clipped to [0, 1]."""
    x = np.clip(x, 0.0, 1.0)
    result: F64 = x * x * (3.0 - 2.0 * x)
    return result


class PatientModel:
    """A simulated patient wearing a device from event time ``start_s`` on.

    >>> from datetime import UTC
    >>> m = PatientModel(SCENARIOS["stable"], patient_seed=1, noise_seed=2, start_s=0, tz=UTC)
    >>> s = m.samples(0, 3600)
    >>> len(s), bool((s.ts_s < 3600).all())
    (60, True)
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        patient_seed: int,
        noise_seed: int,
        start_s: int,
        tz: tzinfo,
        onset_s: float | None = None,
        rr_intervals: bool = False,
    ) -> None:
        self.scenario = scenario
        self.profile = draw_profile(scenario, patient_seed)
        self.start_s = start_s
        self.onset_s = onset_s
        self.rr_intervals = rr_intervals
        self._seed = (noise_seed, patient_seed)
        self._tz = tz
        self._silent_s: float | None = None
        if scenario.removes_device and onset_s is not None:
            self._silent_s = onset_s + self.profile.removed_s
        self._blocks: dict[int, tuple[Samples, MinuteStates]] = {}

    @property
    def silent_from_s(self) -> float | None:
        """Event time from which the device sends nothing more, if it ever falls silent."""
        return self._silent_s

    def samples(self, lo_s: int, hi_s: int) -> Samples:
        """The samples the device stamps in ``[lo_s, hi_s)`` (event time, Unix seconds)."""
        lo_s = max(lo_s, self.start_s)
        if self._silent_s is not None:
            hi_s = min(hi_s, math.ceil(self._silent_s))
        ts = sample_times(lo_s, hi_s, self.profile.offset_s)
        if ts.size == 0:
            return Samples.empty(rr_intervals=self.rr_intervals)
        hours = range(int(ts[0]) // 3600, int(ts[-1]) // 3600 + 1)
        parts = []
        for hour in hours:
            block = self._block(hour)[0]
            parts.append(block.take((block.ts_s >= lo_s) & (block.ts_s < hi_s)))
        return Samples.concat(parts)

    def next_due(self, at_s: int) -> int | None:
        """Timestamp of the first sample at or after ``at_s``; None once the device is silent."""
        at_s = max(at_s, self.start_s)
        ts = int(sample_times(at_s, at_s + SAMPLE_INTERVAL_S, self.profile.offset_s)[0])
        if self._silent_s is not None and ts >= self._silent_s:
            return None
        return ts

    def hour_samples(self, hour: int) -> Samples:
        """All 60 samples of event hour ``hour`` as generated, before the start and after the
        device falls silent included (what a synthetic waveform of that hour follows)."""
        return self._block(hour)[0]

    def minute_states(self, hour: int) -> MinuteStates:
        """The wearer's state in each minute of event hour ``hour`` (what drives the samples).

        Covers all 60 minutes of the hour, before the start and after the device falls silent
        included: the caller decides what the device sends.
        """
        return self._block(hour)[1]

    def _block(self, hour: int) -> tuple[Samples, MinuteStates]:
        block = self._blocks.get(hour)
        if block is None:
            if len(self._blocks) >= 4:
                del self._blocks[next(iter(self._blocks))]
            block = self._blocks[hour] = self._generate(hour)
        return block

    def _generate(self, hour: int) -> tuple[Samples, MinuteStates]:
        """All 60 samples stamped in one event hour (sample ``k`` at minute ``60·hour + k``)."""
        p = self.profile
        rng = np.random.default_rng([*self._seed, hour])
        minute = np.arange(60 * hour, 60 * hour + 60, dtype=np.int64)
        ts = minute * SAMPLE_INTERVAL_S + p.offset_s
        local_h = _local_hours(ts, self._tz)
        asleep = (local_h >= p.sleep_hour) | (local_h < p.wake_hour)
        severity = self._severity(ts)  # overall; each vital sign has its own phase of it

        # Off the wrist: charging, the daily wash, or (device_off) taken off for good.
        battery, charging = _battery(
            (ts - self.start_s) / 3600, p.battery_start_pct, p.battery_drain_pct_per_h
        )
        washing = (local_h >= p.wash_hour) & (local_h < p.wash_hour + p.wash_minutes / 60)
        removed = np.zeros(60, dtype=np.bool_)
        if (self.scenario.removes_device or self.scenario.comes_off) and self.onset_s is not None:
            removed = ts >= self.onset_s
        worn = ~(charging | washing | removed)

        systemic = 1.0 if self.scenario.systemic else 0.0
        awake = np.where(asleep, 0.0, 1.0 - systemic * severity)  # the unwell stay in bed
        day_shift, activity = self._day(hour)
        steps, walking = _activity(rng, p.active_fraction * activity * awake, 0.2 * awake, worn)
        values = _vitals(
            rng,
            p,
            day_shift=day_shift,
            ts=ts,
            local_h=local_h,
            asleep=asleep,
            severity={m: self._severity(ts, self._phase(m)) for m in p.targets},
            steps=steps,
        )

        # Which fields each sample carries: cadence, the wrist, and sensor dropouts.
        dropout = rng.random((len(_DROPOUT), 60))
        for row, (metric, (at_rest, walking_extra)) in enumerate(_DROPOUT.items()):
            missing = ~worn | (dropout[row] < at_rest + walking_extra * walking)
            values[metric] = np.where(missing, np.nan, values[metric])
        temperature_due = due(minute, CADENCE.temperature_every, p.temperature_phase)
        bp_due = due(minute, CADENCE.blood_pressure_every, p.bp_phase)
        battery_due = due(minute, CADENCE.battery_every, p.battery_phase)
        values[Metric.TEMPERATURE] = np.where(temperature_due, values[Metric.TEMPERATURE], np.nan)
        for metric in (Metric.SYSTOLIC_BP, Metric.DIASTOLIC_BP):
            values[metric] = np.where(bp_due, values[metric], np.nan)
        values[Metric.STEPS] = steps
        values[Metric.BATTERY] = np.where(battery_due, np.clip(np.rint(battery), 0, 100), np.nan)
        values[Metric.WORN] = worn.astype(np.float64)

        rr = None
        if self.rr_intervals:
            rr = _rr_intervals(
                np.random.default_rng([*self._seed, hour, 1]),
                values[Metric.HEART_RATE],
                values[Metric.RESP_RATE],
                systemic * self._severity(ts, self._phase(Metric.HEART_RATE)),
            )
        states = MinuteStates(ts, asleep, walking, worn, steps, severity)
        return Samples(ts, {m: values[m] for m in GENERATED}, rr), states

    def _day(self, hour: int) -> tuple[Mapping[Metric, float], float]:
        """This day's offsets of the vitals and its activity factor (none unless day_to_day).

        Days turn over at noon UTC, so a whole night shares one draw.
        """
        if not self.scenario.day_to_day:
            return {}, 1.0
        rng = np.random.default_rng([*self._seed, (hour - 12) // 24, 0xDA7])
        shift = {m: float(rng.normal(0.0, sd)) for m, sd in _DAY_SD.items()}
        return shift, float(np.exp(rng.normal(0.0, _DAY_ACTIVITY_SD)))

    def _phase(self, metric: Metric) -> Range:
        return self.scenario.phases.get(metric, (0.0, 1.0))

    def _severity(self, ts: I64, phase: Range = (0.0, 1.0)) -> F64:
        """0 until the onset, rising smoothly over ``phase`` of the ramp to 1.

        With a recovery, 1 through the hold after the ramp, then falling smoothly back to 0.
        """
        if self.onset_s is None or not self.profile.targets:
            return np.zeros(ts.shape)
        p = self.profile
        progress = (ts.astype(np.float64) - self.onset_s) / p.ramp_s
        rising = smoothstep((progress - phase[0]) / (phase[1] - phase[0]))
        if p.recovery_s is None:
            return rising
        since_s = ts.astype(np.float64) - (self.onset_s + p.ramp_s + p.hold_s)
        result: F64 = rising * (1.0 - smoothstep(since_s / p.recovery_s))
        return result


def _activity(
    rng: np.random.Generator, fraction: F64, pottering_p: F64, worn: Bools
) -> tuple[F64, Bools]:
    """Steps per minute and whether walking.

    Walking is a two-state (rest/walk) Markov chain whose stationary walking fraction is
    ``fraction`` per minute; minutes at rest carry a few pottering steps with ``pottering_p``.
    """
    start_walk = _BOUT_END_P * fraction / (1.0 - fraction)
    u = rng.random(61)
    walking = np.zeros(60, dtype=np.bool_)
    state = bool(u[0] < fraction[0])
    for k in range(60):
        state = bool(u[k + 1] >= _BOUT_END_P) if state else bool(u[k + 1] < start_walk[k])
        walking[k] = state
    cadence = np.clip(rng.normal(85.0, 15.0, 60), 30.0, 120.0) * rng.uniform(0.3, 1.0, 60)
    shuffle = rng.random(60) < pottering_p
    pottering = rng.poisson(4.0, 60).astype(np.float64)
    steps = np.rint(np.where(walking, cadence, np.where(shuffle, pottering, 0.0)))
    return np.where(worn, steps, 0.0), walking & worn


def _vitals(
    rng: np.random.Generator,
    p: Profile,
    *,
    ts: I64,
    local_h: F64,
    asleep: Bools,
    severity: Mapping[Metric, F64],
    steps: F64,
    day_shift: Mapping[Metric, float],
) -> dict[Metric, F64]:
    """Every vital sign for every minute, rounded as devices do; cadence and dropout come later."""

    def circadian(peak_h: float) -> F64:
        result: F64 = np.cos(2 * math.pi * (local_h - peak_h) / 24)
        return result

    b = p.baseline
    steps_before = np.concatenate([[0.0], steps[:-1]])
    normal = {
        Metric.HEART_RATE: b[Metric.HEART_RATE] * (1 - 0.10 * asleep)
        + 3.0 * circadian(15.0)
        + 0.25 * steps
        + 0.12 * steps_before,
        Metric.SPO2: b[Metric.SPO2] - 0.8 * asleep,
        Metric.RESP_RATE: b[Metric.RESP_RATE] - 1.5 * asleep + 0.04 * steps,
        Metric.TEMPERATURE: b[Metric.TEMPERATURE] + 0.3 * circadian(17.0),
        Metric.SYSTOLIC_BP: b[Metric.SYSTOLIC_BP] * (1 - 0.10 * asleep),
        Metric.DIASTOLIC_BP: b[Metric.DIASTOLIC_BP] * (1 - 0.10 * asleep),
    }
    values: dict[Metric, F64] = {}
    for metric, level in normal.items():
        target = p.targets.get(metric)
        if target is None:
            mean = level
        else:
            sev = severity[metric]
            mean = (1 - sev) * level + sev * target
        periods, phases, amplitudes = p.wobble[metric]
        wobble = (amplitudes * np.sin(2 * math.pi * ts[:, None] / periods + phases)).sum(1)
        noise = rng.normal(0.0, _NOISE_SD[metric], 60)
        values[metric] = mean + day_shift.get(metric, 0.0) + wobble + noise

    values[Metric.HEART_RATE] = np.rint(values[Metric.HEART_RATE])
    values[Metric.SPO2] = np.minimum(np.rint(values[Metric.SPO2]), 100.0)
    values[Metric.RESP_RATE] = np.maximum(np.rint(values[Metric.RESP_RATE]), 6.0)
    values[Metric.TEMPERATURE] = np.round(values[Metric.TEMPERATURE], 1)
    values[Metric.SYSTOLIC_BP] = np.rint(values[Metric.SYSTOLIC_BP])
    values[Metric.DIASTOLIC_BP] = np.minimum(
        np.rint(values[Metric.DIASTOLIC_BP]), values[Metric.SYSTOLIC_BP] - 15.0
    )
    for metric, v in values.items():
        bounds = PLAUSIBLE[metric]
        values[metric] = np.clip(v, bounds.low, bounds.high)
    return values


def _local_hours(ts: I64, tz: tzinfo) -> F64:
    """Local clock hour (0-24) of each timestamp; offsets looked up at the ends, or each if DST."""

    def offset(t: int) -> float:
        delta = datetime.fromtimestamp(t, UTC).astimezone(tz).utcoffset()
        return 0.0 if delta is None else delta.total_seconds()

    first, last = offset(int(ts[0])), offset(int(ts[-1]))
    offsets = np.full(ts.shape, first) if first == last else np.array([offset(int(t)) for t in ts])
    result: F64 = ((ts + offsets) % 86400) / 3600
    return result


def _battery(hours: F64, start_pct: float, drain_pct_per_h: float) -> tuple[F64, Bools]:
    """Charge level and whether on charge: a sawtooth from 100 % down to 15 %, then 1.5 h up."""
    discharge_h = (100.0 - _BATTERY_LOW_PCT) / drain_pct_per_h
    cycle_h = discharge_h + _CHARGE_HOURS
    position = (hours + (100.0 - start_pct) / drain_pct_per_h) % cycle_h
    charging = position >= discharge_h
    refilled = (position - discharge_h) / _CHARGE_HOURS
    rising = _BATTERY_LOW_PCT + (100.0 - _BATTERY_LOW_PCT) * refilled
    level: F64 = np.where(charging, rising, 100.0 - drain_pct_per_h * position)
    return level, charging


def _rr_intervals(
    rng: np.random.Generator, heart_rate: F64, resp_rate: F64, severity: F64
) -> tuple[F64, ...]:
    """Beat-to-beat intervals for each minute whose heart rate is present (else empty)."""
    out = []
    for hr, rr, sev in zip(heart_rate, resp_rate, severity, strict=True):
        if math.isnan(hr):
            out.append(np.empty(0))
            continue
        beats = int(hr)
        breaths_per_beat = (15.0 if math.isnan(rr) else rr) / hr
        mean_ms = 60_000.0 / hr
        phase = 2 * math.pi * breaths_per_beat * np.arange(beats) + rng.uniform(0, 2 * math.pi)
        swing = 25.0 * (1.0 - 0.7 * sev) * np.sin(phase)
        jitter = rng.normal(0.0, 12.0 * (1.0 - 0.5 * sev), beats)
        bounds = PLAUSIBLE[Metric.RR_INTERVAL]
        out.append(np.clip(np.rint(mean_ms + swing + jitter), bounds.low, bounds.high))
    return tuple(out)
