"""When the simulated heart beats and where the breath is: shared by the PPG and the ECG.

Both waveforms draw their beats the same way from the same patient model, each interval at its
minute's heart rate and modulated by breathing (respiratory sinus arrhythmia, ±4 % of the
interval; Hirsch & Bishop 1981 report a few per cent at rest) plus a little beat-to-beat jitter,
continued exactly across the hours they are generated in. Pure numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

RSA_FRACTION: Final = 0.04
JITTER_FRACTION: Final = 0.01
#: Heart and breathing rates used where the minute has none (a sensor dropout in the vitals).
DEFAULT_HR_BPM: Final = 70.0
DEFAULT_RESP_BPM: Final = 15.0


def held(values: F64, default: float) -> F64:
    """NaN entries take the last finite value before them (``default`` before the first)."""
    out = values.copy()
    last = default
    for i, v in enumerate(out.tolist()):
        if math.isfinite(v) and v > 0:
            last = v
        else:
            out[i] = last
    return out


def breath_phase(br: F64, minute_of: npt.NDArray[np.int64], fs_hz: float, start: float) -> F64:
    """The breath's phase (radians) at each sample, advancing at each minute's rate ``br``."""
    return np.asarray(start + 2 * math.pi * np.cumsum(br[minute_of] / 60.0) / fs_hz)


def beat_times(
    rng: np.random.Generator, hr: F64, br: F64, *, span_s: float, start_phase: float, first_s: float
) -> tuple[F64, float]:
    """Beat times (s from the block's start) from ``first_s`` to ``span_s``, and the first beat
    after the block (s after its end), one rate per minute in ``hr`` and ``br``."""
    n_min = hr.size
    beats: list[float] = []
    b = first_s
    while b < span_s:
        beats.append(b)
        k = min(int(b // 60), n_min - 1)
        breath = start_phase + 2 * math.pi * (b * br[k] / 60.0)
        interval = 60.0 / hr[k] * (1 + RSA_FRACTION * math.sin(breath))
        b += interval * (1 + JITTER_FRACTION * rng.standard_normal())
    return np.asarray(beats, dtype=np.float64), b - span_s


@dataclass(frozen=True, slots=True)
class HeartState:
    """Where one block ended, so the next continues it: the next beat's time and the breath's
    phase, both relative to the end of the block."""

    next_beat_s: float
    breath_phase: float


@dataclass(frozen=True, slots=True)
class Heartbeats:
    """A block's timing: what a waveform of it is drawn on."""

    t: F64  # each sample's time, s from the block's start
    per_min: int  # samples per minute
    hr: F64  # each minute's heart rate, dropouts held
    phase: F64  # the breath's phase at each sample
    beat_s: F64  # the beats, s from the block's start
    after: HeartState  # where the next block continues


def heartbeats(
    rng: np.random.Generator,
    *,
    fs_hz: float,
    heart_rate: npt.ArrayLike,
    resp_rate: npt.ArrayLike,
    state: HeartState | None,
) -> Heartbeats:
    """The beats and breath of a block of minutes (one rate each in ``heart_rate`` and
    ``resp_rate``, NaN: the last known), sampled at ``fs_hz``, continuing ``state``."""
    hr = held(np.asarray(heart_rate, dtype=np.float64), DEFAULT_HR_BPM)
    br = held(np.asarray(resp_rate, dtype=np.float64), DEFAULT_RESP_BPM)
    per_min = round(60 * fs_hz)
    n = hr.size * per_min
    t = np.arange(n) / fs_hz
    minute_of = np.minimum((t // 60).astype(np.int64), hr.size - 1)
    start_phase = rng.uniform(0, 2 * math.pi) if state is None else state.breath_phase
    phase = breath_phase(br, minute_of, fs_hz, start_phase)
    first = rng.uniform(0, 60.0 / hr[0]) if state is None else state.next_beat_s
    beat_s, next_beat = beat_times(rng, hr, br, span_s=n / fs_hz, start_phase=start_phase,
                                   first_s=first)  # fmt: skip
    after = HeartState(next_beat_s=next_beat, breath_phase=float(phase[-1]) % (2 * math.pi))
    return Heartbeats(t, per_min, hr, phase, beat_s, after)
