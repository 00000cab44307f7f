"""Vital signs a device did not send, derived from a waveform it did: breathing rate from PPG.

Many wrist and finger devices stream a PPG but report no respiratory rate, and respiratory rate
is the NEWS2 parameter that moves first in sepsis and pneumonia. ``signals.respiration`` estimates
it from the PPG's respiratory modulations; this module turns a stored, continuous PPG segment into
one estimate per whole minute of wall time, stamped at the minute's end, so that repeated runs over
overlapping data give the same minutes and the same values (idempotent by key).
"""

from __future__ import annotations

import numpy as np

from signals.respiration import resp_rates_from_ppg
from signals.vitals import F64, I64, PLAUSIBLE, Metric
from signals.waveforms import WaveformChunk, WaveformKind

WINDOW_US = 60_000_000  # one estimate per whole minute


def resp_rate_minutes(segment: WaveformChunk, *, after_us: int) -> tuple[I64, F64]:
    """Breaths/min for each whole wall-clock minute of ``segment`` ending after ``after_us``.

    Minutes are aligned to the clock (``ts % 60 s == 0``), not to the segment's first sample, so
    that the same minute gets the same window however the data arrived. A minute whose estimate
    is not trustworthy (the three modulations disagree, a flat or noisy stretch) is left out
    rather than guessed; so is one outside the plausible range.
    """
    if segment.kind is not WaveformKind.PPG:
        raise ValueError(f"breathing rate comes from PPG, not {segment.kind.value}")
    fs = segment.fs_hz
    first_minute = -(-segment.start_us // WINDOW_US) * WINDOW_US  # the first whole minute
    skip = round((first_minute - segment.start_us) * fs / 1e6)
    samples = np.asarray(segment.values, dtype=np.float64).ravel()[skip:]
    rates = resp_rates_from_ppg(samples, fs, window_s=WINDOW_US / 1e6)
    ends = first_minute + WINDOW_US * np.arange(1, rates.size + 1, dtype=np.int64)
    bounds = PLAUSIBLE[Metric.RESP_RATE]
    keep = (ends > after_us) & np.isfinite(rates) & (rates >= bounds.low) & (rates <= bounds.high)
    return ends[keep], rates[keep]
