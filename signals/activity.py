"""Turn wrist accelerometer, count and step data into activity and wear features.

Raw acceleration (g, triaxial) is calibrated with :func:`calibrate` (a simple version of van Hees
et al. 2014, J Appl Physiol 117(7):738–744), reduced to ENMO with :func:`enmo_mg`, averaged per
epoch with :func:`epoch_mean` and classified by intensity with :func:`minutes_by_intensity`
(wrist thresholds after Hildebrand et al. 2014). Devices that report counts or steps are summed
per epoch or per day with :func:`epoch_sum` and :func:`daily_totals`; non-wear comes from long
runs of zero counts (:func:`nonwear_from_counts`, after Choi et al. 2011) or from the device's own
``worn`` flag (:func:`nonwear_from_flag`). Fitbit-style daily summaries are handled by
:func:`dedupe_daily`, :func:`fitbit_nonwear_days` and :func:`total_active_minutes`.
See docs/activity-sleep.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "CHOI_MIN_NONWEAR_MIN",
    "CHOI_SPIKE_MAX_MIN",
    "CHOI_SPIKE_WINDOW_MIN",
    "LIGHT_MIN_MG",
    "MINUTES_PER_DAY",
    "MODERATE_MIN_MG",
    "STILL_SD_MAX_G",
    "STILL_WINDOW_S",
    "VIGOROUS_MIN_MG",
    "Calibration",
    "CalibrationError",
    "IntensityMinutes",
    "calibrate",
    "daily_totals",
    "dedupe_daily",
    "enmo_mg",
    "epoch_mean",
    "epoch_sum",
    "fit_calibration",
    "fitbit_nonwear_days",
    "minutes_by_intensity",
    "nonwear_from_counts",
    "nonwear_from_flag",
    "still_window_means",
    "total_active_minutes",
]

#: Length of the windows searched for still periods (van Hees et al. 2014, "10-second windows").
STILL_WINDOW_S: Final = 10.0

#: A window is still when the SD of every axis is below this (van Hees et al. 2014: 13 mg).
STILL_SD_MAX_G: Final = 0.013

#: The still windows must reach beyond ±this on every axis, both signs, before a calibration is
#: trusted (van Hees et al. 2014 / GGIR ``g.calibrate``: "sphere criterion" of 0.3 g).
SPHERE_CRITERION_G: Final = 0.3

#: ENMO at or above which a minute is light (GGIR default 40 mg, rounded from the wrist sedentary
#: cut-point of Hildebrand et al. 2017, Scand J Med Sci Sports 27(12):1814–1823, 44.8 mg).
LIGHT_MIN_MG: Final = 40.0

#: ENMO at or above which a minute is moderate (Hildebrand et al. 2014, Med Sci Sports Exerc
#: 46(9):1816–1824, non-dominant wrist, 93–101 mg by device, rounded to 100 mg as in GGIR).
MODERATE_MIN_MG: Final = 100.0

#: ENMO at or above which a minute is vigorous (Hildebrand et al. 2014, wrist, 418–429 mg by
#: device, rounded to 400 mg as in GGIR).
VIGOROUS_MIN_MG: Final = 400.0

#: Shortest run of zero-count minutes called non-wear (Choi et al. 2011, Med Sci Sports Exerc
#: 43(2):357–364: 90 min).
CHOI_MIN_NONWEAR_MIN: Final = 90

#: Longest run of non-zero minutes tolerated inside non-wear (Choi et al. 2011: 2 min).
CHOI_SPIKE_MAX_MIN: Final = 2

#: A tolerated spike needs this many zero minutes immediately before and after it
#: (Choi et al. 2011: 30 min up- and downstream).
CHOI_SPIKE_WINDOW_MIN: Final = 30

MINUTES_PER_DAY: Final = 1440


class CalibrationError(ValueError):
    """The still periods do not cover enough orientations to fit a calibration."""


@dataclass(frozen=True, slots=True)
class Calibration:
    """Per-axis correction ``corrected_g = offset_g + scale * raw_g`` (van Hees et al. 2014)."""

    offset_g: tuple[float, float, float]
    scale: tuple[float, float, float]
    n_still_windows: int
    #: Mean |‖still window mean‖ − 1 g| before and after correction, in g.
    error_before_g: float
    error_after_g: float

    def apply(self, xyz_g: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Correct an (n, 3) array of acceleration in g."""
        xyz = _xyz(xyz_g)
        return np.asarray(self.offset_g) + np.asarray(self.scale) * xyz


