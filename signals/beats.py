"""Find heartbeats in a single-lead ECG and score detections against reference beats.

``ecg_r_peaks`` is a Pan–Tompkins QRS detector (Pan & Tompkins 1985, IEEE Trans Biomed Eng
32(3):230–236; thresholds as revised by Hamilton & Tompkins 1986, IEEE TBME 33(12):1157–1165)
with zero-phase filters, then each detection moved to the R peak. ``score_detections`` matches
detections to reference beats one-to-one, ANSI/AAMI EC57 style. See docs/beats.md.
``ppg_pulse_peaks`` (Elgendi 2013) lives in ``signals.pulse`` with the rest of the PPG code and is
re-exported here, so that every beat detector has one stable address: ``signals.beats``.
Pure: numpy and scipy only, no I/O.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage, signal

from signals.pulse import ppg_pulse_peaks
from signals.vitals import F64, I64

#: The detector's working precision (see ecg_r_peaks).
F32 = npt.NDArray[np.float32]

__all__ = ["ecg_r_peaks", "ppg_pulse_peaks", "score_detections"]


#: QRS energy band, Hz: Pan & Tompkins 1985 pass 5–15 Hz, where QRS dominates P and T waves.
QRS_BAND_HZ: Final = (5.0, 15.0)
#: Second, sharper band, Hz, and its weight in the detection energy: tuned on MIT-BIH 105/106.
SHARP_BAND_HZ: Final = (10.0, 25.0)
SHARP_WEIGHT: Final = 0.3
#: Moving-window integration width, s: about the widest QRS (Pan & Tompkins 1985: 150 ms).
INTEGRATION_S: Final = 0.150
#: Samples integrated per piece (see _slope_energy): small enough for ndimage's line buffers to
#: be reused, large enough that the Python loop over pieces costs nothing.
INTEGRATION_CHUNK: Final = 1 << 16
#: Detection threshold's place between the noise and signal peak levels (Hamilton & Tompkins 1986).
THRESHOLD_FRACTION: Final = 0.25
#: Refractory period, s: no second depolarisation within 200 ms (Pan & Tompkins 1985).
REFRACTORY_S: Final = 0.200
#: Candidates closer than this to the previous beat are checked for being a T wave (P&T: 360 ms).
T_WAVE_S: Final = 0.360
#: ...and are T waves if their steepest slope is under this fraction of the beat's (P&T: half).
T_WAVE_SLOPE: Final = 0.5
#: Search back for a missed beat after this multiple of the mean RR (P&T: 166 %).
SEARCH_BACK_RR: Final = 1.66
#: Search back also accepts the highest candidate when it exceeds this multiple of the median of
#: the others in the window, and there are at least this many others (see _stands_out).
SEARCH_BACK_STANDOUT: Final = 8.0
SEARCH_BACK_OTHERS: Final = 2
#: ...once two mean RR intervals have passed without a beat: past any compensatory pause, which
#: is at most two RR intervals from the beat before a premature one.
SEARCH_BACK_STANDOUT_RR: Final = 2.0
#: ...but only beyond the T wave's reach of the last beat, and only down to this fraction of the
#: learnt beat energy (about a sixth of the amplitude): a pause's baseline noise never qualifies.
SEARCH_BACK_FLOOR: Final = 1.0 / 32.0
#: Interloper rule (see _drop_interlopers): RR context in intervals, the fraction of the local
#: RR both intervals must be under, and the multiple of it their sum must be under.
INTERLOPER_CONTEXT: Final = 17
INTERLOPER_SHORT: Final = 0.8
INTERLOPER_SUM: Final = 1.2
#: Signal-quality gate (see _noise_floor, _noisy): a detection is in a noisy stretch when the
#: median |5–15 Hz| over this window, s (sampled at about this rate, Hz), exceeds this fraction of
#: the median R amplitude (|5–15 Hz| at the detection) of this many neighbouring detections.
NOISE_WINDOW_S: Final = 3.0
NOISE_RATE_HZ: Final = 90.0
NOISE_RATIO: Final = 0.16
NOISE_BEATS: Final = 31
#: In noisy stretches (see _fit_rhythm_in_noise): an RR interval under this fraction of the local
#: RR loses one of its ends, if the merged interval is within this |log| of the local RR.
NOISE_SHORT: Final = 0.7
NOISE_FIT: Final = 0.4
#: Half-width, s, of the window around a detection in which the R peak is sought.
REFINE_S: Final = 0.075
#: Shortest input handled, s: the thresholds need a couple of beats to learn from.
MIN_DURATION_S: Final = 1.0


#: Sampling rates the R-peak detector accepts, Hz.
ECG_FS_RANGE_HZ: Final = (50.0, 5000.0)


def ecg_r_peaks(ecg: npt.ArrayLike, fs: float) -> I64:
    """Return the sample indices (sorted, unique, int64) of the R peaks in a single-lead ECG.

    ``ecg`` may be in any unit (millivolts typical) and either polarity; ``fs`` is the sampling
    rate in Hz, 100 to 1000. Input shorter than 1 s, flat, or not finite gives no beats; a
    sampling rate outside 50–5000 Hz or an array of more than one dimension is a ``ValueError``.
    """
    x = np.asarray(ecg, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"one lead expected, got an array of shape {x.shape}")
    if not ECG_FS_RANGE_HZ[0] <= fs <= ECG_FS_RANGE_HZ[1]:
        raise ValueError(f"sampling rate {fs} Hz outside 50–5000 Hz")
    if x.size < MIN_DURATION_S * fs or not np.all(np.isfinite(x)):
        return np.empty(0, dtype=np.int64)
    span = float(np.ptp(x))
    if span == 0.0:
        return np.empty(0, dtype=np.int64)
    # Single precision from here on, on the signal scaled to a range of 1 (the detector is
    # scale-free): ample for an ECG digitised at 11–16 bits, with no unit near float32's limits
    # once squared, and it halves the memory traffic and the page faults of the record-long
    # arrays, which cost more than the arithmetic. Detections on MIT-BIH 100 (both leads), 105
    # and 106, at 360, 250 and 128 Hz, are the same as in double precision.
    if not 1e-30 < span < 1e30:  # a unit far outside float32's range: scale in double first
        x, span = x / span, 1.0
    work = np.empty(x.size, dtype=np.float32)
    np.subtract(x, x.mean(), out=work, casting="same_kind")
    work *= np.float32(1.0 / span)
    band = _bandpass(work, fs, QRS_BAND_HZ)
    sharp = _bandpass(work, fs, SHARP_BAND_HZ)
    # Weighted geometric mean of the two bands' energies (scale-free, so no normalising): wide
    # PVCs live in the low band, and motion artefact, which is as slow, lacks the high one. The
    # input copy and the sharp band are spent, so their memory is reused.
    energy = _slope_energy(band, fs, scratch=work)
    np.power(energy, np.float32(1.0 - SHARP_WEIGHT), out=energy)
    high = _slope_energy(sharp, fs, scratch=work, out=sharp)
    energy *= np.power(high, np.float32(SHARP_WEIGHT), out=high)
    beats = _drop_interlopers(_threshold(energy, band, fs), energy)
    # The noise floor around a beat does not depend on which other beats are kept: once.
    floor = _noise_floor(beats, band, fs)
    keep = _fit_rhythm_in_noise(beats, _noisy(beats, band, floor))
    beats, floor = beats[keep], floor[keep]
    return _refine(beats, band, fs, _noisy(beats, band, floor))


def _bandpass(x: F32, fs: float, band_hz: tuple[float, float]) -> F32:
    high = min(band_hz[1], 0.45 * fs)
    sos = signal.butter(2, (band_hz[0], high), btype="bandpass", fs=fs, output="sos")
    return np.asarray(signal.sosfiltfilt(sos.astype(np.float32), x), dtype=np.float32)


def _slope_energy(y: F32, fs: float, scratch: F32, out: F32 | None = None) -> F32:
    """Return the squared derivative of ``y`` integrated over 150 ms, never below zero.

    The derivative is ``np.gradient``'s (central differences, one-sided at the ends), written out
    so that it goes into ``scratch`` and the result into ``out`` (which may be ``y``), rather
    than into new record-long arrays.
    """
    d = scratch
    np.subtract(y[2:], y[:-2], out=d[1:-1])
    d[1:-1] *= np.float32(0.5)
    d[0], d[-1] = y[1] - y[0], y[-1] - y[-2]
    np.square(d, out=d)
    width = max(1, round(INTEGRATION_S * fs))
    # Centred (not causal, as in P&T) so the energy peak lies on the QRS, not 75 ms after it; a
    # running sum can leave rounding residue below zero, which the geometric mean cannot take.
    # In pieces: on float32, ndimage works in two double-precision copies of the whole line, and
    # their fresh pages (10 MB for 30 min at 360 Hz) cost four times the filtering itself. Each
    # piece carries the neighbours' samples its windows reach, so the result is the same.
    smooth = np.empty_like(y) if out is None else out
    left = width // 2
    right = width - 1 - left
    for start in range(0, d.size, INTEGRATION_CHUNK):
        stop = min(d.size, start + INTEGRATION_CHUNK)
        lo, hi = max(0, start - left), min(d.size, stop + right)
        piece = ndimage.uniform_filter1d(d[lo:hi], width, mode="nearest")
        smooth[start:stop] = piece[start - lo : stop - lo]
    return np.maximum(smooth, np.float32(0.0), out=smooth)


def _threshold(energy: F32, band: F32, fs: float) -> I64:
    """Pick QRS complexes from the integrated energy's peaks with adaptive thresholds.

    The loop is sequential by nature (each decision moves the thresholds for the next), so it
    runs over plain Python floats: per peak, numpy scalar arithmetic costs several times more.
    """
    refractory = round(REFRACTORY_S * fs)
    peaks, _ = signal.find_peaks(energy, distance=refractory)
    if peaks.size == 0:
        return np.empty(0, dtype=np.int64)
    heights = energy[peaks]
    # Steepest band-passed slope around each candidate: T waves rise more slowly than QRS. Taken
    # at the candidates only (clipped windows, as a reflecting maximum filter would give).
    half = max(1, round(INTEGRATION_S * fs / 2))
    # One sample more on the left for the first difference; clipped repeats add zero slopes.
    around = np.clip(peaks[:, None] + np.arange(-half - 1, half + 1)[None, :], 0, band.size - 1)
    slopes: list[float] = np.abs(np.diff(band[around], axis=1)).max(axis=1).tolist()
    pk: list[int] = peaks.tolist()
    hs: list[float] = heights.tolist()
    t_wave = T_WAVE_S * fs

    learn = energy[: round(2 * fs)]
    spk, npk = 0.25 * float(learn.max()), 0.5 * float(learn.mean(dtype=np.float64))
    rr_mean = 0.0
    beats: list[int] = []  # indices into peaks
    for i, (p, h) in enumerate(zip(pk, hs, strict=True)):
        thr = npk + THRESHOLD_FRACTION * (spk - npk)
        if beats and rr_mean > 0.0 and p - pk[beats[-1]] > SEARCH_BACK_RR * rr_mean:
            # Search back: the highest candidate since the last beat above half the threshold.
            last = beats[-1]
            lo = int(np.searchsorted(peaks, pk[last] + refractory))
            if lo < i:
                j = lo + int(np.argmax(heights[lo:i]))
                stands_out = (
                    p - pk[last] > SEARCH_BACK_STANDOUT_RR * rr_mean
                    and pk[j] - pk[last] >= t_wave
                    and hs[j] > SEARCH_BACK_FLOOR * spk
                    and _stands_out(heights[lo:i], j - lo)
                )
                if hs[j] > 0.5 * thr or stands_out:
                    beats.append(j)
                    spk = 0.25 * hs[j] + 0.75 * spk
                    thr = npk + THRESHOLD_FRACTION * (spk - npk)
        if h > thr:
            if (
                beats
                and p - pk[beats[-1]] < t_wave
                and slopes[i] < T_WAVE_SLOPE * slopes[beats[-1]]
            ):
                npk = 0.125 * h + 0.875 * npk
                continue
            beats.append(i)
            spk = 0.125 * h + 0.875 * spk
            if len(beats) >= 2:
                # Mean of the last 8 RR intervals: the sum of the differences telescopes.
                n = min(len(beats), 9)
                rr_mean = (p - pk[beats[-n]]) / (n - 1)
        else:
            npk = 0.125 * h + 0.875 * npk
    return np.asarray(peaks[beats], dtype=np.int64)


def _stands_out(heights: F32, k: int) -> bool:
    """Whether candidate ``k`` towers over the other candidates of a search-back window.

    P&T's search back accepts half the threshold, which fails when the ECG's amplitude drops
    (an electrode reseated, a patch that shifts with posture): the integrated energy falls with
    the square of the amplitude, the new beats are learnt as noise, and the threshold never
    comes down to them (MIT-BIH 100 at a quarter of its amplitude from the middle on: 793 beats
    missed). Within one missed interval a QRS still stands far above the P and T waves and the
    noise around it, whatever the amplitude; pure noise in a pause has no such peak.
    """
    others = np.delete(heights, k)
    if others.size < SEARCH_BACK_OTHERS:
        return False
    return bool(heights[k] > SEARCH_BACK_STANDOUT * float(np.median(others)))


def _drop_interlopers(beats: I64, energy: F32) -> I64:
    """Drop a detection that splits one RR interval into two short ones, which a beat never does.

    A premature beat (PVC, PAC) shortens only the interval before it, and the pause after it makes
    the two intervals add up to more than one normal RR; a noise spike between two beats leaves
    them adding up to one RR. Both intervals and their sum are judged against the median of the
    surrounding RR intervals, so the rule follows the rate.
    """
    for _ in range(3):
        if beats.size < 5:
            return beats
        rr = np.diff(beats).astype(np.float64)
        span = min(INTERLOPER_CONTEXT, rr.size)
        local = ndimage.median_filter(rr, size=span, mode="nearest")
        before, after = rr[:-1], rr[1:]
        ref = np.maximum(local[:-1], local[1:])
        middle = energy[beats[1:-1]]
        weaker = middle < np.minimum(energy[beats[:-2]], energy[beats[2:]])
        bad = (
            (before < INTERLOPER_SHORT * ref)
            & (after < INTERLOPER_SHORT * ref)
            & (before + after < INTERLOPER_SUM * ref)
            & weaker
        )
        if not bad.any():
            return beats
        # Never drop two neighbours in one pass: keep the first of any adjacent pair flagged.
        bad[1:] &= ~bad[:-1]
        beats = np.delete(beats, np.flatnonzero(bad) + 1)
    return beats


def _noise_floor(beats: I64, band: F32, fs: float) -> F64:
    """Return the median |5–15 Hz| over the 3 s around each detection, sampled at about 90 Hz.

    Computed at the detections only, not as a running median over the whole record (which cost
    more than the rest of the detector): the same window and rank as
    ``ndimage.median_filter(..., mode="nearest")`` would give there, even-sized windows included.
    """
    if beats.size == 0:
        return np.zeros(0, dtype=np.float64)
    step = max(1, round(fs / NOISE_RATE_HZ))
    coarse = np.abs(band[::step])
    size = max(1, round(NOISE_WINDOW_S * fs / step))
    left = size // 2
    padded = np.pad(coarse, (left, size - left - 1), mode="edge")
    windows = sliding_window_view(padded, size)[np.minimum(beats // step, coarse.size - 1)]
    windows.partition(left, axis=1)
    return np.asarray(windows[:, left], dtype=np.float64)


def _noisy(beats: I64, band: F32, floor: F64) -> npt.NDArray[np.bool_]:
    """Flag the detections that lie in stretches where the QRS band stays busy between beats.

    Between beats of a clean ECG the 5–15 Hz signal is near zero, so its median magnitude over a
    few seconds (``floor``, from ``_noise_floor``) is a small fraction of the R amplitude (99.9 %
    of the beats of records 100 and 106 under 0.1, all under 0.15); motion artefact fills the band
    and lifts it to 0.1–0.3 (105).
    """
    if beats.size == 0:
        return np.zeros(0, dtype=np.bool_)
    amp = np.abs(band[beats])
    typical = ndimage.median_filter(amp, min(NOISE_BEATS, amp.size), mode="nearest")
    return np.asarray(floor > NOISE_RATIO * typical, dtype=np.bool_)


def _fit_rhythm_in_noise(beats: I64, noisy: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Inside noisy stretches, make the detections fit the local rhythm; return which to keep.

    The shortest RR interval under 0.7 × the local median RR (17 intervals) with a noisy end is
    resolved first: of its noisy ends, the one whose removal leaves the interval closest to the
    local RR goes, if that interval is then within |log| 0.4 of it (so a premature beat with its
    compensatory pause, whose removal would leave about two RRs, stays). Repeat until none is left.
    Clean stretches are untouched, so the PVCs of record 106 are judged by the thresholds alone.
    """
    keep = np.ones(beats.size, dtype=bool)
    if beats.size < 5 or not noisy.any():
        return keep
    noisy = noisy.copy()
    rr = np.diff(beats).astype(np.float64)
    local = ndimage.median_filter(rr, min(INTERLOPER_CONTEXT, rr.size), mode="nearest")
    ref = np.interp(beats, beats[1:], local)  # typical RR at each beat
    while True:
        idx = np.flatnonzero(keep)
        if idx.size < 3:
            break
        gaps = np.diff(beats[idx]) / ref[idx[1:]]
        short = (gaps < NOISE_SHORT) & (noisy[idx[:-1]] | noisy[idx[1:]])
        if not short.any():
            break
        k = int(np.flatnonzero(short)[np.argmin(gaps[short])])
        best, best_cost = -1, np.inf
        for m in (k, k + 1):  # the two ends of the short interval, as positions in idx
            if not noisy[idx[m]]:
                continue
            if m == 0 or m + 1 == idx.size:
                cost = 0.0
            else:
                cost = abs(float(np.log((beats[idx[m + 1]] - beats[idx[m - 1]]) / ref[idx[m]])))
            if cost < best_cost:
                best, best_cost = m, cost
        if best < 0 or best_cost > NOISE_FIT:
            noisy[idx[k]] = noisy[idx[k + 1]] = False  # leave this pair alone from now on
            continue
        keep[idx[best]] = False
    return keep


