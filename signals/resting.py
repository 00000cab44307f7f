"""Nightly resting heart rate: the feature with the best evidence for early warning of infection.

Wearables report heart rate all day; what carries signal is the heart rate at rest, when exercise,
posture and caffeine are out of the way. Following Mishra et al. (Nat Biomed Eng 2020) and Alavi
et al. (Nat Med 2022), resting heart rate is the heart rate while asleep or, where sleep is not
known, after a stretch without steps; per night it is summarised robustly, as the median of those
minutes, so a single artefact does not move it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

MIN_US = 60_000_000


@dataclass(frozen=True, slots=True)
class RestingHeartRate:
    bpm: float  # NaN when the night had too few resting minutes
    minutes: int  # resting minutes the value is based on


def resting_minutes(
    hr_ts_us: npt.NDArray[np.int64],
    steps_ts_us: npt.NDArray[np.int64],
    steps: npt.NDArray[np.float64],
    *,
    still_for_min: int = 10,
) -> npt.NDArray[np.bool_]:
    """Which heart-rate samples follow at least ``still_for_min`` minutes without a step.

    A minute with no step report at all counts as still: wearables report steps only when there
    are some. Vectorised: the last step before each sample is found with one searchsorted.
    """
    moving = steps_ts_us[steps > 0]
    if moving.size == 0:
        return np.ones(hr_ts_us.size, dtype=bool)
    moving = np.sort(moving)
    last = np.searchsorted(moving, hr_ts_us, side="right") - 1
    since_us = np.where(last >= 0, hr_ts_us - moving[np.maximum(last, 0)], np.iinfo(np.int64).max)
    return since_us >= still_for_min * MIN_US


def nightly_resting_hr(
    hr_ts_us: npt.NDArray[np.int64],
    hr_bpm: npt.NDArray[np.float64],
    resting: npt.NDArray[np.bool_],
    *,
    night_start_us: int,
    night_end_us: int,
    min_minutes: int = 60,
) -> RestingHeartRate:
    """Median heart rate over the resting samples within one night ``[start, end)``.

    ``resting`` is a mask over the samples: asleep (signals.sleep) or still (``resting_minutes``).
    Fewer than ``min_minutes`` resting samples (one a minute) give NaN, not a guess.
    """
    inside = (hr_ts_us >= night_start_us) & (hr_ts_us < night_end_us) & resting
    inside &= np.isfinite(hr_bpm)
    n = int(inside.sum())
    if n < min_minutes:
        return RestingHeartRate(float("nan"), n)
    return RestingHeartRate(float(np.median(hr_bpm[inside])), n)