@dataclass(frozen=True, slots=True)
class IntensityMinutes:
    """Epochs (minutes when epochs are 1 min) in each ENMO intensity band."""

    sedentary: int
    light: int
    moderate: int
    vigorous: int


def _xyz(xyz_g: npt.ArrayLike) -> npt.NDArray[np.float64]:
    xyz = np.asarray(xyz_g, dtype=np.float64)
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise ValueError(f"expected an (n, 3) array of acceleration in g, got shape {xyz.shape}")
    return xyz


def still_window_means(
    xyz_g: npt.ArrayLike,
    fs_hz: float,
    *,
    window_s: float = STILL_WINDOW_S,
    still_sd_max_g: float = STILL_SD_MAX_G,
) -> npt.NDArray[np.float64]:
    """Mean (x, y, z) of each ``window_s`` window with an SD below ``still_sd_max_g`` on all axes.

    Still windows measure gravity alone, so their norms should be exactly 1 g: they are what a
    calibration is fitted to. Kept separate from :func:`fit_calibration` so a running system can
    collect them over days (a wrist visits enough orientations over a day, rarely in an hour).
    """
    xyz = _xyz(xyz_g)
    per_window = round(window_s * fs_hz)
    if per_window < 2:
        raise ValueError(f"window of {window_s} s at {fs_hz} Hz has fewer than 2 samples")
    n_windows = xyz.shape[0] // per_window
    windows = xyz[: n_windows * per_window].reshape(n_windows, per_window, 3)
    still = np.all(windows.std(axis=1) < still_sd_max_g, axis=1)
    return np.asarray(windows[still].mean(axis=1), dtype=np.float64)


def calibrate(
    xyz_g: npt.ArrayLike,
    fs_hz: float,
    *,
    window_s: float = STILL_WINDOW_S,
    still_sd_max_g: float = STILL_SD_MAX_G,
    max_iterations: int = 1000,
    tolerance_g: float = 1e-9,
) -> Calibration:
    """Fit per-axis offset and scale so that still periods measure exactly 1 g.

    Simple version of van Hees et al. 2014 (J Appl Physiol 117(7):738–744): split the signal into
    non-overlapping ``window_s`` windows, keep those whose SD is below ``still_sd_max_g`` on all
    three axes, and take each window's mean (:func:`still_window_means`); then
    :func:`fit_calibration`. Unlike GGIR we do not use temperature and do not weight windows.

    Raises :class:`CalibrationError` unless the still windows reach beyond ±0.3 g on every axis
    (several orientations are needed: in one orientation offset and scale are not identifiable).
    """
    means = still_window_means(xyz_g, fs_hz, window_s=window_s, still_sd_max_g=still_sd_max_g)
    return fit_calibration(means, max_iterations=max_iterations, tolerance_g=tolerance_g)


def fit_calibration(
    still_means_g: npt.ArrayLike, *, max_iterations: int = 1000, tolerance_g: float = 1e-9
) -> Calibration:
    """Fit offset and scale to still-window means (van Hees et al. 2014, iterated least squares).

    Iterate: correct the means, project them onto the unit sphere, and refit offset and scale per
    axis by least squares of the projected value on the raw mean. Raises
    :class:`CalibrationError` unless the means reach beyond ±0.3 g on every axis, both signs.
    """
    means = np.asarray(still_means_g, dtype=np.float64).reshape(-1, 3)
    if means.shape[0] < 3 or not (
        np.all(means.max(axis=0) > SPHERE_CRITERION_G)
        and np.all(means.min(axis=0) < -SPHERE_CRITERION_G)
    ):
        raise CalibrationError(
            f"{means.shape[0]} still windows do not reach ±{SPHERE_CRITERION_G} g on every axis"
        )
    offset = np.zeros(3)
    scale = np.ones(3)
    for _ in range(max_iterations):
        corrected = offset + scale * means
        target = corrected / np.linalg.norm(corrected, axis=1, keepdims=True)
        new_offset = np.empty(3)
        new_scale = np.empty(3)
        for axis in range(3):
            design = np.column_stack([np.ones(means.shape[0]), means[:, axis]])
            (a, b), *_ = np.linalg.lstsq(design, target[:, axis], rcond=None)
            new_offset[axis], new_scale[axis] = a, b
        change = float(np.max(np.abs(new_offset - offset)) + np.max(np.abs(new_scale - scale)))
        offset, scale = new_offset, new_scale
        if change < tolerance_g:
            break
    before = float(np.mean(np.abs(np.linalg.norm(means, axis=1) - 1.0)))
    after = float(np.mean(np.abs(np.linalg.norm(offset + scale * means, axis=1) - 1.0)))
    return Calibration(
        offset_g=(float(offset[0]), float(offset[1]), float(offset[2])),
        scale=(float(scale[0]), float(scale[1]), float(scale[2])),
        n_still_windows=int(means.shape[0]),
        error_before_g=before,
        error_after_g=after,
    )


