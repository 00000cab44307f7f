"""Pulse peaks in a photoplethysmogram (PPG), and the heart rate and intervals they give.

The detector is Elgendi et al.'s two-event-related-moving-averages method (Elgendi M, Norton I,
Brearley M, Abbott D, Dumont G. "Systolic peak detection in acceleration photoplethysmograms
measured from emergency responders in tropical conditions", PLoS ONE 2013;8(10):e76585): band-pass
0.5–8 Hz, square the positive part,
compare a short (one systolic peak) and a long (one beat) moving average, and take the maximum of
each block where the short one exceeds the long one plus an offset (from the local, not the
whole signal's, mean: see ``_OFFSET_S``). Pure: numpy and scipy only.
"""

from __future__ import annotations

import functools
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import signal

from signals.vitals import F64, I64

__all__ = [
    "MAX_FS_HZ",
    "MIN_FS_HZ",
    "bandpass_ppg",
    "heart_rate_bpm",
    "ppg_pulse_peaks",
    "pulse_peaks_filtered",
    "refine_peaks",
    "rr_intervals_ms",
]


#: Sampling rates the detector is specified for: wearables send 25–100 Hz, bedside monitors up to
#: 500 Hz. At 20 Hz the 8 Hz band edge is already 0.8 of the Nyquist frequency and a sample is
#: 50 ms; tested down to there (tests/unit/test_ppg_resp.py).
MIN_FS_HZ: Final = 20.0
MAX_FS_HZ: Final = 500.0

#: Pass band of the zero-phase Butterworth filter, Hz (Elgendi 2013: 0.5–8 Hz, order 2).
_BAND_HZ: Final = (0.5, 8.0)
_ORDER: Final = 2
#: Window of the peak moving average, one systolic wave (Elgendi 2013: W1 = 111 ms).
_W_PEAK_S: Final = 0.111
#: Window of the beat moving average, about one beat (Elgendi 2013: W2 = 667 ms).
_W_BEAT_S: Final = 0.667
#: Offset of the threshold as a fraction of the mean squared signal (Elgendi 2013: β = 0.02).
_BETA: Final = 0.02
#: Span of the mean the offset is taken from, s. Elgendi 2013 took the mean of the whole (20-s)
#: record; over a long stretch a fall in pulse amplitude (the watch loosening, cold hands) then
#: leaves the weaker pulses under an offset set by the stronger ones: the 5-minute test
#: recording at a tenth of its amplitude from midway lost 25 of its 432 pulses. A local mean
#: finds them all and changes no pulse of the recording as it is (tests/unit/test_ppg_resp.py).
_OFFSET_S: Final = 10.0
#: Shortest time between two pulses: 300 ms, i.e. at most 200 beats/min (Elgendi 2013 uses
#: W1-wide blocks; a refractory period also stops a diastolic wave counting as a second beat).
_REFRACTORY_S: Final = 0.3
#: Plausible inter-beat intervals for the heart rate: 30–220 beats/min.
_MIN_IBI_S: Final = 60.0 / 220.0
_MAX_IBI_S: Final = 60.0 / 30.0
#: Largest departure from the median interval kept for the heart rate (a looser form of the 20 %
#: rule against the previous interval, Malik M, Farrell T, Cripps T, Camm AJ. Eur Heart J
#: 1989;10(12):1060–74).
_MAX_IBI_DEVIATION: Final = 0.3


def ppg_pulse_peaks(ppg: npt.ArrayLike, fs: float) -> I64:
    """Return the sample indices (sorted, int64) of the systolic peaks of a PPG sampled at ``fs``.

    Each index is the maximum of the band-passed pulse wave in its beat; the filter is zero-phase,
    and on the test recording the raw signal's own maximum lies 10 ms before to 30 ms after it
    (median 0). Refining on the raw signal would follow its noise at no gain. A signal too
    short to filter (under two seconds), flat, or containing non-finite values gives an empty
    array; ``fs`` outside 20–500 Hz raises ``ValueError``.
    """
    return pulse_peaks_filtered(bandpass_ppg(ppg, fs), fs)


def pulse_peaks_filtered(filtered: F64, fs: float) -> I64:
    """``ppg_pulse_peaks`` of a PPG already band-passed by ``bandpass_ppg`` (same ``fs``).

    Callers that need the filtered wave as well (the quality gate's template, the breathing
    modulations, peak refinement) filter once instead of twice: the zero-phase filter is the
    largest cost of a live PPG tick (bench.derive).
    """
    if filtered.size == 0:
        return np.empty(0, dtype=np.int64)
    squared = np.square(np.clip(filtered, 0.0, None))
    ma_peak = _moving_average(squared, _odd_width(_W_PEAK_S, fs))
    ma_beat = _moving_average(squared, _odd_width(_W_BEAT_S, fs))
    span = _odd_width(_OFFSET_S, fs)
    local = _running_mean(squared, span) if squared.size > span else float(np.mean(squared))
    threshold = ma_beat + _BETA * local
    blocks = _runs(ma_peak > threshold)
    min_width = _odd_width(_W_PEAK_S, fs)
    peaks = [
        start + int(np.argmax(filtered[start:stop]))
        for start, stop in blocks
        if stop - start >= min_width
    ]
    return _enforce_refractory(
        np.asarray(peaks, dtype=np.int64), filtered, round(_REFRACTORY_S * fs)
    )


