"""Respiratory rate from a PPG's beat-to-beat modulations, or from a respiratory signal.

Breathing modulates the PPG three ways (Karlen W, Raman S, Ansermino JM, Dumont GA. "Multiparameter
respiratory rate estimation from the photoplethysmogram", IEEE Trans Biomed Eng 2013;60(7):
1946–53): the baseline (respiratory-induced intensity variation, RIIV: the peak's height), the
pulse amplitude (RIAV: peak minus the preceding trough) and the heart rate (RIFV: respiratory sinus
arrhythmia, the inter-beat interval). Each beat-by-beat series is resampled to 4 Hz, band-passed
to 0.1–0.7 Hz (6–42 breaths/min) and its breaths counted, giving one estimate; Karlen's "Smart
Fusion" averages the three and rejects the window when they disagree by more than 4 breaths/min
(standard deviation). Karlen took each estimate from a spectral peak; we count breaths instead
(see `_count_rate`). Pure: numpy and scipy only.
"""

from __future__ import annotations

import functools
import itertools
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import interpolate, signal

from signals.pulse import bandpass_ppg, pulse_peaks_filtered, refine_peaks
from signals.vitals import F64

__all__ = [
    "RESP_BAND_HZ",
    "resp_rate_from_ppg",
    "resp_rate_from_signal",
    "resp_rates_from_ppg",
]


#: Band searched for breathing, Hz: 6–42 breaths/min (Karlen 2013); it covers the NEWS2 range of
#: interest, ≤ 8 to ≥ 25 breaths/min (RCP NEWS2 2017, Chart 1).
RESP_BAND_HZ: Final = (0.1, 0.7)
#: Rate the beat-by-beat series are resampled to (Karlen 2013: 4 Hz).
_RESAMPLE_HZ: Final = 4.0
#: Smart Fusion rejects a window whose three estimates have a standard deviation above this,
#: breaths/min (Karlen 2013: 4 breaths/min).
_FUSION_MAX_SD_BPM: Final = 4.0
#: Fewest beats in a window worth estimating from: at 40 beats/min a 30 s window still has 20.
_MIN_BEATS: Final = 16
#: Fewest resampled points to filter (sosfiltfilt's padding needs 3 × (2 × sections + 1) + 1).
_MIN_RESAMPLED: Final = 16
#: Butterworth order for band-passing a respiratory signal, and the hysteresis of its breath
#: count as a fraction of its standard deviation (so noise at a zero crossing is not a breath).
#: Chosen on the NeuroKit2 test recording (0.05, 0.1, 0.2 compared): wider hysteresis missed
#: shallow breaths in the PPG's modulations (docs/ppg-respiration.md); not yet validated elsewhere.
_RESP_ORDER: Final = 2
_HYSTERESIS_SD: Final = 0.05


def resp_rate_from_ppg(ppg: npt.ArrayLike, fs: float, *, window_s: float = 60.0) -> float:
    """Return the respiratory rate in breaths/min from a PPG: median of its windows' estimates.

    See `resp_rates_from_ppg`. NaN if no window gives an estimate (too short, flat, or the three
    modulations disagree everywhere).
    """
    rates = resp_rates_from_ppg(ppg, fs, window_s=window_s)
    rates = rates[np.isfinite(rates)]
    return float(np.median(rates)) if rates.size else float("nan")


