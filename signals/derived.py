"""Vital signs a device did not send, derived from a waveform it did: breathing rate, heart rate
and pulse intervals from PPG, beat-to-beat (NN) intervals and heart rate from ECG.

Many wrist and finger devices stream a PPG but report no respiratory rate, and respiratory rate
is the NEWS2 parameter that moves first in sepsis and pneumonia. ``signals.respiration`` estimates
it from the PPG's respiratory modulations; this module turns a stored, continuous PPG segment into
one estimate per whole minute of wall time, stamped at the minute's end, so that repeated runs over
overlapping data give the same minutes and the same values (idempotent by key).

A minute whose PPG fails the signal-quality gate (``signals.ppg_quality``, Orphanidou et al. 2015)
in any of its 10-s windows gets no estimate: motion artefact makes pulses of its own, and on the
test recording 10 s of injected motion moved the minute's rate by up to 5.0 breaths/min without
Smart Fusion noticing (docs/ppg-respiration.md, "Signal quality gate").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import signal

from signals.beats import ECG_FS_RANGE_HZ, ecg_r_peaks
from signals.ppg_quality import WINDOW_S as SQI_WINDOW_S
from signals.ppg_quality import acceptable_share, ppg_sqi
from signals.pulse import MAX_FS_HZ, MIN_FS_HZ, bandpass_ppg, pulse_peaks_filtered, refine_peaks
from signals.respiration import resp_rates_from_ppg
from signals.vitals import F64, I64, PLAUSIBLE, Metric
from signals.waveforms import WaveformChunk, WaveformKind

WINDOW_US = 60_000_000  # one estimate per whole minute
#: Sampling rates each kind of waveform can be derived from (the detectors' own limits; ingest
#: stores 1-2000 Hz). A stream outside them is kept but nothing is derived from it, and the
#: derive job says so, rather than failing for every device (``derivable``).
DERIVABLE_FS_HZ: Final = {
    WaveformKind.PPG: (MIN_FS_HZ, MAX_FS_HZ),
    WaveformKind.ECG: ECG_FS_RANGE_HZ,
    WaveformKind.ACCEL: (0.0, math.inf),
}


def derivable(segment: WaveformChunk) -> bool:
    """Whether the derivations of the segment's kind accept its sampling rate."""
    low, high = DERIVABLE_FS_HZ[segment.kind]
    return low <= segment.fs_hz <= high


_SQI_GRID_US = round(SQI_WINDOW_S * 1e6)  # quality windows start on the clock's 10-s grid
#: Share of a minute's 10-s windows that must pass the PPG quality gate for the minute to get an
#: estimate. All of them: one bad window in six (10 s of injected motion) already moved the rate
#: by up to 5.0 breaths/min on the test recording (median 1.9), and three by up to 5.7; a minute
#: left out costs little, as the next arrives a minute later (docs/ppg-respiration.md).
MIN_ACCEPTABLE_SHARE: Final = 1.0


