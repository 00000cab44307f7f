"""A synthetic wrist or finger PPG driven by the simulated patient's own heart and breathing rates.

Some watches and rings stream their photoplethysmogram and leave the heart and breathing rates to
the receiving end (``wardwatch.derive.derive_pulse`` and ``derive_resp_rate``). To test that chain
without patients the simulator needs a PPG that carries what those jobs read:

- **Beats** at the minute's heart rate, each interval modulated by breathing (respiratory sinus
  arrhythmia) plus a little jitter: ``simulator.heart``, shared with the ECG.
- **The pulse wave**: a systolic Gaussian and a smaller, later diastolic one, as in the test
  signals of ``tests/unit/test_ppg_quality.py``, its width shrinking with the interval.
- **Breathing's other two modulations** (Karlen et al. 2013): the pulse amplitude (±15 %) and the
  baseline (±20 % of the pulse amplitude) swing at the breathing rate.
- **Motion** while walking: slow swings and broadband bursts several times the pulse amplitude,
  which the quality gate (Orphanidou 2015) is there to reject. **Off the wrist** (charging,
  washing): the sensor sees ambient light, a small flat signal with noise.

Pure numpy, generated an hour at a time and continued exactly across hours (``HeartState``), like
``simulator.motion``. Values are arbitrary units around 0, as a device's AC-coupled PPG.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

from simulator.heart import HeartState, heartbeats

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]

#: Sampling rates the simulated PPG supports: wearables stream 25-100 Hz, and the pulse detector
#: is specified from 20 Hz (signals.pulse).
FS_RANGE_HZ: Final = (20.0, 100.0)
AMPLITUDE_MODULATION: Final = 0.15
BASELINE_MODULATION: Final = 0.20
#: Motion artefact, as a multiple of the pulse amplitude (the quality tests flag 4-8 times).
MOTION_SCALE: Final = 3.0
NOISE_SD: Final = 0.02


def ppg_block(
    rng: np.random.Generator,
    *,
    fs_hz: float,
    heart_rate: npt.ArrayLike,
    resp_rate: npt.ArrayLike,
    worn: npt.ArrayLike,
    walking: npt.ArrayLike,
    state: HeartState | None = None,
) -> tuple[F32, HeartState]:
    """Return ``60 · fs_hz`` samples per minute for these minutes, and the state to continue.

    One entry per minute in each array. A minute's ``heart_rate`` and ``resp_rate`` (per minute)
    set its beats and breathing; NaN takes the last known value (a dropout in the reported vital
    sign, not in the heart). ``walking`` adds motion artefact; not ``worn`` replaces the minute
    with the sensor's ambient-light floor.
    """
    low, high = FS_RANGE_HZ
    if not low <= fs_hz <= high:
        raise ValueError(f"PPG rate must be {low:g}-{high:g} Hz, not {fs_hz!r}")
    # Beats at each minute's rate, stretched and shrunk with the breath (simulator.heart).
    h = heartbeats(rng, fs_hz=fs_hz, heart_rate=heart_rate, resp_rate=resp_rate, state=state)
    t, per_min, hr, phase, beat_s = h.t, h.per_min, h.hr, h.phase, h.beat_s
    n = t.size
    on = np.asarray(worn, dtype=np.bool_)
    moving = np.asarray(walking, dtype=np.bool_)
    x = np.zeros(n)
    if beat_s.size:
        intervals = np.diff(beat_s, append=beat_s[-1] + 60.0 / hr[-1])
        amplitude = 1 + AMPLITUDE_MODULATION * np.sin(np.interp(beat_s, t, phase))
        width = 0.12 * intervals  # a systolic wave ~ 0.1 s at 60/min
        reach = np.ceil(0.9 * intervals.max() * fs_hz).astype(int)
        offsets = np.arange(-reach // 3, reach)
        for beat, amp, w, iv in zip(beat_s, amplitude, width, intervals, strict=True):
            i = np.round(beat * fs_hz).astype(int) + offsets
            ok = (i >= 0) & (i < n)
            dt = t[i[ok]] - beat
            x[i[ok]] += amp * (
                np.exp(-0.5 * (dt / (0.5 * w)) ** 2)
                + 0.4 * np.exp(-0.5 * ((dt - 0.3 * iv) / (0.6 * w)) ** 2)
            )
    x -= 0.4  # about zero mean, as an AC-coupled PPG
    x += BASELINE_MODULATION * np.sin(phase)
    x += NOISE_SD * rng.standard_normal(n)
    if moving.any():
        x += np.repeat(moving, per_min)[:n] * _motion(rng, n, fs_hz)
    off = np.repeat(~on, per_min)[:n]
    x[off] = 0.01 * rng.standard_normal(int(off.sum()))
    return x.astype(np.float32), h.after


def _motion(rng: np.random.Generator, n: int, fs: float) -> F64:
    """Arm movement: swings at 0.5-2 Hz and bursts of 1-8 Hz noise, MOTION_SCALE × the pulse."""
    t = np.arange(n) / fs
    f = rng.uniform(0.5, 2.0, 3)
    swing = sum(np.sin(2 * math.pi * fk * t + rng.uniform(0, 2 * math.pi)) for fk in f) / 3
    noise = rng.standard_normal(n)
    kernel = np.ones(max(1, round(fs / 8))) / max(1, round(fs / 8))
    burst = np.convolve(noise, kernel, mode="same")
    gate = (np.sin(2 * math.pi * 0.4 * t + rng.uniform(0, 2 * math.pi)) > 0).astype(float)
    return np.asarray(MOTION_SCALE * (swing + 2.0 * gate * burst / burst.std()), dtype=np.float64)