def resp_rates_from_ppg(ppg: npt.ArrayLike, fs: float, *, window_s: float = 60.0) -> F64:
    """Return one respiratory rate (breaths/min) per whole, non-overlapping ``window_s`` window.

    Beats are found once over the whole signal (so no window loses its edge beats to filter
    transients); each window's RIIV, RIAV and RIFV series give three breath-count estimates, fused
    by Smart Fusion: their mean, or NaN when their standard deviation exceeds 4 breaths/min. A
    signal shorter than one window gives an empty array.
    """
    x = np.asarray(ppg, dtype=np.float64).ravel()
    n_windows = int(x.size // (window_s * fs)) if window_s > 0 else 0
    filtered = bandpass_ppg(x, fs)
    if n_windows == 0 or filtered.size == 0:
        return np.empty(0, dtype=np.float64)
    peaks = pulse_peaks_filtered(filtered, fs)
    series = _modulations(filtered, peaks, fs)
    rates = np.full(n_windows, np.nan)
    for w in range(n_windows):
        start_s, stop_s = w * window_s, (w + 1) * window_s
        estimates = [_series_rate(t, v, start_s, stop_s) for t, v in series]
        finite = [e for e in estimates if np.isfinite(e)]
        if len(finite) == len(estimates) and float(np.std(finite)) <= _FUSION_MAX_SD_BPM:
            rates[w] = float(np.mean(finite))
    return rates


def resp_rate_from_signal(resp: npt.ArrayLike, fs: float) -> float:
    """Return the breaths/min in a respiratory signal (belt, impedance, chest accelerometer axis).

    Band-passes to 0.1–0.7 Hz and counts breaths (see `_count_rate`). NaN if fewer than two
    breaths are found or the signal is too short (under 20 s), flat or not finite.
    """
    x = np.asarray(resp, dtype=np.float64).ravel()
    if (
        fs <= 2 * RESP_BAND_HZ[1]
        or x.size < 20 * fs
        or not np.all(np.isfinite(x))
        or np.ptp(x) == 0
    ):
        return float("nan")
    return _count_rate(x, fs)


def _count_rate(x: F64, fs: float) -> float:
    """Return breaths/min in ``x``: band-pass 0.1–0.7 Hz, count upward crossings of ±0.05 SD.

    The whole breaths between the first and last crossing are divided by the time between them.
    The hysteresis stops noise at a zero crossing counting as a breath. Counting rather than a
    spectral peak because the PPG's modulations carry a Mayer wave near 0.1 Hz (6/min) that can
    outweigh breathing in a 60 s spectrum; counting methods were the more robust in Schäfer A,
    Kratky KW, Ann Biomed Eng 2008;36(3):476–85 and Charlton PH et al., Physiol Meas
    2016;37(4):610–26.
    """
    y = signal.sosfiltfilt(_resp_sos(fs), x - np.mean(x))
    level = _HYSTERESIS_SD * float(np.std(y))
    crossings: list[int] = []
    armed = False
    for i, v in enumerate(y.tolist()):
        if v < -level:
            armed = True
        elif v > level and armed:
            crossings.append(i)
            armed = False
    if len(crossings) < 3 or level == 0.0:
        return float("nan")
    return 60.0 * (len(crossings) - 1) / ((crossings[-1] - crossings[0]) / fs)


@functools.lru_cache(maxsize=16)
def _resp_sos(fs: float) -> F64:
    """The breathing band-pass for ``fs``, designed once (as ``signals.pulse._bandpass_sos``): a
    live PPG tick counts breaths in three series a minute, and designing the filter took ~1 ms,
    a sixth of the tick (bench.derive)."""
    sos = signal.butter(_RESP_ORDER, RESP_BAND_HZ, btype="bandpass", fs=fs, output="sos")
    return np.asarray(sos, dtype=np.float64)


def _modulations(filtered: F64, peaks: npt.NDArray[np.int64], fs: float) -> list[tuple[F64, F64]]:
    """Return (beat times in s, values) for RIIV, RIAV and RIFV, one value per beat with a trough.

    The trough is the minimum between the previous peak and this one; the first peak has none.
    RIIV and RIAV use the 0.5–8 Hz band-passed PPG the peaks were found on. Its high-pass keeps
    only about 5 % of a 0.25 Hz baseline swing, so this RIIV (the band-passed peak height) is
    closer to half an amplitude than to Karlen's baseline; RIIV on the 8 Hz low-passed PPG was
    tried and was no better on the test recording (docs/ppg-respiration.md).
    """
    if peaks.size < 3:
        empty = np.empty(0, dtype=np.float64)
        return [(empty, empty)] * 3
    troughs = np.array(
        [a + int(np.argmin(filtered[a:b])) for a, b in itertools.pairwise(peaks.tolist())],
        dtype=np.int64,
    )
    later = peaks[1:]
    times_s = refine_peaks(filtered, peaks) / fs
    t = times_s[1:]
    riiv = filtered[later]
    riav = filtered[later] - filtered[troughs]
    rifv = np.diff(times_s)
    return [(t, riiv), (t, riav), (t, rifv)]


def _series_rate(t: F64, v: F64, start_s: float, stop_s: float) -> float:
    """Return the breath rate (breaths/min) of the beat series ``(t, v)`` inside a window."""
    inside = (t >= start_s) & (t < stop_s)
    if int(inside.sum()) < _MIN_BEATS:
        return float("nan")
    ts, vs = t[inside], v[inside]
    grid = np.arange(ts[0], ts[-1], 1.0 / _RESAMPLE_HZ)
    if grid.size < _MIN_RESAMPLED:
        return float("nan")
    return _count_rate(interpolate.CubicSpline(ts, vs)(grid), _RESAMPLE_HZ)