def _refine(beats: I64, band: F32, fs: float, noisy: npt.NDArray[np.bool_]) -> I64:
    """Move each clean detection to the largest deflection of the band-passed ECG within ±75 ms.

    Detections flagged ``noisy`` stay at the energy peak: in artefact the largest deflection
    nearby is as often the artefact's as the QRS's (record 105: two beats moved out of reach).
    """
    if beats.size == 0:
        return beats
    # The 5–15 Hz band, not the raw ECG: a wide PVC's largest raw deflection is often its late
    # S wave or T wave, 80–110 ms after the annotated beat (record 106), its steepest part is not.
    half = max(1, round(REFINE_S * fs))
    offsets = np.arange(-half, half + 1)
    idx = np.clip(beats[:, None] + offsets[None, :], 0, band.size - 1)
    seg = band[idx]
    # Polarity from the detection's own window: the larger excursion from the window median.
    centred = seg - np.median(seg, axis=1, keepdims=True)
    best = np.argmax(np.abs(centred), axis=1)
    best[noisy] = half
    out = idx[np.arange(idx.shape[0]), best]
    return np.unique(out).astype(np.int64)


def score_detections(
    detected: npt.ArrayLike, reference: npt.ArrayLike, fs: float, window_s: float = 0.15
) -> tuple[float, float, int, int, int]:
    """Return (sensitivity, positive predictivity, TP, FN, FP) of detections against references.

    ``window_s`` is the whole match window (ANSI/AAMI EC57: 150 ms): a detection matches a
    reference beat at most ``window_s / 2`` away, each beat matched at most once, nearest first
    in time order. Sensitivity and +P are fractions (1.0 when there is nothing to find or report).
    """
    det = np.unique(np.asarray(detected, dtype=np.int64))
    ref = np.unique(np.asarray(reference, dtype=np.int64))
    tol = window_s / 2 * fs
    tp = 0
    j = 0
    for r in ref:
        while j < det.size and det[j] < r - tol:
            j += 1
        if j >= det.size:
            break
        # Take the nearer of this detection and the next, if the next is closer to this beat.
        k = j
        if k + 1 < det.size and abs(det[k + 1] - r) < abs(det[k] - r):
            k += 1
        if abs(det[k] - r) <= tol:
            tp += 1
            j = k + 1
    fn = int(ref.size - tp)
    fp = int(det.size - tp)
    se = tp / ref.size if ref.size else 1.0
    ppv = tp / det.size if det.size else 1.0
    return se, ppv, tp, fn, fp
