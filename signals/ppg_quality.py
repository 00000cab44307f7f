"""Is this PPG window good enough to measure from? A published signal-quality index (SQI).

Motion moves the sensor against the skin; the PPG then carries swings and bursts that the pulse
detector turns into beats, and the heart and breathing rates computed from them are wrong while
looking like any other number. This module decides, window by window, whether a PPG is worth
measuring from, so that a corrupted window yields "not measured" instead.

The method is Orphanidou's (Orphanidou C, Bonnici T, Charlton P, Clifton D, Vallance D,
Tarassenko L. "Signal-quality indices for the electrocardiogram and photoplethysmogram: derivation
and applications to wireless monitoring", IEEE J Biomed Health Inform 2015;19(3):832–8; on
manually labelled wearable PPG from ambulatory hospital patients, sensitivity 91 % and specificity
95 %). Taken from the paper, for each 10-s window:

1. Feasibility rules on the detected pulses: the heart rate is 40–180 beats/min; no gap between
   successive pulses reaches 3 s (at most one missed beat); the longest beat interval is less than
   2.2 times the shortest (the rate should not change 10 % in 10 s; 2.2 allows one missed beat).
2. Adaptive template matching: each pulse wave is cut out with a window as wide as the median
   beat interval, centred on its peak; the template is the mean of those waves; the index is the
   mean of the correlation coefficients of each wave with the template.
3. The window is acceptable if every rule holds and the index is at least 0.86 (the paper's
   optimum for the PPG, against 0.66 for the ECG). The threshold is the paper's, not fitted here.

Our choices, where the paper left them open or where we depart from it:

- Pulses are our own detector's (``signals.pulse.ppg_pulse_peaks``, Elgendi 2013), not the
  paper's; the waves are cut from the 0.5–8 Hz band-passed PPG that detector works on.
- Each window is analysed with 2 s of the signal either side (when there is some) so that its
  edge beats do not fall into the filter's start-up; only pulses inside the window count.
  Detection is per window, not once over the whole signal: the detector's threshold scales with
  the mean power of what it is given, so a large artefact elsewhere would hide beats here.
- The heart rate of rule 1 is 60 over the mean interval between the window's pulses, not their
  count times six: a count moves in steps of 6 beats/min and flips a true 40/min either side of
  the limit. To keep what the count caught (a window that stops beating part-way), rule 2 also
  counts the stretches from the window's start to its first pulse and from its last pulse to the
  end.
- A wave whose cut-out would run past the ends of the available signal is left out of the
  template, as in Charlton's reference implementation (github.com/peterhcharlton/ppg-quality).

Pure: numpy and scipy (through ``signals.pulse``) only.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from signals.pulse import MAX_FS_HZ, MIN_FS_HZ, bandpass_ppg, pulse_peaks_filtered
from signals.vitals import F64, I64

__all__ = [
    "MIN_CORRELATION",
    "WINDOW_S",
    "PpgSqi",
    "SqiReason",
    "acceptable_share",
    "ppg_sqi",
    "sample_mask",
]


#: Length of the windows judged, s (Orphanidou 2015: 10-s samples).
WINDOW_S: Final = 10.0
#: Smallest mean correlation of the pulse waves with their template for an acceptable window
#: (Orphanidou 2015: 0.86 for the PPG, chosen on their labelled data; not refitted here).
MIN_CORRELATION: Final = 0.86
#: Feasibility rules (Orphanidou 2015): heart rate 40–180 beats/min, no gap of 3 s or more,
#: longest over shortest beat interval under 2.2.
_MIN_HR_BPM: Final = 40.0
_MAX_HR_BPM: Final = 180.0
_MAX_GAP_S: Final = 3.0
_MAX_IBI_RATIO: Final = 2.2
#: Signal taken either side of a window for the filter and the detector, s: the 0.5 Hz high-pass
#: settles within about a second, and a beat lasts at most 1.5 s at 40 beats/min.
_CONTEXT_S: Final = 2.0


class SqiReason(enum.IntEnum):
    """Why a window was judged as it was: the first of the paper's checks that failed.

    Ordered as the checks run, so the code of an unacceptable window names the first failure.
    """

    ACCEPTABLE = 0
    NO_SIGNAL = 1  # flat (a saturated or idle sensor) or NaN/inf: nothing to detect pulses in
    HEART_RATE = 2  # fewer than two pulses, or a rate outside 40–180 beats/min
    GAP = 3  # 3 s or more without a pulse
    IRREGULAR = 4  # longest beat interval 2.2 times the shortest or more
    LOW_CORRELATION = 5  # the pulse waves do not match their template (mean r < 0.86)

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", " ")


@dataclass(frozen=True, slots=True, eq=False)
class PpgSqi:
    """Orphanidou's verdict on each whole window of a PPG, as arrays with one value per window.

    Window ``k`` covers samples ``[k * window, (k + 1) * window)``; the samples after the last
    whole window are not judged. ``correlation`` is the mean correlation of the pulse waves with
    their template (NaN when fewer than two waves could be cut out); ``heart_rate`` is in
    beats/min (NaN with fewer than two pulses); ``reason`` holds `SqiReason` codes.
    """

    fs: float
    window: int  # samples per window
    n_samples: int  # length of the signal judged
    correlation: F64
    heart_rate: F64
    reason: npt.NDArray[np.int8]

    @property
    def acceptable(self) -> npt.NDArray[np.bool_]:
        """True for each window that passed every rule and the template match."""
        return np.asarray(self.reason == SqiReason.ACCEPTABLE, dtype=np.bool_)

    @property
    def measured_heart_rate(self) -> F64:
        """The heart rate of each acceptable window, NaN ("not measured") for the others."""
        return np.where(self.acceptable, self.heart_rate, np.nan)

    @property
    def starts(self) -> I64:
        """The first sample of each window."""
        return np.arange(self.reason.size, dtype=np.int64) * self.window


def ppg_sqi(ppg: npt.ArrayLike, fs: float, *, window_s: float = WINDOW_S) -> PpgSqi:
    """Judge each whole, non-overlapping ``window_s`` window of a PPG (Orphanidou et al. 2015).

    See the module's docstring for the rules, the template match and where we depart from the
    paper. A signal shorter than one window gives empty arrays; ``fs`` outside 20–500 Hz (the
    pulse detector's range) raises ``ValueError``.
    """
    if not MIN_FS_HZ <= fs <= MAX_FS_HZ:
        msg = f"fs must be {MIN_FS_HZ:g}–{MAX_FS_HZ:g} Hz, got {fs!r}"
        raise ValueError(msg)
    x = np.asarray(ppg, dtype=np.float64).ravel()
    window = max(1, round(window_s * fs))
    n_windows = x.size // window if window_s > 0 else 0
    context = round(_CONTEXT_S * fs)
    correlation = np.full(n_windows, np.nan)
    heart_rate = np.full(n_windows, np.nan)
    reason = np.zeros(n_windows, dtype=np.int8)
    for w in range(n_windows):
        start, stop = w * window, (w + 1) * window
        lo, hi = max(0, start - context), min(x.size, stop + context)
        if not np.all(np.isfinite(x[lo:hi])):  # a gap next door should not sink this window
            lo, hi = start, stop
        code, correlation[w], heart_rate[w] = _judge(x[lo:hi], fs, start - lo, stop - lo)
        reason[w] = code
    return PpgSqi(fs, window, int(x.size), correlation, heart_rate, reason)


def sample_mask(sqi: PpgSqi) -> npt.NDArray[np.bool_]:
    """Return one bool per sample of the judged signal: True inside an acceptable window.

    The samples after the last whole window were not judged and are False.
    """
    mask = np.zeros(sqi.n_samples, dtype=np.bool_)
    covered = sqi.reason.size * sqi.window
    mask[:covered] = np.repeat(sqi.acceptable, sqi.window)
    return mask


def acceptable_share(sqi: PpgSqi, span_s: float) -> F64:
    """Return, for each whole ``span_s`` span of the signal, the share of its windows acceptable.

    Span ``j`` covers seconds ``[j * span_s, (j + 1) * span_s)`` from the first sample, as the
    windows of `signals.respiration.resp_rates_from_ppg` do; only windows wholly inside a span
    count. NaN for a span that holds no whole window (a span shorter than a window).
    """
    span = span_s * sqi.fs  # samples, possibly fractional
    n_spans = int(sqi.n_samples // span) if span > 0 else 0
    if n_spans == 0:
        return np.empty(0, dtype=np.float64)
    k = np.arange(sqi.reason.size, dtype=np.float64)
    first = k * sqi.window
    j = np.floor(first / span + 1e-9)
    inside = ((k + 1) * sqi.window <= (j + 1) * span + 1e-9) & (j < n_spans)
    spans = j[inside].astype(np.int64)
    counts = np.bincount(spans, minlength=n_spans).astype(np.float64)
    good = np.bincount(spans, weights=sqi.acceptable[inside], minlength=n_spans)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(good / counts, dtype=np.float64)


def _judge(seg: F64, fs: float, start: int, stop: int) -> tuple[SqiReason, float, float]:
    """Return (reason, mean template correlation, heart rate) for ``seg[start:stop]``.

    ``seg`` is the window with its context either side; the correlation is computed whatever the
    rules say (NaN with fewer than two waves), so that it can be inspected on rejected windows.
    """
    window = seg[start:stop]
    filtered = bandpass_ppg(seg, fs)
    if filtered.size == 0 or not np.all(np.isfinite(window)) or np.ptp(window) == 0.0:
        return SqiReason.NO_SIGNAL, float("nan"), float("nan")
    peaks = pulse_peaks_filtered(filtered, fs)
    peaks = peaks[(peaks >= start) & (peaks < stop)]
    if peaks.size < 2:
        return SqiReason.HEART_RATE, float("nan"), float("nan")
    ibi = np.diff(peaks).astype(np.float64)
    heart_rate = 60.0 * fs / float(np.mean(ibi))
    correlation = _template_correlation(filtered, peaks, int(np.median(ibi)))
    edges = np.array([peaks[0] - start, stop - 1 - peaks[-1]], dtype=np.float64)
    return _first_failure(ibi / fs, edges / fs, heart_rate, correlation), correlation, heart_rate


def _first_failure(ibi_s: F64, edges_s: F64, heart_rate: float, correlation: float) -> SqiReason:
    """Return the first of Orphanidou's checks the window fails, in the paper's order."""
    if not _MIN_HR_BPM <= heart_rate <= _MAX_HR_BPM:
        return SqiReason.HEART_RATE
    if float(max(ibi_s.max(), edges_s.max())) >= _MAX_GAP_S:
        return SqiReason.GAP
    if float(ibi_s.max()) >= _MAX_IBI_RATIO * float(ibi_s.min()):
        return SqiReason.IRREGULAR
    if not correlation >= MIN_CORRELATION:  # NaN fails too
        return SqiReason.LOW_CORRELATION
    return SqiReason.ACCEPTABLE


def _template_correlation(filtered: F64, peaks: I64, median_ibi: int) -> float:
    """Return the mean correlation of each pulse wave with the mean wave (Orphanidou 2015).

    Each wave is the ``median_ibi`` samples centred on its peak (one more when that is even, so
    that it centres on the peak); waves that would run past either end of ``filtered`` are left
    out. NaN with fewer than two waves or a flat wave.
    """
    half = median_ibi // 2
    peaks = peaks[(peaks - half >= 0) & (peaks + half < filtered.size)]
    if peaks.size < 2 or half < 1:
        return float("nan")
    waves = filtered[peaks[:, None] + np.arange(-half, half + 1)]
    waves = waves - waves.mean(axis=1, keepdims=True)
    template = waves.mean(axis=0)  # the waves' means are zero, so the template's is too
    norms = np.sqrt(np.sum(waves**2, axis=1) * float(np.sum(template**2)))
    if np.any(norms == 0.0):
        return float("nan")
    return float(np.mean(waves @ template / norms))