def bandpass_ppg(ppg: npt.ArrayLike, fs: float) -> F64:
    """Band-pass a PPG to 0.5–8 Hz with a zero-phase Butterworth filter (empty if unusable)."""
    if not MIN_FS_HZ <= fs <= MAX_FS_HZ:
        msg = f"fs must be {MIN_FS_HZ:g}–{MAX_FS_HZ:g} Hz, got {fs!r}"
        raise ValueError(msg)
    x = np.asarray(ppg, dtype=np.float64).ravel()
    if x.size < 2 * fs or not np.all(np.isfinite(x)) or np.ptp(x) == 0.0:
        return np.empty(0, dtype=np.float64)
    return np.asarray(signal.sosfiltfilt(_bandpass_sos(fs), x - np.mean(x)), dtype=np.float64)


@functools.lru_cache(maxsize=16)
def _bandpass_sos(fs: float) -> F64:
    """The filter for ``fs``, designed once: the design (~0.4 ms) cost more than filtering a
    10-s window (~0.2 ms at 25 Hz), and the quality gate filters every window."""
    sos = signal.butter(_ORDER, _BAND_HZ, btype="bandpass", fs=fs, output="sos")
    return np.asarray(sos, dtype=np.float64)  # scipy's filter needs it writable; nobody writes


def refine_peaks(x: F64, peaks: npt.NDArray[np.int64]) -> F64:
    """Return the peaks' positions refined by the parabola through each peak and its neighbours.

    At 25 Hz a sample is 40 ms, as large as the whole respiratory sinus arrhythmia at rest, so the
    intervals of whole-sample peaks would carry mostly rounding noise.
    """
    inner = (peaks > 0) & (peaks < x.size - 1)
    refined = peaks.astype(np.float64)
    i = peaks[inner]
    left, mid, right = x[i - 1], x[i], x[i + 1]
    curvature = left - 2.0 * mid + right
    safe = np.where(curvature < 0, curvature, -1.0)
    offset = np.where(curvature < 0, 0.5 * (left - right) / safe, 0.0)
    refined[inner] += np.clip(offset, -0.5, 0.5)
    return refined


def rr_intervals_ms(peaks: npt.ArrayLike, fs: float) -> F64:
    """Return the intervals between successive beats in ms (interval i ends at beat i + 1)."""
    p = np.asarray(peaks, dtype=np.float64).ravel()
    if p.size < 2:
        return np.empty(0, dtype=np.float64)
    return np.diff(p) * (1000.0 / fs)


def heart_rate_bpm(peaks: npt.ArrayLike, fs: float) -> float:
    """Return the heart rate in beats/min: 60 over the mean of the plausible inter-beat intervals.

    Intervals outside 30–220 beats/min go first, then those more than 30 % from the median (a
    missed or an extra beat, an ectopic); the mean of the rest, not their median, because whole-
    sample intervals make the median jump by a sample (at 25 Hz and 120 beats/min, 4 %). NaN if
    no interval is left.
    """
    ibi_s = rr_intervals_ms(peaks, fs) / 1000.0
    ibi_s = ibi_s[(ibi_s >= _MIN_IBI_S) & (ibi_s <= _MAX_IBI_S)]
    if ibi_s.size == 0:
        return float("nan")
    median = float(np.median(ibi_s))
    kept = ibi_s[np.abs(ibi_s - median) <= _MAX_IBI_DEVIATION * median]
    return 60.0 / float(np.mean(kept))


def _odd_width(seconds: float, fs: float) -> int:
    """Return a window of ``seconds`` in samples, odd so that it centres on a sample."""
    n = max(1, round(seconds * fs))
    return n if n % 2 else n + 1


def _moving_average(x: F64, width: int) -> F64:
    """Return the centred moving average of ``x`` (same length; edges averaged over what exists)."""
    kernel = np.ones(width, dtype=np.float64)
    sums = np.convolve(x, kernel, mode="same")
    counts = np.convolve(np.ones_like(x), kernel, mode="same")
    return np.asarray(sums / counts, dtype=np.float64)


def _running_mean(x: F64, width: int) -> F64:
    """``_moving_average`` by cumulative sums: for the offset's 10-s window (251 samples at 25 Hz,
    1,001 at 100 Hz) a convolution would cost a multiply per sample and window place."""
    half = width // 2
    c = np.concatenate([[0.0], np.cumsum(x, dtype=np.float64)])
    i = np.arange(x.size)
    lo = np.maximum(i - half, 0)
    hi = np.minimum(i + half + 1, x.size)
    return np.asarray((c[hi] - c[lo]) / (hi - lo), dtype=np.float64)


def _runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """Return ``(start, stop)`` of each run of True in ``mask``."""
    edges = np.diff(mask.astype(np.int8), prepend=0, append=0)
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)
    return [(int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def _enforce_refractory(peaks: I64, x: F64, min_gap: int) -> I64:
    """Keep, of any two peaks closer than ``min_gap`` samples, the higher one."""
    kept: list[int] = []
    for p in peaks.tolist():
        if kept and p - kept[-1] < min_gap:
            if x[p] > x[kept[-1]]:
                kept[-1] = p
            continue
        kept.append(p)
    return np.asarray(kept, dtype=np.int64)
