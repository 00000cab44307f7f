"""Score sleep and wake from 1-minute activity counts and summarise each night.

Counts are scored with :func:`score_oakley` (Oakley 1997, the Actiwatch/Actiware algorithm) or
:func:`score_cole_kripke` (Cole et al. 1992). Both were fitted to one device's count type and do
not transfer between devices without rescaling (docs/activity-sleep.md): Oakley to Actiwatch
counts, Cole–Kripke to the AMA-32 (Ambulatory Monitoring) counts. :func:`main_sleep_period` finds
the longest block of sleep in each noon-to-noon window, allowing short wake bouts (a simple
version of the sleep-period-time window of van Hees et al. 2018 / Crespo et al. 2012), and
:func:`summarise_night` gives duration, time in bed and efficiency; :func:`nightly_summaries` does
both for every noon-to-noon window of a recording, skipping windows that are mostly non-wear.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "COLE_KRIPKE_SCALE",
    "COLE_KRIPKE_WEIGHTS_60S",
    "MAX_NONWEAR_FRACTION",
    "MAX_WAKE_BOUT_MIN",
    "MIN_SLEEP_PERIOD_MIN",
    "OAKLEY_THRESHOLD_MEDIUM",
    "OAKLEY_WEIGHTS_60S",
    "NightSummary",
    "main_sleep_period",
    "nightly_summaries",
    "noon_windows",
    "score_cole_kripke",
    "score_oakley",
    "summarise_night",
]

#: Weights of epochs t−2 … t+2 for 1-minute epochs in the Actiware sleep algorithm (Oakley N.
#: Validation with polysomnography of the Sleepwatch sleep/wake scoring algorithm used by the
#: Actiwatch activity monitoring system. Mini Mitter, 1997; Actiware manual: 1/25, 1/5, 1, 1/5,
#: 1/25).
OAKLEY_WEIGHTS_60S: Final = (0.04, 0.2, 1.0, 0.2, 0.04)

#: Weighted count at or below which an epoch is sleep: Actiware "medium" wake threshold (40
#: counts; low 20, high 80). Scaled to Actiwatch counts.
OAKLEY_THRESHOLD_MEDIUM: Final = 40.0

#: Cole et al. 1992 (Sleep 15(5):461–469), 1-minute epochs, weights of t−4 … t+2; sleep when
#: 0.001 · Σ wᵢ Aᵢ < 1.
COLE_KRIPKE_WEIGHTS_60S: Final = (106.0, 54.0, 58.0, 76.0, 230.0, 74.0, 67.0)

#: Cole–Kripke expects AMA-32 counts; devices with larger counts are divided by this first
#: (e.g. 100 for ActiGraph counts as in the ActiLife implementation). 1 = no rescaling.
COLE_KRIPKE_SCALE: Final = 1.0

#: Wake bouts up to this long do not split a sleep period. van Hees et al. 2018 (Sci Rep 8:12975)
#: join rest bouts less than 60 min apart, but their bouts come from arm-angle changes, which are
#: far more selective than count-based sleep: with Oakley scoring a 60-min (even 20-min) gap
#: joins quiet evenings to the night. 10 min was chosen on the one diary recording we have
#: (docs/activity-sleep.md), so treat it as provisional.
MAX_WAKE_BOUT_MIN: Final = 10

#: A noon-to-noon window with more non-wear than this fraction gets no night: the few worn hours
#: (often an afternoon) would otherwise be taken for the night's sleep.
MAX_NONWEAR_FRACTION: Final = 0.5

#: A sleep period shorter than this is not a night's main sleep (van Hees et al. 2018: 30 min).
MIN_SLEEP_PERIOD_MIN: Final = 30


def _counts(counts: npt.ArrayLike) -> npt.NDArray[np.float64]:
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 1:
        raise ValueError(f"expected a one-dimensional series of counts, got shape {c.shape}")
    return c


def _weighted(
    c: npt.NDArray[np.float64], weights: tuple[float, ...], before: int
) -> npt.NDArray[np.float64]:
    """Σ wᵢ · c[t − before + i], epochs beyond either end counting as zero."""
    after = len(weights) - 1 - before
    padded = np.concatenate([np.zeros(before), np.nan_to_num(c), np.zeros(after)])
    # np.correlate keeps the weights in reading order (no flip), so w[0] multiplies c[t − before].
    return np.correlate(padded, np.asarray(weights), mode="valid")


def score_oakley(
    counts_per_min: npt.ArrayLike, *, threshold: float = OAKLEY_THRESHOLD_MEDIUM
) -> npt.NDArray[np.bool_]:
    """Return True for sleep: the Actiware weighted count of 1-minute epochs ≤ ``threshold``.

    >>> score_oakley([0, 0, 500, 0, 0, 0, 0]).tolist()
    [True, False, False, False, True, True, True]
    """
    c = _counts(counts_per_min)
    return np.asarray(_weighted(c, OAKLEY_WEIGHTS_60S, 2) <= threshold)


def score_cole_kripke(
    counts_per_min: npt.ArrayLike, *, scale: float = COLE_KRIPKE_SCALE
) -> npt.NDArray[np.bool_]:
    """Return True for sleep by Cole–Kripke (1992) on 1-minute counts divided by ``scale``."""
    c = _counts(counts_per_min) / scale
    return np.asarray(0.001 * _weighted(c, COLE_KRIPKE_WEIGHTS_60S, 4) < 1.0)


def _runs(mask: npt.NDArray[np.bool_]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def noon_windows(
    n_epochs: int, first_noon: int, epochs_per_day: int = 1440
) -> list[tuple[int, int]]:
    """Split ``n_epochs`` into noon-to-noon windows (start, stop) given the first noon's index.

    The partial windows before the first noon and after the last are included when non-empty.
    """
    edges = list(range(first_noon % epochs_per_day, n_epochs, epochs_per_day))
    bounds = [0, *[e for e in edges if e > 0], n_epochs]
    return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def main_sleep_period(
    sleep: npt.ArrayLike,
    *,
    max_wake_bout: int = MAX_WAKE_BOUT_MIN,
    min_period: int = MIN_SLEEP_PERIOD_MIN,
) -> tuple[int, int] | None:
    """Find the longest block of sleep, merging sleep bouts separated by ≤ ``max_wake_bout`` wake.

    Pass one night's window (e.g. from :func:`noon_windows`) with non-wear already set to False:
    count-based scoring calls a device lying on a table asleep. Returns (onset, offset) indices,
    offset exclusive, starting and ending on sleep, or None when no block reaches ``min_period``.
    """
    s = np.asarray(sleep)
    if s.dtype != np.bool_ or s.ndim != 1:
        raise ValueError(f"sleep must be a 1-D boolean array, got {s.dtype} {s.shape}")
    start, stop = _runs(s)
    if start.size == 0:
        return None
    # A wake gap between consecutive sleep bouts that is short enough joins them.
    split = (start[1:] - stop[:-1]) > max_wake_bout
    block = np.concatenate([[0], np.cumsum(split)])
    n_blocks = int(block[-1]) + 1
    block_start = np.full(n_blocks, s.size, dtype=np.intp)
    np.minimum.at(block_start, block, start)
    block_stop = np.zeros(n_blocks, dtype=np.intp)
    np.maximum.at(block_stop, block, stop)
    length = block_stop - block_start
    best = int(np.argmax(length))
    if length[best] < min_period:
        return None
    return int(block_start[best]), int(block_stop[best])


@dataclass(frozen=True, slots=True)
class NightSummary:
    """One night's sleep; indices are epochs of the series passed in, ``*_min`` assume 1-min epochs.

    - ``time_in_bed_min``: the bed window given, else the main sleep period (actigraphy alone does
      not see lying down, so the period from first to last sleep stands in for it).
    - ``sleep_min``: sleep epochs inside that window.
    - ``efficiency_pct``: 100 · sleep / time in bed.
    - ``wake_after_onset_min``: wake epochs between onset and offset of the main sleep period.
    """

    onset: int
    offset: int
    time_in_bed_min: int
    sleep_min: int
    wake_after_onset_min: int
    efficiency_pct: float


def summarise_night(
    sleep: npt.ArrayLike,
    period: tuple[int, int],
    *,
    in_bed: tuple[int, int] | None = None,
) -> NightSummary:
    """Summarise the main sleep ``period`` (from :func:`main_sleep_period`) of a sleep series."""
    s = np.asarray(sleep, dtype=bool)
    onset, offset = period
    if not 0 <= onset < offset <= s.size:
        raise ValueError(f"period {period} is not inside a series of {s.size} epochs")
    bed_start, bed_stop = in_bed if in_bed is not None else period
    if not 0 <= bed_start < bed_stop <= s.size:
        raise ValueError(f"bed window {in_bed} is not inside a series of {s.size} epochs")
    tib = bed_stop - bed_start
    asleep = int(np.count_nonzero(s[bed_start:bed_stop]))
    waso = int(np.count_nonzero(~s[onset:offset]))
    return NightSummary(
        onset=onset,
        offset=offset,
        time_in_bed_min=tib,
        sleep_min=asleep,
        wake_after_onset_min=waso,
        efficiency_pct=100.0 * asleep / tib,
    )


def nightly_summaries(
    sleep: npt.ArrayLike,
    nonwear: npt.ArrayLike,
    first_noon: int,
    *,
    max_nonwear_fraction: float = MAX_NONWEAR_FRACTION,
    epochs_per_day: int = 1440,
) -> list[tuple[tuple[int, int], NightSummary | None]]:
    """Summarise the main sleep period of every noon-to-noon window of a 1-minute recording.

    Non-wear epochs are set to wake first. Returns each window (start, stop) with its
    :class:`NightSummary` in recording indices, or None when more than ``max_nonwear_fraction``
    of the window is non-wear or no sleep period reaches :data:`MIN_SLEEP_PERIOD_MIN`.
    """
    s = np.asarray(sleep)
    off = np.asarray(nonwear)
    if s.dtype != np.bool_ or off.dtype != np.bool_ or s.shape != off.shape or s.ndim != 1:
        raise ValueError(
            f"sleep and nonwear must be equal 1-D boolean arrays: {s.shape}, {off.shape}"
        )
    worn_sleep = s & ~off
    out: list[tuple[tuple[int, int], NightSummary | None]] = []
    for start, stop in noon_windows(s.size, first_noon, epochs_per_day):
        period = None
        if np.count_nonzero(off[start:stop]) <= max_nonwear_fraction * (stop - start):
            period = main_sleep_period(worn_sleep[start:stop])
        if period is None:
            out.append(((start, stop), None))
            continue
        night = summarise_night(worn_sleep[start:stop], period)
        shifted = NightSummary(
            onset=start + night.onset,
            offset=start + night.offset,
            time_in_bed_min=night.time_in_bed_min,
            sleep_min=night.sleep_min,
            wake_after_onset_min=night.wake_after_onset_min,
            efficiency_pct=night.efficiency_pct,
        )
        out.append(((start, stop), shifted))
    return out
