"""Activity, wear and sleep from a raw wrist accelerometer, minute by minute.

Patches and research-grade watches stream raw acceleration but report no steps, no wear flag and
no sleep. The risk score needs all three (signals.daily), so this module reduces a continuous
stretch of raw acceleration to one row per wall-clock minute:

* **activity**: mean ENMO in mg (van Hees et al. 2013, PLoS One 8(4):e61691) after the device's
  calibration (signals.activity), the quantity wrist intensity thresholds are defined on;
* **worn**: van Hees et al. 2013's non-wear rule as GGIR applies it: a 60-minute window (stepping
  by 15 minutes) is off the body when at least two axes have an SD below 13 mg, or at least two a
  range below 50 mg (a device on a table measures noise; a sleeping wrist changes posture);
* **inactive**: the minute lies in a *sustained inactivity bout*, van Hees et al. 2015 (PLoS One
  10(11):e0142533): no change in the arm's z-angle of more than 5° between successive 5-s epochs
  for at least 5 minutes. Inside the night's main sleep period these bouts are the sleep
  (``signals.daily`` applies ``signals.sleep.main_sleep_period`` to them, as the count-based
  scoring does); the angle, not the acceleration's magnitude, is used because it ignores how hard
  the wrist moves and sees only posture change, which is what distinguishes sleep from quiet wake.

Minutes are aligned to the clock, so repeated runs over overlapping data give the same minutes
and the same values (stored idempotently). A minute near either end of the stretch lacks the
context its rules need (a bout may continue, a non-wear window is centred); the caller keeps
only minutes at least :data:`CONTEXT_US` from both ends, unless the data really ends there.
Pure numpy, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from signals.activity import Calibration
from signals.vitals import F64, I64, Bools
from signals.waveforms import WaveformChunk, WaveformKind

__all__ = [
    "ANGLE_CHANGE_DEG",
    "CONTEXT_US",
    "EPOCH_S",
    "MIN_INACTIVE_MIN",
    "MotionMinutes",
    "merge_still_means",
    "motion_minutes",
    "z_angle_epochs",
]

MINUTE_US: Final = 60_000_000

#: Epoch of the arm angle (van Hees et al. 2015: 5 s).
EPOCH_S: Final = 5
#: Largest change of the z-angle between successive epochs still counted as "no movement"
#: (van Hees et al. 2015: 5°).
ANGLE_CHANGE_DEG: Final = 5.0
#: Shortest stretch without such a change that counts as a sustained inactivity bout (van Hees
#: et al. 2015: 5 min; the paper found 5° / 5 min the best of the combinations tried against PSG).
MIN_INACTIVE_MIN: Final = 5

#: Non-wear (van Hees et al. 2013, as in GGIR): 15-min blocks judged on the 60 min around them.
NONWEAR_BLOCK_MIN: Final = 15
NONWEAR_WINDOW_MIN: Final = 60
NONWEAR_SD_MAX_G: Final = 0.013
NONWEAR_RANGE_MAX_G: Final = 0.050

#: How much data on each side a minute needs before its labels are final: a whole non-wear window
#: (the longest context any rule uses: a window starting in the minute's quarter hour ends up to
#: 60 min after it, and one ending there began up to 60 min before).
CONTEXT_US: Final = NONWEAR_WINDOW_MIN * MINUTE_US

#: A minute counts only when this fraction of its samples is present.
MIN_MINUTE_COVERAGE: Final = 0.8

#: Still-window means kept for calibration are binned by orientation in cells this wide (g) and
#: only the newest per cell is kept: a night in one posture adds one mean, not three thousand,
#: and the fit sees every orientation the device has visited, weighted equally.
CALIBRATION_CELL_G: Final = 0.2


@dataclass(frozen=True, slots=True)
class MotionMinutes:
    """One row per whole wall-clock minute, stamped at the minute's end (UTC microseconds)."""

    end_us: I64
    enmo_mg: F64  # mean ENMO over the minute, after calibration if one was given
    worn: Bools
    inactive: Bools  # in a sustained inactivity bout (no z-angle change > 5° for ≥ 5 min)

    def __len__(self) -> int:
        return int(self.end_us.size)

    def take(self, keep: Bools) -> MotionMinutes:
        return MotionMinutes(self.end_us[keep], self.enmo_mg[keep], self.worn[keep],
                             self.inactive[keep])  # fmt: skip


