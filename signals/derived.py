"""Vital signs a device did not send, derived from a waveform it did: breathing rate from PPG,
beat-to-beat intervals and heart rate from ECG.

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

from signals.beats import ecg_r_peaks
from signals.ppg_quality import acceptable_share, ppg_sqi
from signals.respiration import resp_rates_from_ppg
from signals.vitals import F64, I64, PLAUSIBLE, Metric
from signals.waveforms import WaveformChunk, WaveformKind

WINDOW_US = 60_000_000  # one estimate per whole minute
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
    pass some seconds before ``after_us`` as context: an interval needs the beat before it.
    Kept: intervals whose second beat lies in ``(after_us, settled_to_us]`` and within the
    plausible 200–3000 ms (a shorter one is a false detection, a longer one a missed beat);
    HRV's cleaning of ectopic beats happens where HRV is computed (``signals.daily``). And the
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
    alike = _alike_minutes(values, segment.fs_hz, peaks, beat_us)
    rr_ms = np.diff(beat_us) / 1000.0
    rr_ts = beat_us[1:]
    bounds = PLAUSIBLE[Metric.RR_INTERVAL]
    plausible = (rr_ms >= bounds.low) & (rr_ms <= bounds.high) & alike[1:]
    keep = plausible & (rr_ts > after_us) & (rr_ts <= settled_to_us)

    # Whole clock minutes inside the segment, ending after the minute ``after_us`` falls in and
    # by ``settled_to_us``: a run that stopped mid-minute left that minute to this one.
    first = max(-(-segment.start_us // WINDOW_US), after_us // WINDOW_US) * WINDOW_US
    last = min(segment.end_us, settled_to_us) // WINDOW_US * WINDOW_US
    ends = np.arange(first + WINDOW_US, last + 1, WINDOW_US, dtype=np.int64)
    minute = np.searchsorted(ends, rr_ts, side="left")  # the minute whose end is at or after
    inside = plausible & (rr_ts > first) & (rr_ts <= last)
    covered = np.bincount(minute[inside], weights=rr_ms[inside], minlength=ends.size)
    count = np.bincount(minute[inside], minlength=ends.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        hr = 60_000.0 * count / covered
    ok = covered[: ends.size] >= MIN_RR_COVERAGE * WINDOW_US / 1000.0
    hr_bounds = PLAUSIBLE[Metric.HEART_RATE]
    ok &= (hr[: ends.size] >= hr_bounds.low) & (hr[: ends.size] <= hr_bounds.high)
    return EcgBeats(rr_ts[keep], rr_ms[keep], ends[ok], hr[: ends.size][ok])


def _alike_minutes(values: F64, fs: float, peaks: I64, beat_us: I64) -> npt.NDArray[np.bool_]:
    """Per beat: whether the clock minute it falls in passes the QRS-similarity gate."""
    out = np.zeros(peaks.size, dtype=bool)
    half = round(_QRS_HALF_S * fs)
    if peaks.size < 3 or values.size <= 3 * half:
        return out
    sos = signal.butter(2, 0.5, btype="highpass", fs=fs, output="sos")
    x = signal.sosfiltfilt(sos, values)
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
