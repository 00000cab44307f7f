"""Labelled multi-day patient courses, for evaluating the behaviour-based risk score.

Each course is a simulated patient wearing a device for weeks (``home_stable``) or catching an
infection after a week or more of normal life (``home_infection``), reduced to the daily features
the risk score sees (``signals.daily``) through the same code the live pipeline uses. The label
is the day of the physiological onset: the simulator knows it exactly, which no real cohort does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np

from signals.daily import daily_features, day_of, day_window
from signals.risk import Feature
from signals.vitals import Metric, Readings
from simulator.physiology import SCENARIOS, PatientModel, Samples

_US = 1_000_000


@dataclass(frozen=True, slots=True)
class Course:
    """One simulated patient's days: the features of each and, if they fall ill, the onset day."""

    patient_id: str
    scenario: str
    onset: date | None
    days: tuple[tuple[date, dict[Feature, float]], ...]


def to_readings(samples: Samples, *, device_id: str, patient_id: str) -> Readings:
    """The columnar readings ingest would store for these samples (NaN fields are not sent).

    RR intervals are stamped at their beat, counted from the sample's time, as a device that
    streams beat-to-beat intervals does.
    """
    ts: list[np.ndarray] = []
    metric: list[np.ndarray] = []
    value: list[np.ndarray] = []
    for m, v in samples.values.items():
        present = np.isfinite(v)
        ts.append(samples.ts_s[present] * _US)
        metric.append(np.full(int(present.sum()), int(m), np.int16))
        value.append(v[present])
    if samples.rr_intervals_ms is not None and samples.rr_intervals_ms:
        counts = np.array([rr.size for rr in samples.rr_intervals_ms])
        rr_all = np.concatenate(samples.rr_intervals_ms)
        # time from the sample's stamp to each beat: a cumulative sum restarted at each sample
        total = np.cumsum(rr_all)
        before = np.concatenate([[0.0], total])[np.cumsum(counts) - counts]
        within = total - np.repeat(before, counts)
        ts.append(np.repeat(samples.ts_s, counts) * _US + (within * 1000).astype(np.int64))
        metric.append(np.full(rr_all.size, int(Metric.RR_INTERVAL), np.int16))
        value.append(rr_all)
    n = sum(t.size for t in ts)
    all_ts = np.concatenate(ts).astype(np.int64)
    return Readings(
        device_id=np.full(n, device_id, dtype=object),
        patient_id=np.full(n, patient_id, dtype=object),
        metric=np.concatenate(metric).astype(np.int16),
        ts_us=all_ts,
        value=np.concatenate(value).astype(np.float64),
        utc_offset_min=np.zeros(n, np.int16),
        received_us=all_ts,
    )


@dataclass(frozen=True, slots=True)
class Simulated:
    """A simulated patient's raw readings over a span, and the onset if they fall ill."""

    patient_id: str
    scenario: str
    readings: Readings
    start_s: int
    end_s: int
    onset_s: float | None


def simulate(
    scenario: str,
    *,
    patient_number: int,
    seed: int,
    days: int = 21,
    start: datetime = datetime(2026, 1, 5, 12, tzinfo=UTC),
    rr_intervals: bool = True,
) -> Simulated:
    """The readings one patient's device would send over ``days`` days from ``start``."""
    spec = SCENARIOS[scenario]
    rng = np.random.default_rng([seed, patient_number, 0xC0])
    start_s = int(start.timestamp())
    onset_s: float | None = None
    if spec.onset_hours is not None:
        onset_s = start_s + float(rng.uniform(*spec.onset_hours)) * 3600
    patient_seed = int(np.random.SeedSequence([seed, patient_number]).generate_state(1)[0])
    model = PatientModel(
        spec, patient_seed=patient_seed, noise_seed=seed, start_s=start_s, tz=UTC,
        onset_s=onset_s, rr_intervals=rr_intervals,
    )  # fmt: skip
    patient_id = f"sim-pt-{patient_number:04d}"
    readings = to_readings(
        model.samples(start_s, start_s + days * 86400),
        device_id=f"sim-dev-{patient_number:04d}",
        patient_id=patient_id,
    )
    end_s = start_s + days * 86400
    return Simulated(patient_id, scenario, readings, start_s, end_s, onset_s)


def reduce_days(sim: Simulated) -> Course:
    """Each whole day's features, as the live pipeline computes them (signals.daily)."""
    first = day_of(sim.start_s * _US, 0) + timedelta(days=1)  # the first whole day
    last = day_of(sim.end_s * _US, 0) - timedelta(days=1)
    out = []
    day = first
    while day <= last:
        out.append((day, daily_features(sim.readings, day_window(day, 0))))
        day += timedelta(days=1)
    onset = None if sim.onset_s is None else day_of(int(sim.onset_s * _US), 0)
    return Course(sim.patient_id, sim.scenario, onset, tuple(out))


def cohort(
    n_patients: int,
    *,
    seed: int,
    days: int = 21,
    ill_fraction: float = 0.5,
    ill_scenario: str = "home_infection",
) -> Iterator[Course]:
    """``n_patients`` courses, ``ill_fraction`` of them ``ill_scenario``, deterministic by seed."""
    if ill_scenario not in SCENARIOS or SCENARIOS[ill_scenario].onset_hours is None:
        raise ValueError(f"{ill_scenario!r} is not a scenario with an onset")
    n_ill = round(n_patients * ill_fraction)
    for i in range(n_patients):
        scenario = ill_scenario if i < n_ill else "home_stable"
        yield reduce_days(simulate(scenario, patient_number=i + 1, seed=seed, days=days))