def merge_still_means(kept: F64, new: F64) -> F64:
    """Still-window means to calibrate on: ``kept`` updated with ``new`` (both (n, 3), in g).

    One mean per orientation cell (:data:`CALIBRATION_CELL_G`), the newest, so the set stays
    small (a unit sphere holds a few hundred cells) and follows a sensor that drifts.
    """
    both = np.concatenate([np.asarray(kept, np.float64).reshape(-1, 3),
                           np.asarray(new, np.float64).reshape(-1, 3)])  # fmt: skip
    if both.shape[0] == 0:
        return both
    cells = np.floor(both / CALIBRATION_CELL_G).astype(np.int64)
    # np.unique keeps the first of each cell: search from the newest end.
    _, first = np.unique(cells[::-1], axis=0, return_index=True)
    newest = both.shape[0] - 1 - first
    return np.asarray(both[np.sort(newest)], dtype=np.float64)


def _grouped_mean(index: I64, values: F64, n: int) -> tuple[F64, I64]:
    counts = np.bincount(index, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.bincount(index, weights=values, minlength=n) / counts, counts


def z_angle_epochs(xyz_g: F64, times_us: I64, origin_us: int, n_epochs: int) -> tuple[F64, I64]:
    """Mean z-angle (degrees) of each 5-s epoch counted from ``origin_us``, and its sample count.

    The angle is atan(z / √(x² + y²)), the arm's elevation (van Hees et al. 2015); it is computed
    from the epoch's mean acceleration, a simplification of their 5-s rolling median that keeps
    the cost to one pass and any sampling rate.
    """
    epoch = (times_us - origin_us) // (EPOCH_S * 1_000_000)
    mean = np.empty((n_epochs, 3))
    counts = np.zeros(n_epochs, dtype=np.int64)
    for axis in range(3):
        mean[:, axis], counts = _grouped_mean(epoch, xyz_g[:, axis], n_epochs)
    angle = np.degrees(np.arctan2(mean[:, 2], np.hypot(mean[:, 0], mean[:, 1])))
    return angle, counts


def _runs(mask: Bools) -> tuple[I64, I64]:
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _sustained_inactivity(angle: F64, present: Bools) -> Bools:
    """Epochs inside a run of ≥ 5 min with no z-angle change above 5° (van Hees et al. 2015)."""
    quiet = np.zeros(angle.size, dtype=bool)
    # An epoch is quiet when its angle differs from the previous epoch's by at most 5°; a missing
    # epoch breaks the run (nothing is known about the arm then).
    step = np.abs(np.diff(angle))
    quiet[1:] = (step <= ANGLE_CHANGE_DEG) & present[1:] & present[:-1]
    quiet[0] = present[0]
    start, stop = _runs(quiet)
    min_epochs = MIN_INACTIVE_MIN * 60 // EPOCH_S
    out = np.zeros(angle.size, dtype=bool)
    long_enough = stop - start >= min_epochs
    for a, b in zip(start[long_enough], stop[long_enough], strict=True):
        out[max(a - 1, 0) : b] = True  # the bout begins at the epoch the first quiet step leaves
    return out


def _worn_blocks(xyz_g: F64, times_us: I64, origin_us: int, n_minutes: int) -> Bools:
    """Per minute: not inside a 60-min window that looks like a device at rest (van Hees 2013)."""
    block_us = NONWEAR_BLOCK_MIN * MINUTE_US
    # Blocks are aligned to the clock's quarter hours, so every run over the same data judges
    # the same blocks, wherever its segment starts.
    block_origin = origin_us - origin_us % block_us
    n_blocks = int((origin_us + n_minutes * MINUTE_US - 1 - block_origin) // block_us) + 1
    block = (times_us - block_origin) // block_us
    # Per block and axis: count, sum, sum of squares, min, max; windows combine neighbours.
    counts = np.bincount(block, minlength=n_blocks).astype(np.float64)
    sums = np.stack([np.bincount(block, xyz_g[:, a], n_blocks) for a in range(3)], axis=1)
    squares = np.stack([np.bincount(block, xyz_g[:, a] ** 2, n_blocks) for a in range(3)], axis=1)
    lo = np.full((n_blocks, 3), np.inf)
    hi = np.full((n_blocks, 3), -np.inf)
    for a in range(3):
        np.minimum.at(lo[:, a], block, xyz_g[:, a])
        np.maximum.at(hi[:, a], block, xyz_g[:, a])
    # GGIR's windows: 60 min long, stepping by 15 min; a window that looks like a device at rest
    # marks all four of its blocks non-wear, so a block is off the body if any window holding it
    # does (the edges of a removal are then found to the block, not to the window).
    per_window = NONWEAR_WINDOW_MIN // NONWEAR_BLOCK_MIN
    nonwear = np.zeros(n_blocks, dtype=bool)
    for b in range(max(n_blocks - per_window + 1, 1)):
        w = slice(b, min(b + per_window, n_blocks))
        n = counts[w].sum()
        if n < 2:
            continue
        mean = sums[w].sum(axis=0) / n
        sd = np.sqrt(np.maximum(squares[w].sum(axis=0) / n - mean**2, 0.0) * n / (n - 1))
        spread = hi[w].max(axis=0) - lo[w].min(axis=0)
        if (sd < NONWEAR_SD_MAX_G).sum() >= 2 or (spread < NONWEAR_RANGE_MAX_G).sum() >= 2:
            nonwear[w] = True
    minute_block = (origin_us + MINUTE_US * np.arange(n_minutes) - block_origin) // block_us
    return ~nonwear[minute_block]


def motion_minutes(segment: WaveformChunk, calibration: Calibration | None = None) -> MotionMinutes:
    """Activity, wear and sustained inactivity for each whole minute of a continuous segment.

    ``calibration`` corrects offset and scale first (van Hees et al. 2014); without one, ENMO
    carries the sensor's offset error (tens of mg on a cheap sensor), which the angle and the
    non-wear rule barely feel. Minutes with under 80 % of their samples are left out.
    """
    if segment.kind is not WaveformKind.ACCEL:
        raise ValueError(f"motion comes from the accelerometer, not {segment.kind.value}")
    xyz = np.asarray(segment.values, dtype=np.float64)
    if calibration is not None:
        xyz = calibration.apply(xyz)
    times = segment.times_us()
    origin = segment.start_us - segment.start_us % MINUTE_US  # the minute the segment starts in
    n_minutes = int((int(times[-1]) - origin) // MINUTE_US) + 1
    minute = (times - origin) // MINUTE_US

    norm = np.linalg.norm(xyz, axis=1)
    enmo, samples = _grouped_mean(minute, np.maximum(norm - 1.0, 0.0) * 1000.0, n_minutes)

    per_minute = 60 // EPOCH_S
    angle, epoch_samples = z_angle_epochs(xyz, times, origin, n_minutes * per_minute)
    inactive_epochs = _sustained_inactivity(angle, epoch_samples > 0)
    inactive = inactive_epochs.reshape(n_minutes, per_minute).mean(axis=1) >= 0.5

    worn = _worn_blocks(xyz, times, origin, n_minutes)

    ends = origin + MINUTE_US * np.arange(1, n_minutes + 1, dtype=np.int64)
    whole = samples >= MIN_MINUTE_COVERAGE * segment.fs_hz * 60
    return MotionMinutes(ends, enmo, worn, inactive).take(whole)
