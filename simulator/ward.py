"""A simulated virtual ward: who the patients are, their devices, and what happens to each."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from simulator.physiology import SCENARIOS


@dataclass(frozen=True, slots=True)
class SimPatient:
    """One simulated patient wearing one device.

    ``onset`` is measured from the start of the simulated timeline (see ``simulator.timeline``);
    None for a scenario in which nothing happens. ``seed`` fixes the patient's own physiology
    (baselines, habits, targets); the run's seed fixes the noise.
    """

    device_id: str
    patient_id: str
    ward: str
    scenario: str
    onset: timedelta | None
    seed: int


def mix(n_patients: int) -> dict[str, int]:
    """How many patients get each scenario on a mixed ward: a few deteriorate, most are stable.

    Per 24 patients: 3 deteriorating, 1 hypoxic, 1 device_off, 19 stable; scaled to ``n`` with
    halves rounded up, and any ward of two or more has at least one deteriorating patient.

    >>> mix(24)
    {'deteriorating': 3, 'hypoxic': 1, 'device_off': 1, 'stable': 19}
    >>> mix(3)
    {'deteriorating': 1, 'hypoxic': 0, 'device_off': 0, 'stable': 2}
    """

    def share(per_24: int) -> int:
        return math.floor(n_patients * per_24 / 24 + 0.5)

    counts = {
        "deteriorating": max(share(3), 1 if n_patients >= 2 else 0),
        "hypoxic": share(1),
        "device_off": share(1),
    }
    counts["stable"] = n_patients - sum(counts.values())
    return counts


def make_ward(
    n_patients: int,
    *,
    seed: int,
    scenario: str | None = None,
    ward: str = "ward-a",
    first_number: int = 1,
) -> list[SimPatient]:
    """Make ``n_patients`` patients numbered from ``first_number``; deterministic by ``seed``.

    With ``scenario`` None the ward is a :func:`mix`, the scenarios shuffled among the patients by
    the seed; otherwise every patient follows the named scenario. Onsets are drawn from each
    scenario's ``onset_hours`` and rounded to the minute. Use distinct ``first_number`` ranges for
    several wards so that device ids do not collide.
    """
    if n_patients < 0:
        raise ValueError(f"n_patients must not be negative, got {n_patients}")
    if scenario is not None and scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    rng = np.random.default_rng([seed, 0x3A4D])
    if scenario is None:
        names = [name for name, count in mix(n_patients).items() for _ in range(count)]
        names = [names[i] for i in rng.permutation(n_patients)]
    else:
        names = [scenario] * n_patients
    patients = []
    for i, name in enumerate(names):
        number = first_number + i
        hours = SCENARIOS[name].onset_hours
        onset = None
        if hours is not None:
            onset = timedelta(minutes=round(float(rng.uniform(*hours)) * 60))
        patient_seed = int(np.random.SeedSequence([seed, number]).generate_state(1)[0])
        patients.append(
            SimPatient(
                device_id=f"sim-dev-{number:04d}",
                patient_id=f"sim-pt-{number:04d}",
                ward=ward,
                scenario=name,
                onset=onset,
                seed=patient_seed,
            )
        )
    return patients