def enmo_mg(xyz_g: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Euclidean norm minus one, negatives set to zero, in mg: max(‖xyz‖ − 1 g, 0) · 1000.

    Calibrate first (:func:`calibrate`): an offset error of a few tens of mg shows up directly as
    ENMO when the device is still (van Hees et al. 2013, PLoS One 8(4):e61691).
    """
    xyz = _xyz(xyz_g)
    norm = np.asarray(np.linalg.norm(xyz, axis=1), dtype=np.float64)
    return np.maximum(norm - 1.0, 0.0) * 1000.0


def _epochs(values: npt.ArrayLike, samples_per_epoch: int) -> npt.NDArray[np.float64]:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f"expected a one-dimensional series, got shape {v.shape}")
    if samples_per_epoch < 1:
        raise ValueError(f"samples_per_epoch must be ≥ 1, got {samples_per_epoch}")
    n = v.size // samples_per_epoch
    return v[: n * samples_per_epoch].reshape(n, samples_per_epoch)


def epoch_mean(values: npt.ArrayLike, samples_per_epoch: int) -> npt.NDArray[np.float64]:
    """Mean of each complete epoch of ``samples_per_epoch`` samples; drop an incomplete tail."""
    return np.asarray(_epochs(values, samples_per_epoch).mean(axis=1), dtype=np.float64)


def epoch_sum(values: npt.ArrayLike, samples_per_epoch: int) -> npt.NDArray[np.float64]:
    """Sum of each complete epoch (counts per minute from per-sample counts, steps per epoch)."""
    return np.asarray(_epochs(values, samples_per_epoch).sum(axis=1), dtype=np.float64)


def minutes_by_intensity(enmo_epoch_mg: npt.ArrayLike) -> IntensityMinutes:
    """Count epochs of mean ENMO per band: sedentary < 40 ≤ light < 100 ≤ moderate < 400 mg.

    Thresholds: :data:`LIGHT_MIN_MG`, :data:`MODERATE_MIN_MG`, :data:`VIGOROUS_MIN_MG`. They hold
    for 1-minute (or shorter, e.g. 5-s) epochs of a wrist device; NaN epochs are not counted.
    """
    e = np.asarray(enmo_epoch_mg, dtype=np.float64)
    e = e[~np.isnan(e)]
    band = np.digitize(e, [LIGHT_MIN_MG, MODERATE_MIN_MG, VIGOROUS_MIN_MG])
    counts = np.bincount(band, minlength=4)
    return IntensityMinutes(
        sedentary=int(counts[0]),
        light=int(counts[1]),
        moderate=int(counts[2]),
        vigorous=int(counts[3]),
    )


def daily_totals(
    time_s: npt.ArrayLike, values: npt.ArrayLike, *, day_start_s: float = 0.0
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Sum ``values`` per day (e.g. steps per day from per-sample step counts).

    ``time_s`` is each sample's time in seconds (POSIX seconds, already shifted to local time if
    days should follow the patient's clock); a day starts at ``day_start_s`` + k · 86 400.
    Returns the day numbers k present and their totals, in increasing k.
    """
    t = np.asarray(time_s, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if t.shape != v.shape or t.ndim != 1:
        raise ValueError(f"time and values must be 1-D and equal in shape: {t.shape}, {v.shape}")
    day = np.floor((t - day_start_s) / 86400.0).astype(np.int64)
    days, inverse = np.unique(day, return_inverse=True)
    totals = np.bincount(inverse, weights=v, minlength=days.size)
    return days.astype(np.int64), np.asarray(totals, dtype=np.float64)


def _runs(mask: npt.NDArray[np.bool_]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Start and stop (exclusive) indices of the runs of True in ``mask``."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def nonwear_from_counts(
    counts_per_min: npt.ArrayLike,
    *,
    min_nonwear_min: int = CHOI_MIN_NONWEAR_MIN,
    spike_max_min: int = CHOI_SPIKE_MAX_MIN,
    spike_window_min: int = CHOI_SPIKE_WINDOW_MIN,
) -> npt.NDArray[np.bool_]:
    """Mark non-wear minutes: runs of zero counts of at least ``min_nonwear_min`` minutes.

    After Choi et al. 2011 (Med Sci Sports Exerc 43(2):357–364): a run of at most
    ``spike_max_min`` non-zero minutes counts as zero when it has at least ``spike_window_min``
    zero minutes immediately before and after it (a knock to a device on the table). Every
    returned non-wear run is at least ``min_nonwear_min`` long and starts and ends on zero counts.
    Expects 1-minute epochs; NaN (missing) counts as non-zero.
    """
    c = np.asarray(counts_per_min, dtype=np.float64)
    if c.ndim != 1:
        raise ValueError(f"expected a one-dimensional series of counts, got shape {c.shape}")
    zero = c == 0
    z_start, z_stop = _runs(zero)
    nz_start, nz_stop = _runs(~zero)
    zero_len_ending_at = np.zeros(c.size + 1, dtype=np.intp)
    zero_len_ending_at[z_stop] = z_stop - z_start
    zero_len_starting_at = np.zeros(c.size + 1, dtype=np.intp)
    zero_len_starting_at[z_start] = z_stop - z_start
    tolerated = (
        (nz_stop - nz_start <= spike_max_min)
        & (zero_len_ending_at[nz_start] >= spike_window_min)
        & (zero_len_starting_at[nz_stop] >= spike_window_min)
    )
    filled = zero.copy()
    if np.any(tolerated):
        # Mark the tolerated spikes with a difference array so no Python loop runs per spike.
        delta = np.zeros(c.size + 1, dtype=np.intp)
        np.add.at(delta, nz_start[tolerated], 1)
        np.add.at(delta, nz_stop[tolerated], -1)
        filled |= np.cumsum(delta[:-1]) > 0
    return _keep_long_runs(filled, min_nonwear_min)


def _keep_long_runs(mask: npt.NDArray[np.bool_], min_len: int) -> npt.NDArray[np.bool_]:
    start, stop = _runs(mask)
    long = stop - start >= min_len
    delta = np.zeros(mask.size + 1, dtype=np.intp)
    np.add.at(delta, start[long], 1)
    np.add.at(delta, stop[long], -1)
    return np.asarray(np.cumsum(delta[:-1]) > 0)


def nonwear_from_flag(worn: npt.ArrayLike, *, min_nonwear_epochs: int = 1) -> npt.NDArray[np.bool_]:
    """Mark non-wear from the device's own ``worn`` flag, ignoring off-wrist runs shorter than
    ``min_nonwear_epochs`` (a brief loss of skin contact is not taking the device off)."""
    w = np.asarray(worn)
    if w.dtype != np.bool_ or w.ndim != 1:
        raise ValueError(f"worn must be a 1-D boolean array, got {w.dtype} {w.shape}")
    return _keep_long_runs(~w, min_nonwear_epochs)


def dedupe_daily(participant_ids: npt.ArrayLike, days: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Return a mask keeping the first row of each (participant, day); later repeats are dropped.

    Fitbit exports repeat some daily rows verbatim (sleepDay_merged.csv has 3 such rows), which
    would double a night's sleep if summed. Rows are compared by key only: check the values if a
    repeat might differ.
    """
    ids = np.asarray(participant_ids)
    d = np.asarray(days)
    if ids.shape != d.shape or ids.ndim != 1:
        raise ValueError(f"ids and days must be 1-D and equal in shape: {ids.shape}, {d.shape}")
    keep = np.zeros(ids.size, dtype=bool)
    if ids.size == 0:
        return keep
    _, id_code = np.unique(ids, return_inverse=True)
    _, day_code = np.unique(d, return_inverse=True)
    key = id_code.astype(np.int64) * (int(day_code.max()) + 1) + day_code
    _, first = np.unique(key, return_index=True)
    keep[first] = True
    return keep


def fitbit_nonwear_days(
    total_steps: npt.ArrayLike, sedentary_minutes: npt.ArrayLike
) -> npt.NDArray[np.bool_]:
    """Mark days the tracker was not worn: 0 steps, or all 1,440 minutes sedentary.

    A Fitbit left off the wrist records no steps and files every minute as sedentary, so either
    pattern means no data, not an inactive patient (Furberg et al. data set notes).
    """
    steps = np.asarray(total_steps, dtype=np.float64)
    sedentary = np.asarray(sedentary_minutes, dtype=np.float64)
    return np.asarray((steps == 0) | (sedentary >= MINUTES_PER_DAY))


def total_active_minutes(
    very_active: npt.ArrayLike, fairly_active: npt.ArrayLike, lightly_active: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Total active minutes as Fitbit defines them: very + fairly + lightly active minutes."""
    return (
        np.asarray(very_active, dtype=np.float64)
        + np.asarray(fairly_active, dtype=np.float64)
        + np.asarray(lightly_active, dtype=np.float64)
    )
