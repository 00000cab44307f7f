"""Vital signs a device did not send, derived from a waveform it did: breathing rate from PPG.

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
from typing import Final

import numpy as np

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