def resp_rate_minutes(segment: WaveformChunk, *, after_us: int) -> tuple[I64, F64]:
    """Breaths/min for each whole wall-clock minute of ``segment`` ending after ``after_us``.

    Minutes are aligned to the clock (``ts % 60 s == 0``), not to the segment's first sample, so
    that the same minute gets the same window however the data arrived. A minute whose estimate
    is not trustworthy (a 10-s window fails the PPG quality gate, the three modulations disagree)
    is left out rather than guessed; so is one outside the plausible range.
    """
    if segment.kind is not WaveformKind.PPG:
        raise ValueError(f"breathing rate comes from PPG, not {segment.kind.value}")
    fs = segment.fs_hz
    first_minute = -(-segment.start_us // WINDOW_US) * WINDOW_US  # the first whole minute
    skip = round((first_minute - segment.start_us) * fs / 1e6)
    samples = np.asarray(segment.values, dtype=np.float64).ravel()[skip:]
    rates = _clean_minute_rates(samples, fs, WINDOW_US / 1e6)
    ends = first_minute + WINDOW_US * np.arange(1, rates.size + 1, dtype=np.int64)
    bounds = PLAUSIBLE[Metric.RESP_RATE]
    keep = (ends > after_us) & np.isfinite(rates) & (rates >= bounds.low) & (rates <= bounds.high)
    return ends[keep], rates[keep]


def _clean_minute_rates(samples: F64, fs: float, minute_s: float) -> F64:
    """Return breaths/min per whole minute of ``samples``, NaN for a minute failing the gate.

    Each run of consecutive minutes that pass is estimated on its own, so that a rejected
    minute's artefact cannot reach its neighbours through the pulse detector (whose threshold
    follows the mean power of what it is given) or the filters: on the test recording, motion
    next door moved a clean minute by up to 0.58 breaths/min. A run that reaches the last whole
    minute keeps the samples after it when their whole windows pass too, so that a clean segment
    is estimated exactly as ``resp_rates_from_ppg`` estimates it.
    """
    per_minute = minute_s * fs  # samples, possibly fractional
    n_minutes = int(samples.size // per_minute)
    rates = np.full(n_minutes, np.nan)
    if n_minutes == 0:
        return rates
    sqi = ppg_sqi(samples, fs)
    passed = acceptable_share(sqi, minute_s)[:n_minutes] >= MIN_ACCEPTABLE_SHARE
    tail_start = math.ceil(n_minutes * per_minute - 1e-9)
    tail_passed = bool(
        np.all(sqi.acceptable[sqi.starts >= tail_start])
        and np.all(np.isfinite(samples[tail_start:]))
    )
    edges = np.diff(passed.astype(np.int8), prepend=0, append=0)
    starts, stops = np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()
    for first, stop in zip(starts, stops, strict=True):
        lo = math.floor(first * per_minute)
        hi = samples.size if stop == n_minutes and tail_passed else math.ceil(stop * per_minute)
        run = resp_rates_from_ppg(samples[lo:hi], fs, window_s=minute_s)[: stop - first]
        rates[first : first + run.size] = run
    return rates


#: Beats this close to a segment's end are not final: the detector's filters and search-back
#: look a little ahead, so a later run with more data may place or find them differently.
ECG_SETTLE_US: Final = 5_000_000
#: A minute's heart rate needs plausible beat-to-beat intervals covering half of it.
MIN_RR_COVERAGE: Final = 0.5
#: A minute's beats must look alike: the mean correlation of each QRS (±100 ms around the R
#: peak, baseline removed) with the minute's mean QRS, after Orphanidou et al. 2015 (IEEE JBHI
#: 19(3):832-838), who accept a 10-s window at 0.66. Over a minute, ectopic beats of a second
#: shape pull the mean down (MIT-BIH 106's bigeminal minutes: 0.58-0.64) while noise and motion
#: that the detector turns into "beats" sit at 0.08-0.49 (a loose electrode read 198 beats/min
#: without this gate). 0.5 was chosen on these same records: said, and to be checked on others.
MIN_QRS_CORRELATION: Final = 0.5
_QRS_HALF_S: Final = 0.1


@dataclass(frozen=True, slots=True)
class EcgBeats:
    """What an ECG segment gives the readings table (times UTC µs, as everywhere)."""

    rr_ts_us: I64  # each interval stamped at its second beat
    rr_ms: F64
    hr_ts_us: I64  # whole clock minutes, stamped at their end
    hr_bpm: F64


def ecg_beats(segment: WaveformChunk, *, after_us: int, settled_to_us: int) -> EcgBeats:
    """R-R intervals and per-minute heart rate from one continuous ECG segment.

    Beats are found on the whole segment (``signals.beats.ecg_r_peaks``), so a caller should
    pass the two clock minutes before ``after_us`` as context: an interval needs the beat before
    it, and a beat's shape is judged against the minute before (``dominant_shape``).
    Kept: NN intervals, whose second beat lies in ``(after_us, settled_to_us]``, within the
    plausible 200–3000 ms (a shorter one is a false detection, a longer one a missed beat), and
    both of whose beats have the dominant QRS shape: the intervals into and out of an ectopic
    ventricular beat (its coupling interval and compensatory pause) are left out here, however
    frequent and regular the ectopy, which RR-only cleaning cannot do (docs/hrv.md). The gaps
    they leave break adjacency, so HRV takes no difference across them (``signals.daily``);
    HRV's RR-only cleaning still runs there, for what shape cannot see (atrial premature beats
    look normal). And the
    heart rate of each whole clock minute (inside the segment, ending after the minute
    ``after_us`` falls in, by ``settled_to_us``) whose plausible intervals cover at least
    half of it, as 60 000 / their mean: the rate of all beats, ectopic ones included, which is
    what a monitor displays and NEWS2 scores (a bigeminal rhythm's rate is its ventricular
    rate). A minute without that coverage (noise, a loose electrode) has no heart rate rather
    than a wrong one.
    """
    if segment.kind is not WaveformKind.ECG:
        raise ValueError(f"beats come from ECG here, not {segment.kind.value}")
    values = np.asarray(segment.values, dtype=np.float64).ravel()
    peaks = ecg_r_peaks(values, segment.fs_hz)
    beat_us = segment.start_us + np.rint(peaks * (1e6 / segment.fs_hz)).astype(np.int64)
    x = _highpassed(values, segment.fs_hz)
    alike = _alike_minutes(x, segment.fs_hz, peaks, beat_us)
    dominant = dominant_shape(x, segment.fs_hz, peaks, beat_us)
    rr_ms = np.diff(beat_us) / 1000.0
    rr_ts = beat_us[1:]
    bounds = PLAUSIBLE[Metric.RR_INTERVAL]
    plausible = (rr_ms >= bounds.low) & (rr_ms <= bounds.high) & alike[1:]
    normal_to_normal = plausible & dominant[:-1] & dominant[1:]
    keep = normal_to_normal & (rr_ts > after_us) & (rr_ts <= settled_to_us)

    hr_ts, hr = _minute_rates(segment, rr_ts, rr_ms, plausible, after_us, settled_to_us)
    return EcgBeats(rr_ts[keep], rr_ms[keep], hr_ts, hr)


def _minute_rates(
    segment: WaveformChunk, ts_us: I64, ibi_ms: F64, usable: npt.NDArray[np.bool_],
    after_us: int, settled_to_us: int,
) -> tuple[I64, F64]:  # fmt: skip
    """Heart rate of each whole clock minute from beat intervals, as ECG and PPG share it.

    Minutes inside the segment, ending after the minute ``after_us`` falls in and by
    ``settled_to_us`` (a run that stopped mid-minute left that minute to this one); an interval
    belongs to the minute its second beat falls in. A minute whose ``usable`` intervals cover
    less than ``MIN_RR_COVERAGE`` of it, or whose rate is implausible, has none.
    """
    first = max(-(-segment.start_us // WINDOW_US), after_us // WINDOW_US) * WINDOW_US
    last = min(segment.end_us, settled_to_us) // WINDOW_US * WINDOW_US
    ends = np.arange(first + WINDOW_US, last + 1, WINDOW_US, dtype=np.int64)
    minute = np.searchsorted(ends, ts_us, side="left")  # the minute whose end is at or after
    inside = usable & (ts_us > first) & (ts_us <= last)
    covered = np.bincount(minute[inside], weights=ibi_ms[inside], minlength=ends.size)[: ends.size]
    count = np.bincount(minute[inside], minlength=ends.size)[: ends.size]
    with np.errstate(invalid="ignore", divide="ignore"):
        hr = 60_000.0 * count / covered
    ok = covered >= MIN_RR_COVERAGE * WINDOW_US / 1000.0
    bounds = PLAUSIBLE[Metric.HEART_RATE]
    ok &= (hr >= bounds.low) & (hr <= bounds.high)
    return ends[ok], hr[ok]


#: PPG pulses this close to a segment's end are not final (the detector's moving averages and
#: zero-phase filter look ahead), and a 10-s quality window needs all of its samples.
PPG_SETTLE_US: Final = 12_000_000
#: Signal either side of a run of acceptable windows given to the pulse detector, s: its filter
#: settles within about a second (as in signals.ppg_quality).
_PPG_CONTEXT_S: Final = 2.0


@dataclass(frozen=True, slots=True)
class PpgBeats:
    """What a PPG segment gives the readings table (times UTC µs, as everywhere)."""

    rr_ts_us: I64  # each pulse interval stamped at its second pulse (stored as RR intervals)
    rr_ms: F64
    hr_ts_us: I64  # whole clock minutes, stamped at their end
    hr_bpm: F64


def ppg_heart_rate_minutes(
    segment: WaveformChunk, *, after_us: int, settled_to_us: int
) -> tuple[I64, F64]:
    """Heart rate of each whole clock minute of a continuous PPG segment (``ppg_beats``)."""
    b = ppg_beats(segment, after_us=after_us, settled_to_us=settled_to_us)
    return b.hr_ts_us, b.hr_bpm


def ppg_beats(segment: WaveformChunk, *, after_us: int, settled_to_us: int) -> PpgBeats:
    """Heart rate per whole clock minute and pulse intervals of a PPG, where they can be trusted.

    A watch or ring may stream its PPG and leave the heart rate to us. Only pulses inside 10-s
    windows that pass the PPG quality gate (``signals.ppg_quality``, Orphanidou 2015) count, and
    pulses are found afresh in each run of consecutive acceptable windows, so motion elsewhere
    neither adds "beats" nor raises the detector's threshold here; each is placed between
    samples by the parabola through its peak (``signals.pulse.refine_peaks``: at 25 Hz a sample
    is 40 ms). A minute's rate is 60 000 over the mean of its pulse intervals (both pulses in
    the same run, 200–3000 ms, within 30 % of the minute's median so a missed or extra pulse
    does not count), as for the ECG (``ecg_beats``), when they cover at least half of it and
    agree within 10 % with the rate the minute's spectrum shows (which catches a detector losing
    every other beat at fast rates); otherwise the minute has none: "not measured" is safer than
    a rate made of motion. Minutes are those ``ecg_beats`` gives (whole, in the segment, ending
    after the minute ``after_us`` falls in, by ``settled_to_us``); the windows sit on the clock's
    10-s grid, so a minute gets the same verdicts whatever earlier data a run loads.

    The pulse intervals returned are those counted in the minutes that got a rate: pulse-rate
    variability, which at rest stands in for heart-rate variability (Schäfer & Vagedes, Int J
    Cardiol 2013;166:15–29). On the test recording at rest their RMSSD is within 1 ms of the
    simultaneous ECG's at 100, 50 and 25 Hz (docs/ppg-respiration.md); nightly HRV cleans them as
    any RR series. The gate's own limits apply: windows above 180/min or with intervals more
    than 2.2 times apart (fast or very irregular rhythms, e.g. some atrial fibrillation) are
    judged unacceptable, so such minutes go unmeasured rather than wrong.
    """
    if segment.kind is not WaveformKind.PPG:
        raise ValueError(f"a pulse rate comes from PPG here, not {segment.kind.value}")
    fs = segment.fs_hz
    origin = -(-segment.start_us // _SQI_GRID_US) * _SQI_GRID_US  # on the clock's 10-s grid
    skip = round((origin - segment.start_us) * fs / 1e6)
    samples = np.asarray(segment.values, dtype=np.float64).ravel()[skip:]
    sqi = ppg_sqi(samples, fs)
    empty_i, empty_f = np.empty(0, np.int64), np.empty(0, np.float64)
    if not sqi.acceptable.any():
        return PpgBeats(empty_i, empty_f, empty_i, empty_f)
    edges = np.diff(sqi.acceptable.astype(np.int8), prepend=0, append=0)
    context = round(_PPG_CONTEXT_S * fs)
    ts_parts: list[I64] = []
    ibi_parts: list[F64] = []
    for start, stop in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        lo, hi = int(start) * sqi.window, int(stop) * sqi.window
        a, b = max(0, lo - context), min(samples.size, hi + context)
        filtered = bandpass_ppg(samples[a:b], fs)
        peaks = pulse_peaks_filtered(filtered, fs)
        inside = peaks[(peaks + a >= lo) & (peaks + a < hi)]
        at = refine_peaks(filtered, inside) + a
        beat_us = origin + np.rint(at * (1e6 / fs)).astype(np.int64)
        ts_parts.append(beat_us[1:])
        ibi_parts.append(np.diff(beat_us) / 1000.0)
    ts = np.concatenate(ts_parts)
    ibi = np.concatenate(ibi_parts)
    bounds = PLAUSIBLE[Metric.RR_INTERVAL]
    usable = (ibi >= bounds.low) & (ibi <= bounds.high)
    usable &= _near_minute_median(ts, ibi, usable)
    ends, bpm = _minute_rates(segment, ts, ibi, usable, after_us, settled_to_us)
    spectral = _spectral_minute_rates(samples, fs, sqi.acceptable, origin, ends)
    agree = np.abs(bpm - spectral) <= MAX_SPECTRAL_DISAGREEMENT * spectral  # NaN: no
    minute_end = -(-ts // WINDOW_US) * WINDOW_US  # the minute an interval counted in
    counted = usable & np.isin(minute_end, ends[agree])
    return PpgBeats(ts[counted], ibi[counted], ends[agree], bpm[agree])


#: Pulse intervals further than this from their minute's median are left out of its rate: a
#: missed pulse doubles an interval and an extra one halves it, and the quality gate tolerates
#: one missed beat in a window (the same rule as ``signals.pulse.heart_rate_bpm``, after Malik
#: et al. 1989). On a steady synthetic pulse at 150-190/min a few missed beats had otherwise
#: pulled a minute 5-15/min low.
MAX_PULSE_DEVIATION: Final = 0.3


def _near_minute_median(
    ts_us: I64, ibi_ms: F64, usable: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    """Per interval: within ``MAX_PULSE_DEVIATION`` of the median usable interval of its minute."""
    minute = -(-ts_us // WINDOW_US)  # the minute whose end is at or after the interval's end
    out = np.zeros(ibi_ms.size, dtype=np.bool_)
    for m in np.unique(minute[usable]):
        here = minute == m
        median = float(np.median(ibi_ms[here & usable]))
        out[here] = np.abs(ibi_ms[here] - median) <= MAX_PULSE_DEVIATION * median
    return out


#: Largest departure of a minute's pulse-count rate from the rate its spectrum shows, as a share
#: of the latter. Above about 185/min the pulse detector (300-ms refractory period, one-beat
#: moving average) misses beats, and a window that loses every other beat still looks regular
#: to the quality gate: synthetic pulses at 198 and 216/min read 100 and 90/min at 25 Hz. The
#: spectrum does not miss beats, so a minute whose count disagrees with it by more than this has
#: no rate. 10 % is well outside how far the two differ on clean signal (spectral peaks of 10-s
#: windows, interpolated: up to 3.8 % on the test recording's clean minutes) and well inside a
#: lost beat in two (50 %).
MAX_SPECTRAL_DISAGREEMENT: Final = 0.10
#: Band searched for the pulse's fundamental, Hz: 30-240 beats/min.
_SPECTRAL_BAND_HZ: Final = (0.5, 4.0)
#: Zero-padded FFT length of a 10-s window: 0.01-Hz bins (0.6 beats/min), before interpolation.
_SPECTRAL_RESOLUTION_HZ: Final = 0.01


def _spectral_minute_rates(
    samples: F64, fs: float, acceptable: npt.NDArray[np.bool_], origin_us: int, ends: I64
) -> F64:
    """Per minute in ``ends``: the median over its acceptable 10-s windows of the window's
    spectral peak in 30-240 beats/min (NaN if none). Windows start at ``origin_us``."""
    out = np.full(ends.size, np.nan)
    window = round(SQI_WINDOW_S * fs)
    idx = np.flatnonzero(acceptable)
    if ends.size == 0 or idx.size == 0:
        return out
    filtered = bandpass_ppg(samples, fs)
    if filtered.size == 0:
        return out
    segs = filtered[idx[:, None] * window + np.arange(window)]
    segs = (segs - segs.mean(axis=1, keepdims=True)) * np.hanning(window)
    n_fft = max(window, int(2 ** math.ceil(math.log2(fs / _SPECTRAL_RESOLUTION_HZ))))
    power = np.abs(np.fft.rfft(segs, n=n_fft, axis=1)) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1.0 / fs)
    band = np.flatnonzero((freqs >= _SPECTRAL_BAND_HZ[0]) & (freqs <= _SPECTRAL_BAND_HZ[1]))
    k = band[np.argmax(power[:, band], axis=1)]
    # Parabolic interpolation of the peak on the log power (Gasior & Gonzalez 2004).
    lo, mid, hi = (np.log(power[np.arange(k.size), j] + 1e-300) for j in (k - 1, k, k + 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = np.nan_to_num(0.5 * (lo - hi) / (lo - 2 * mid + hi))
    peak_bpm = 60.0 * (k + np.clip(shift, -0.5, 0.5)) * fs / n_fft
    window_end = origin_us + (idx + 1) * round(SQI_WINDOW_S * 1e6)
    minute = np.searchsorted(ends, window_end, side="left")
    for m in range(ends.size):
        mine = peak_bpm[minute == m]
        if mine.size:
            out[m] = float(np.median(mine))
    return out


def _highpassed(values: F64, fs: float) -> F64:
    """The ECG without its baseline wander (0.5 Hz), for comparing beat shapes."""
    if values.size <= 3 * round(_SHAPE_HALF_S * fs):
        return values
    sos = signal.butter(2, 0.5, btype="highpass", fs=fs, output="sos")
    return np.asarray(signal.sosfiltfilt(sos, values), dtype=np.float64)


#: A beat has the dominant shape if its waveform (±200 ms around the R peak, baseline removed)
#: correlates at least this well with the pointwise median of the beats of its clock minute and
#: the minute before. A ventricular ectopic beat is wide and differently shaped, so it falls
#: below. Chosen on MIT-BIH 106 (frequent PVCs; 0.85, 0.9, 0.95 and ±100, 150, 200 ms compared):
#: 510 of its 519 detected PVCs flagged, 1 of 1,507 normal beats. Checked on 100 and 105
#: (tests/unit/test_ecg_nn.py): 3 of record 100's 2,238 normal beats flagged; in the very noisy
#: 105 280 of 2,527 (their waveform is mostly noise, so their timing is too) and only 7 of 41
#: PVCs, which there look like the noisy normal beats; RR-only cleaning
#: (``signals.hrv.clean_nn``) still runs after this, for what shape cannot see.
MIN_BEAT_MATCH: Final = 0.9
_SHAPE_HALF_S: Final = 0.2


def dominant_shape(x: F64, fs: float, peaks: I64, beat_us: I64) -> npt.NDArray[np.bool_]:
    """Per beat: True if its QRS has the dominant shape (``MIN_BEAT_MATCH``), else False.

    ``x`` is the high-passed ECG (``_highpassed``). The template of clock minute *m* is the
    pointwise median of the beats of minutes *m* - 1 and *m*: the median, not the mean, so that
    ectopic beats (a quarter of 106's) do not drag it, and only past data, so that a run which
    loads the minute before as context judges a beat as a later run would. A beat too near the
    segment's ends for a whole waveform, or in a minute with fewer than 3 beats, is not judged
    normal: losing an interval costs HRV little, counting an ectopic one costs more.
    """
    out = np.zeros(peaks.size, dtype=bool)
    half = round(_SHAPE_HALF_S * fs)
    whole = (peaks - half >= 0) & (peaks + half < x.size)
    idx = np.flatnonzero(whole)
    if idx.size < 3:
        return out
    waves = x[peaks[idx, None] + np.arange(-half, half + 1)]
    waves -= waves.mean(axis=1, keepdims=True)
    minute = beat_us[idx] // WINDOW_US
    for m in np.unique(minute):
        pool = (minute == m) | (minute == m - 1)
        if np.count_nonzero(minute == m) < 3:
            continue
        template = np.median(waves[pool], axis=0)
        here = np.flatnonzero(minute == m)
        norms = np.sqrt(np.sum(waves[here] ** 2, axis=1) * float(template @ template))
        with np.errstate(invalid="ignore", divide="ignore"):
            match = (waves[here] @ template) / norms
        out[idx[here]] = np.nan_to_num(match) >= MIN_BEAT_MATCH
    return out


def _alike_minutes(x: F64, fs: float, peaks: I64, beat_us: I64) -> npt.NDArray[np.bool_]:
    """Per beat: whether the clock minute it falls in passes the QRS-similarity gate."""
    out = np.zeros(peaks.size, dtype=bool)
    half = round(_QRS_HALF_S * fs)
    if peaks.size < 3 or x.size <= 3 * half:
        return out
    minute = beat_us // WINDOW_US
    whole = (peaks - half >= 0) & (peaks + half < x.size)
    for m in np.unique(minute):
        here = np.flatnonzero((minute == m) & whole)
        if here.size < 3:
            continue
        waves = x[peaks[here, None] + np.arange(-half, half + 1)]
        waves -= waves.mean(axis=1, keepdims=True)
        template = waves.mean(axis=0)
        norms = np.sqrt(np.sum(waves**2, axis=1) * float(np.sum(template**2)))
        if np.all(norms > 0) and float(np.mean(waves @ template / norms)) >= MIN_QRS_CORRELATION:
            out[minute == m] = True
    return out
