"""A synthetic single-lead ECG from a chest patch, driven by the simulated patient's own heart.

Some chest patches stream their ECG and leave the heart rate and beat-to-beat intervals to the
receiving end (``wardwatch.derive.derive_beats``). To test that chain without patients, and the
alert when the electrodes come off (``storage.devices.unusable_heart_signal``), the simulator
needs an ECG that carries what the derive job reads:

- **Beats** at the minute's heart rate with respiratory sinus arrhythmia and jitter, drawn as
  the PPG's are (``simulator.heart``).
- **Each beat** a sum of Gaussian waves, P, Q, R, S and T, as in McSharry et al.'s dynamical
  model (IEEE Trans Biomed Eng 2003;50(3):289–94), which places them by angle around a limit
  cycle; here by time around the R peak, the T wave moving with the interval (Bazett's √RR).
  Lead II-like amplitudes: R 1 mV, P 0.12, T 0.3, Q −0.08, S −0.2.
- **Breathing** moves the baseline (±0.05 mV) and the QRS amplitude (±5 %), as chest movement
  and the heart's axis do.
- **Walking** adds motion artefact and muscle noise (baseline swings of 0.3 mV at 0.5–2 Hz,
  0.05 mV of broadband noise); **electrodes off** (the model's "not worn" minutes) leaves mains
  hum and noise with no heart in it.

Pure numpy, generated an hour at a time and continued across hours (``HeartState``), like
``simulator.ppg``. Values in millivolts.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

from simulator.heart import HeartState, heartbeats

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]

#: Sampling rates the simulated ECG supports: patches stream 125–256 Hz, Holters up to 1 kHz;
#: from 120 Hz the R wave (σ 10 ms) still spans a few samples and mains hum is below Nyquist.
FS_RANGE_HZ: Final = (120.0, 500.0)
#: (amplitude mV, offset s from the R peak at RR = 1 s, width σ s, offset scales with √RR).
WAVES: Final = (
    (0.12, -0.16, 0.025, False),  # P
    (-0.08, -0.025, 0.008, False),  # Q
    (1.0, 0.0, 0.010, False),  # R
    (-0.2, 0.03, 0.010, False),  # S
    (0.3, 0.25, 0.05, True),  # T: the QT interval shortens with the RR interval
)
BASELINE_MV: Final = 0.05
AMPLITUDE_MODULATION: Final = 0.05
NOISE_MV: Final = 0.01
MOTION_MV: Final = 0.3
MUSCLE_MV: Final = 0.05
MAINS_MV: Final = 0.3


def ecg_block(
    rng: np.random.Generator,
    *,
    fs_hz: float,
    heart_rate: npt.ArrayLike,
    resp_rate: npt.ArrayLike,
    worn: npt.ArrayLike,
    walking: npt.ArrayLike,
    state: HeartState | None = None,
) -> tuple[F32, HeartState]:
    """Return ``60 · fs_hz`` samples (mV) per minute for these minutes, and the state to continue.

    One entry per minute in each array, as ``simulator.ppg.ppg_block``: NaN rates take the last
    known value, ``walking`` adds motion artefact, not ``worn`` is electrodes off.
    """
    low, high = FS_RANGE_HZ
    if not low <= fs_hz <= high:
        raise ValueError(f"ECG rate must be {low:g}-{high:g} Hz, not {fs_hz!r}")
    h = heartbeats(rng, fs_hz=fs_hz, heart_rate=heart_rate, resp_rate=resp_rate, state=state)
    t, per_min, hr, phase, beat_s = h.t, h.per_min, h.hr, h.phase, h.beat_s
    n = t.size
    on = np.asarray(worn, dtype=np.bool_)
    moving = np.asarray(walking, dtype=np.bool_)
    x = BASELINE_MV * np.sin(phase) + NOISE_MV * rng.standard_normal(n)
    if beat_s.size:
        rr = np.diff(beat_s, append=beat_s[-1] + 60.0 / hr[-1])
        gain = 1 + AMPLITUDE_MODULATION * np.sin(np.interp(beat_s, t, phase))
        reach = round(0.6 * fs_hz)  # P 0.2 s before the R peak, T up to 0.5 s after
        offsets = np.arange(-reach // 2, reach)
        for beat, g, interval in zip(beat_s, gain, rr, strict=True):
            i = round(beat * fs_hz) + offsets
            i = i[(i >= 0) & (i < n)]
            dt = t[i] - beat
            stretch = math.sqrt(min(interval, 1.5))
            for amp, at, width, qt in WAVES:
                scale = stretch if qt else 1.0
                x[i] += g * amp * np.exp(-0.5 * ((dt - at * scale) / (width * scale)) ** 2)
    if moving.any():
        x += np.repeat(moving, per_min)[:n] * _motion(rng, t)
    off = np.repeat(~on, per_min)[:n]
    if off.any():
        hum = MAINS_MV * np.sin(2 * math.pi * 50.0 * t[off] + rng.uniform(0, 2 * math.pi))
        x[off] = hum + 0.05 * rng.standard_normal(int(off.sum()))
    return x.astype(np.float32), h.after


def _motion(rng: np.random.Generator, t: F64) -> F64:
    """Electrode movement and muscle: baseline swings at 0.5–2 Hz plus broadband noise."""
    f = rng.uniform(0.5, 2.0, 3)
    swing = sum(np.sin(2 * math.pi * fk * t + rng.uniform(0, 2 * math.pi)) for fk in f) / 3
    return np.asarray(MOTION_MV * swing + MUSCLE_MV * rng.standard_normal(t.size), dtype=np.float64)
