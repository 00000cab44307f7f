"""Raw wrist acceleration, sample by sample, from the minute model's states.

Pure and deterministic: numpy only, no I/O, no clock. :func:`wrist_accel` turns per-minute
states (asleep, walking, steps, worn, severity: ``PatientModel.minute_states``) into what a
wrist-worn triaxial accelerometer measures, in g, shape ``(n, 3)`` float32, so that the chain
that derives activity, wear and sleep from raw acceleration can be exercised without patients.

What is modelled, and the assumptions behind it:

* **Gravity.** At rest the sensor reads 1 g pointing up, in a wrist orientation (a *posture*)
  that stays fixed while the arm is still. Postures change with a short movement (a smoothstep
  turn of 0.5-6 s with a burst of linear acceleration):

  - *asleep*: every 10-60 min (the wearer's mean 20-40 min, each interval 0.5-1.5 times it),
    slower by up to 2x in the unwell; the arm may lie in any orientation, and each change moves
    the z-angle (the arm's elevation, atan(z / sqrt(x² + y²))) by at least 10°, so the 5°
    criterion of van Hees et al. 2015 (PLoS One 10(11):e0142533) sees every one; between
    changes only breathing-sized wobble (~0.2°), so the 5-min sustained inactivity bouts are
    there;
  - *awake, not walking*: every 0.5-4.5 min (the wearer's mean 1-3 min, up to 4x slower in the
    unwell), with the forearm resting watch face up to sideways (z-angle -20° to 80°) and
    continuous small arm movements: orientation wobble of ~2° and bursts of linear acceleration,
    so that a minute's ENMO is typically 10-40 mg, as for sedentary and light tasks at the wrist
    (Bakrania et al. 2016, PLoS One 11(10):e0164045; Hildebrand et al. 2014, Med Sci Sports
    Exerc 46(9):1816 put "light" at 40 mg and MVPA at ~100 mg);
  - *walking*: the arm hangs and swings like a pendulum from the shoulder (r = 0.6 m, ±20-28°)
    at half the step frequency, which is 1.6-2.0 Hz (96-120 steps/min), with the body's vertical
    bounce at the step frequency; the wrist then measures gravity rotating with the arm plus the
    swing's tangential and centripetal accelerations, ENMO ~100-300 mg over a minute of walking
    (slow to brisk walking at the wrist lies around and above Hildebrand et al. 2014's ~100 mg
    MVPA threshold). The walk fills ``steps / step rate`` seconds of its minute, so the steps a
    device reports and the walking its accelerometer shows agree; a walk that starts in a
    minute runs to that minute's end, and on from the start of the next if it walks too;
  - *off the wrist* (``worn`` False: charging, washing, taken off): lying flat on a table, face
    up (tilted < 2°) or now and then face down, perfectly still: only sensor noise, so van Hees
    et al. 2013's (PLoS One 8(4):e61691) non-wear rule (SD < 13 mg, range < 50 mg over 60 min on
    two axes) finds it; taking it off and putting it on are handled for a few seconds.

* **Sensor.** White noise of 3-4.5 mg SD per axis (the few mg RMS of consumer MEMS
  accelerometers at wearable rates); a per-device calibration error, measured = offset + scale
  · true, offsets within ±50 mg (SD 25 mg) and scales 0.97-1.03 per axis, the kind of error
  autocalibration (van Hees et al. 2014, J Appl Physiol 117(7):738) exists to remove:
  uncalibrated, a still wrist's ENMO carries up to tens of mg of error, so calibration matters.

* **Illness.** ``severity`` (0 well, 1 at the scenario's worst) makes the wearer move less: fewer
  and smaller posture changes, smaller fidgets, a shorter arm swing. (The minute model already
  keeps the unwell from walking.)

Continuity: :func:`wrist_accel_block` also returns a :class:`WristState` (posture, what the
wearer was doing, time to the next posture change, gait phase) to pass to the next block, so a
long recording can be generated block by block (an hour at a time in ``simulator.stream``) with
no seams. Vectorised: a day at 25 Hz (2.16 M samples) takes about a fifth of a second.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
Vector = tuple[float, float, float]

__all__ = [
    "FS_RANGE_HZ",
    "Mode",
    "WristProfile",
    "WristState",
    "draw_wrist",
    "wrist_accel",
    "wrist_accel_block",
]

#: Sampling rates offered: a wrist accelerometer needs 5 Hz to see a 2 Hz gait at all; above
#: 100 Hz nothing wrist-borne is gained and JSON volume grows.
FS_RANGE_HZ = (5.0, 100.0)

_G_MS2 = 9.80665  # standard gravity: the pendulum's accelerations are computed in m/s²
_ARM_M = 0.6  # shoulder to wrist
_SWING_AXIS = np.array([0.0, 0.0, 1.0])  # the watch face faces outward while the arm swings
_BAND_KNOT_S = 0.2  # linear acceleration of arm movements: knots at 5 Hz, linearly joined
_SLOW_KNOT_S = 1.0  # orientation wobble and the fidget envelope: knots each second
# Orientation wobble (rad, SD per axis) by mode: a still sleeper breathes; an awake arm drifts.
_WOBBLE_RAD = {0: 0.0, 1: 0.004, 2: 0.035, 3: 0.02}
_FIDGET_ACTIVE_P = 0.45  # share of an awake, seated second with some arm movement
_WALK_RAMP_S = 1.0  # arm swing builds up and dies down over a second at each end of a walk


class Mode(enum.IntEnum):
    """What the wrist is doing."""

    OFF = 0  # not worn: lying on a table or charger
    SLEEP = 1
    SIT = 2  # awake, not walking
    WALK = 3


@dataclass(frozen=True, slots=True)
class WristProfile:
    """One device on one wearer: its sensor errors and the wearer's ways of moving."""

    offset_g: Vector  # calibration error: measured = offset + scale · true
    scale: Vector
    noise_g: float  # sensor noise SD per axis
    sleep_change_min: float  # mean time between posture changes asleep
    sit_change_min: float  # ... awake and not walking
    fidget_g: float  # typical linear acceleration of small arm movements while seated
    step_hz: float  # usual step frequency when walking
    swing_rad: float  # arm swing amplitude when walking
    bounce_g: float  # vertical acceleration of the body's bounce at each step
    walk_up: Vector  # where "up" points in the device's frame while the arm hangs

    def calibrated(self) -> WristProfile:
        """The same wearer with a perfectly calibrated sensor (zero offset, unit scale)."""
        return replace(self, offset_g=(0.0, 0.0, 0.0), scale=(1.0, 1.0, 1.0))


@dataclass(frozen=True, slots=True)
class WristState:
    """What one block hands to the next so that the signal continues without a seam."""

    up: Vector  # unit vector: the posture reached at the end of the block
    mode: Mode
    to_next_min: float  # minutes until the next posture change (asleep or seated)
    walk_to_end: bool  # the block ended mid-walk: the next minute's walk starts at once
    phase: float  # gait phase, radians


def draw_wrist(seed: int | Sequence[int] | np.random.Generator) -> WristProfile:
    """Draw a device's calibration error and its wearer's movement habits."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    offset = np.clip(rng.normal(0.0, 0.025, 3), -0.05, 0.05)
    scale = rng.uniform(0.97, 1.03, 3)
    # Hanging arm: up is along the forearm (-x, toward the elbow), tilted 10-30° toward the face
    # by the elbow's bend and 0-20° sideways by the wrist's turn.
    bend, turn = np.radians(rng.uniform(10.0, 30.0)), np.radians(rng.uniform(-20.0, 20.0))
    walk_up = _unit(np.array([-math.cos(bend), math.sin(bend) * math.sin(turn), math.sin(bend)]))
    return WristProfile(
        offset_g=_vector(offset),
        scale=_vector(scale),
        noise_g=float(rng.uniform(0.003, 0.0045)),
        sleep_change_min=float(rng.uniform(20.0, 40.0)),
        sit_change_min=float(rng.uniform(1.0, 3.0)),
        fidget_g=float(rng.uniform(0.07, 0.12)),
        step_hz=float(rng.uniform(1.6, 2.0)),
        swing_rad=float(np.radians(rng.uniform(20.0, 28.0))),
        bounce_g=float(rng.uniform(0.1, 0.2)),
        walk_up=_vector(walk_up),
    )


def wrist_accel(
    rng: np.random.Generator,
    *,
    fs_hz: float,
    asleep: npt.ArrayLike,
    walking: npt.ArrayLike,
    worn: npt.ArrayLike,
    steps: npt.ArrayLike | None = None,
    severity: npt.ArrayLike | None = None,
    wrist: WristProfile | None = None,
    state: WristState | None = None,
) -> F32:
    """Acceleration in g, shape ``(60 · fs_hz · minutes, 3)`` float32, for these minutes.

    One entry per minute in each array. ``steps`` (per minute) sets how much of a minute is
    spent walking; without it a walking minute is walked throughout. ``severity`` (0-1) damps
    movement. ``wrist`` is the device and wearer (None: drawn from ``rng``); ``state`` continues
    an earlier block (None: a fresh start). See :func:`wrist_accel_block`.
    """
    values, _ = wrist_accel_block(
        rng,
        fs_hz=fs_hz,
        asleep=asleep,
        walking=walking,
        worn=worn,
        steps=steps,
        severity=severity,
        wrist=wrist,
        state=state,
    )
    return values


def wrist_accel_block(
    rng: np.random.Generator,
    *,
    fs_hz: float,
    asleep: npt.ArrayLike,
    walking: npt.ArrayLike,
    worn: npt.ArrayLike,
    steps: npt.ArrayLike | None = None,
    severity: npt.ArrayLike | None = None,
    wrist: WristProfile | None = None,
    state: WristState | None = None,
) -> tuple[F32, WristState]:
    """:func:`wrist_accel`, and the state to continue from in the next block."""
    per_minute = 60.0 * fs_hz
    if not (FS_RANGE_HZ[0] <= fs_hz <= FS_RANGE_HZ[1] and per_minute.is_integer()):
        raise ValueError(
            f"fs_hz must be {FS_RANGE_HZ[0]:g}-{FS_RANGE_HZ[1]:g} Hz with a whole number of "
            f"samples a minute, not {fs_hz!r}"
        )
    asleep_m = np.asarray(asleep, dtype=np.bool_)
    minutes = asleep_m.size
    walking_m = _column(walking, minutes, "walking").astype(np.bool_)
    worn_m = _column(worn, minutes, "worn").astype(np.bool_)
    sev = np.clip(_column(0.0 if severity is None else severity, minutes, "severity"), 0.0, 1.0)
    steps_m = None if steps is None else _column(steps, minutes, "steps")
    if wrist is None:
        wrist = draw_wrist(rng)
    mode_m = np.where(~worn_m, Mode.OFF, np.where(asleep_m, Mode.SLEEP, Mode.SIT))
    if state is None:
        state = _fresh_state(rng, Mode(int(mode_m[0])) if minutes else Mode.SIT, wrist)
    if minutes == 0:
        return np.empty((0, 3), dtype=np.float32), state

    # Step frequency of each minute: the wearer's own, a little slower when unwell.
    step_hz = wrist.step_hz * (1.0 - 0.1 * sev) * np.exp(rng.normal(0.0, 0.03, minutes))
    segments, walk_to_end = _segments(
        rng, mode_m, walking_m, steps_m, step_hz, state.walk_to_end and state.mode is Mode.WALK
    )
    events, end = _events(rng, segments, sev, wrist, state, minutes * 60.0)
    n = int(minutes * per_minute)
    xyz, phase = _synthesise(
        rng, n, fs_hz, segments, events, sev, step_hz, wrist, np.array(state.up), state.phase
    )
    end_state = WristState(
        up=end.up, mode=end.mode, to_next_min=end.to_next_min, walk_to_end=walk_to_end,
        phase=phase,
    )  # fmt: skip
    return xyz, end_state


# --- which posture when ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Segments:
    """Stretches of constant mode, in seconds from the block's start."""

    start_s: F64
    end_s: F64
    mode: I64


@dataclass(frozen=True, slots=True)
class _Events:
    """Posture changes: when each starts (s), how long it takes (s), the burst (g), the result."""

    at_s: F64
    took_s: F64
    burst_g: F64
    up: F64  # (k, 3)


def _segments(
    rng: np.random.Generator,
    mode_m: npt.NDArray[np.int_],
    walking: Bools,
    steps: F64 | None,
    step_hz: F64,
    walking_on: bool,
) -> tuple[_Segments, bool]:
    """Split the minutes into stretches of one mode, placing each minute's walk in it."""
    if steps is None:
        walk_s = np.where(walking, 60.0, 0.0)
    else:
        walk_s = np.minimum(np.maximum(steps, 0.0) / step_hz, 60.0)
    walk_s = np.where(mode_m == Mode.SIT, walk_s, 0.0)
    place = rng.random(mode_m.size)  # where a short walk falls in an otherwise seated minute
    starts: list[float] = []
    modes: list[int] = []

    def add(at: float, mode: int) -> None:
        if starts and starts[-1] >= at:  # the piece before is empty (a walk from 0 s)
            starts.pop()
            modes.pop()
        if not modes or modes[-1] != mode:
            starts.append(at)
            modes.append(mode)

    for m in range(mode_m.size):
        t0, base, w = 60.0 * m, int(mode_m[m]), float(walk_s[m])
        if w <= 0.0:
            add(t0, base)
            walking_on = False
            continue
        if walking_on:  # the walk from the minute before goes on
            a = 0.0
        elif walking[m]:  # a walk starts: it runs on to the minute's end (and maybe beyond)
            a = 60.0 - w
        else:  # a few steps about the room
            a = float(place[m]) * (60.0 - w)
        b = a + w
        add(t0, base)
        add(t0 + a, Mode.WALK)
        add(t0 + b, base)
        walking_on = b >= 60.0
    start = np.array(starts)
    # A stretch that starts where the next one does (a walk from 0 s, a walk to 60 s) is empty.
    end = np.append(start[1:], 60.0 * mode_m.size)
    keep = end > start
    segments = _Segments(start[keep], end[keep], np.array(modes, dtype=np.int64)[keep])
    return segments, walking_on


@dataclass(frozen=True, slots=True)
class _End:
    up: Vector
    mode: Mode
    to_next_min: float


def _events(
    rng: np.random.Generator,
    segments: _Segments,
    sev: F64,
    wrist: WristProfile,
    state: WristState,
    block_s: float,
) -> tuple[_Events, _End]:
    """Every posture change: one at each change of mode, and a renewal process within modes."""
    at: list[float] = []
    took: list[float] = []
    burst: list[float] = []
    ups: list[F64] = []
    up, mode, to_next = np.array(state.up), state.mode, state.to_next_min

    def severity_at(t: float) -> float:
        return float(sev[min(int(t // 60.0), sev.size - 1)])

    def interval_min(m: Mode, t: float) -> float:
        s = severity_at(t)
        mean = (
            wrist.sleep_change_min * (1 + s)
            if m is Mode.SLEEP
            else wrist.sit_change_min * (1 + 3 * s)
        )
        return mean * float(rng.uniform(0.5, 1.5))

    for a, b, m_raw in zip(
        segments.start_s.tolist(), segments.end_s.tolist(), segments.mode.tolist(), strict=True
    ):
        m = Mode(m_raw)
        if m is not mode:
            new = _posture(rng, m, up, wrist)
            duration, g = _transition(rng, mode, m, severity_at(a))
            at.append(a)
            took.append(duration)
            burst.append(g)
            ups.append(new)
            up, mode = new, m
            to_next = interval_min(m, a) if m in (Mode.SLEEP, Mode.SIT) else math.inf
        if m not in (Mode.SLEEP, Mode.SIT):
            continue
        t = a + 60.0 * to_next
        while t < b:
            new = _posture(rng, m, up, wrist)
            duration, g = _transition(rng, m, m, severity_at(t))
            at.append(t)
            took.append(duration)
            burst.append(g)
            ups.append(new)
            up = new
            t += 60.0 * interval_min(m, t)
        to_next = (t - b) / 60.0

    at_s = np.array(at)
    # A change finishes before the next one starts, and within the block (no seam to carry).
    room = np.append(at_s[1:], block_s) - at_s
    events = _Events(
        at_s=at_s,
        took_s=np.minimum(np.array(took), room),
        burst_g=np.array(burst),
        up=np.array(ups).reshape(-1, 3),
    )
    return events, _End(_vector(up), mode, to_next)


def _transition(
    rng: np.random.Generator, before: Mode, after: Mode, sev: float
) -> tuple[float, float]:
    """How long a posture change takes (s) and the linear acceleration of the movement (g)."""
    if after is Mode.OFF or before is Mode.OFF:  # taking the watch off, putting it on
        return float(rng.uniform(2.0, 5.0)), float(rng.uniform(0.2, 0.4))
    if after is Mode.WALK or before is Mode.WALK:  # standing up to walk, sitting down
        return float(rng.uniform(1.0, 2.0)), float(rng.uniform(0.1, 0.2))
    if after is Mode.SLEEP or before is Mode.SLEEP:  # turning over, settling, waking
        return float(rng.uniform(2.0, 5.0)), float(rng.uniform(0.08, 0.25)) * (1 - 0.5 * sev)
    return float(rng.uniform(0.5, 2.0)), float(rng.uniform(0.05, 0.2)) * (1 - 0.5 * sev)


def _posture(rng: np.random.Generator, mode: Mode, previous: F64, wrist: WristProfile) -> F64:
    """A new posture (unit "up" vector in the device's frame) for this mode."""
    if mode is Mode.OFF:  # flat on a table, face up (now and then face down), tilted < 2°
        tilt, azimuth = np.radians(rng.uniform(0.0, 2.0)), rng.uniform(0.0, 2 * math.pi)
        face = -1.0 if rng.random() < 0.15 else 1.0
        return np.array(
            [math.sin(tilt) * math.cos(azimuth), math.sin(tilt) * math.sin(azimuth),
             face * math.cos(tilt)]
        )  # fmt: skip
    if mode is Mode.WALK:  # the arm hangs, as this wearer's does, give or take a few degrees
        return _unit(np.array(wrist.walk_up) + rng.normal(0.0, 0.06, 3))
    # Asleep the arm may lie anywhere; awake and seated the forearm rests face up to sideways.
    # A change is a real one: the z-angle moves by at least 10° (van Hees 2015 counts > 5°), and
    # the turn is at most 150°, as an arm turns (and as the blend between postures can follow).
    before = _z_angle(previous)
    candidate = previous
    for _ in range(50):
        if mode is Mode.SLEEP:
            candidate = _unit(rng.normal(0.0, 1.0, 3))
        else:
            elevation = np.radians(rng.uniform(-20.0, 80.0))
            azimuth = rng.uniform(0.0, 2 * math.pi)
            candidate = np.array(
                [math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth),
                 math.sin(elevation)]
            )  # fmt: skip
        turn = math.degrees(math.acos(float(np.clip(candidate @ previous, -1.0, 1.0))))
        if abs(_z_angle(candidate) - before) >= 10.0 and turn <= 150.0:
            break
    return candidate


def _fresh_state(rng: np.random.Generator, mode: Mode, wrist: WristProfile) -> WristState:
    """A start in the middle of things: a posture for the first minute's mode, part way on."""
    start = np.array([0.0, 0.0, 1.0])
    up = _posture(rng, mode, start, wrist)
    mean = wrist.sleep_change_min if mode is Mode.SLEEP else wrist.sit_change_min
    return WristState(_vector(up), mode, float(rng.uniform(0.0, 1.0)) * mean, False, 0.0)


# --- samples -----------------------------------------------------------------------------------


def _synthesise(
    rng: np.random.Generator,
    n: int,
    fs_hz: float,
    segments: _Segments,
    events: _Events,
    sev: F64,
    step_hz: F64,
    wrist: WristProfile,
    up0: F64,
    phase0: float,
) -> tuple[F32, float]:
    """Every sample: postures and their changes, arm movements, gait, then the sensor.

    Axis-major float32 (one contiguous row per axis, transposed once at the end) and sparse
    where it can be (changes, fidgets and walks touch only their own samples), so that a day at
    25 Hz costs a fraction of a second.
    """
    per_minute = round(60 * fs_hz)
    edges = np.append(segments.start_s, segments.end_s[-1]) * fs_hz
    bounds = np.clip(np.rint(edges), 0, n).astype(np.int64)
    mode = np.repeat(segments.mode.astype(np.int8), np.diff(bounds))

    # Postures: each holds from its change to the next; a change is a smoothstep blend.
    starts = np.clip(np.rint(events.at_s * fs_hz).astype(np.int64), 0, n)
    lengths = np.maximum(np.rint(events.took_s * fs_hz).astype(np.int64), 1)
    lengths = np.minimum(lengths, n - starts)
    postures = np.vstack([up0[None, :], events.up]).T.astype(np.float32)  # (3, changes + 1)
    which = np.repeat(np.arange(starts.size + 1), np.diff(np.concatenate([[0], starts, [n]])))
    xyz = np.take(postures, which, axis=1)
    changing, event, progress = _spans(starts, lengths)
    blend = (progress * progress * (3.0 - 2.0 * progress)).astype(np.float32)
    before = postures[:, event]  # change e turns posture e into posture e + 1
    xyz[:, changing] = before + blend * (postures[:, event + 1] - before)

    # Small rotations: breathing asleep, the arm drifting awake.
    wobble_rad = np.array([_WOBBLE_RAD[m] for m in range(4)], dtype=np.float32)[mode]
    knots, per_knot = _knots(rng, n, fs_hz, _SLOW_KNOT_S, 3)
    wobble = _join(knots, per_knot, n)
    wobble *= wobble_rad
    xyz += wobble
    xyz /= np.sqrt(np.einsum("ij,ij->j", xyz, xyz))
    walking = mode == Mode.WALK
    up = xyz.copy() if walking.any() else xyz

    # Linear acceleration: a burst during each posture change, fidgets while seated awake.
    envelope = np.zeros(n, dtype=np.float32)
    envelope[changing] = events.burst_g[event] * np.sin(math.pi * progress)
    level = wrist.fidget_g * (1.0 - 0.7 * sev) * np.exp(rng.normal(0.0, 0.4, sev.size))
    knots, per_knot = _knots(rng, n, fs_hz, _SLOW_KNOT_S, 1, gate=True)
    seated = np.flatnonzero(mode == Mode.SIT)
    envelope[seated] += (
        level[seated // per_minute].astype(np.float32) * _join(knots, per_knot, n, seated)[0]
    )
    envelope[walking] += 0.03  # a walking arm is never quite regular
    knots, per_knot = _knots(rng, n, fs_hz, _BAND_KNOT_S, 3)
    active = np.flatnonzero(envelope)
    if active.size > n // 4:  # mostly moving: every sample at once is quicker
        band = _join(knots, per_knot, n)
        band *= envelope
        xyz += band
    else:
        xyz[:, active] += _join(knots, per_knot, n, active) * envelope[active]

    phase = _walk(rng, xyz, up, mode, per_minute, fs_hz, sev, step_hz, wrist, phase0)

    noise = rng.standard_normal((3, n), dtype=np.float32)
    noise *= np.float32(wrist.noise_g)
    xyz += noise
    xyz *= np.asarray(wrist.scale, dtype=np.float32)[:, None]
    xyz += np.asarray(wrist.offset_g, dtype=np.float32)[:, None]
    return np.ascontiguousarray(xyz.T), phase


def _walk(
    rng: np.random.Generator,
    xyz: F32,
    up: F32,
    mode: npt.NDArray[np.int8],
    per_minute: int,
    fs_hz: float,
    sev: F64,
    step_hz: F64,
    wrist: WristProfile,
    phase0: float,
) -> float:
    """Add the arm's pendulum swing and the body's bounce to the walking samples (in place).

    In the device's frame, with ``u`` the posture's up and ``t`` the swing's tangent, a wrist at
    ``r`` from the shoulder swinging by ``θ`` measures ``(cos θ + r θ'² / g) u + (sin θ + r θ'' /
    g) t``: gravity turning with the arm, the centripetal and the tangential acceleration.
    ``xyz`` and ``up`` are axis-major, shape (3, n). Returns the gait phase at the end.
    """
    walk = np.flatnonzero(mode == Mode.WALK)
    if walk.size == 0:
        return phase0
    minute = walk // per_minute
    # Each walk builds up and dies down over a second; the gait phase runs on from walk to walk.
    edges = np.diff(np.concatenate([[-2], walk])) > 1
    run = np.cumsum(edges) - 1
    first = walk[edges]
    last = np.append(walk[np.flatnonzero(edges)[1:] - 1], walk[-1])
    ramp_n = _WALK_RAMP_S * fs_hz
    ramp = np.clip(np.minimum(walk - first[run] + 1, last[run] - walk + 1) / ramp_n, 0.0, 1.0)
    stride_w = math.pi * step_hz[minute]  # a stride is two steps: ω = 2π · f_step / 2
    phase = phase0 + np.cumsum(stride_w) / fs_hz
    amplitude = wrist.swing_rad * (1.0 - 0.4 * sev[minute]) * ramp
    theta = amplitude * np.sin(phase)
    theta_d = amplitude * stride_w * np.cos(phase)
    theta_dd = -amplitude * stride_w**2 * np.sin(phase)
    u = up[:, walk].T.astype(np.float64)
    t = np.cross(_SWING_AXIS, u)
    t /= np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-9)
    along_u = np.cos(theta) + _ARM_M * theta_d**2 / _G_MS2
    along_t = np.sin(theta) + _ARM_M * theta_dd / _G_MS2
    # The body rises and falls once a step (twice a stride), with a harmonic, along true up.
    lift = rng.uniform(0.0, 2 * math.pi, 2)
    bounce = (
        wrist.bounce_g * ramp * (np.sin(2 * phase + lift[0]) + 0.35 * np.sin(4 * phase + lift[1]))
    )
    gravity = np.cos(theta)[:, None] * u + np.sin(theta)[:, None] * t
    swing = (along_u - 1.0)[:, None] * u + along_t[:, None] * t + bounce[:, None] * gravity
    xyz[:, walk] += swing.T.astype(np.float32)
    return float(phase[-1] % (2 * math.pi))


def _spans(starts: I64, lengths: I64) -> tuple[I64, I64, F64]:
    """The samples inside each span ``[start, start + length)``: index, span, progress 0..1."""
    total = int(lengths.sum())
    span = np.repeat(np.arange(starts.size), lengths)
    offset = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return starts[span] + offset, span, offset / lengths[span]


def _knots(
    rng: np.random.Generator, n: int, fs_hz: float, knot_s: float, dims: int, *, gate: bool = False
) -> tuple[F32, int]:
    """Random values at knots ``knot_s`` apart covering ``n`` samples (dims, knots), and the
    samples per knot.

    Standard normal; with ``gate``, 0 (still) or a log-normal level around 1 (moving) instead,
    for the on-off pattern of small arm movements. Always drawn for the whole block, so that the
    random stream does not depend on which samples use them.
    """
    per_knot = max(round(knot_s * fs_hz), 1)
    count = -(-n // per_knot) + 1
    if gate:
        active = rng.random((dims, count)) < _FIDGET_ACTIVE_P
        knots = np.where(active, np.exp(rng.normal(0.0, 0.5, (dims, count))), 0.0)
    else:
        knots = rng.standard_normal((dims, count))
    return knots.astype(np.float32), per_knot


def _join(knots: F32, per_knot: int, n: int, at: I64 | None = None) -> F32:
    """The knots joined by straight lines, shape (dims, n), or only at sample indices ``at``."""
    if at is None:
        within = np.arange(per_knot, dtype=np.float32) / np.float32(per_knot)
        slope = np.repeat(np.diff(knots, axis=1), per_knot, axis=1)[:, :n]
        slope *= np.tile(within, knots.shape[1] - 1)[:n]
        slope += np.repeat(knots[:, :-1], per_knot, axis=1)[:, :n]
        return slope
    k, r = np.divmod(at, per_knot)
    w = (r / per_knot).astype(np.float32)
    some: F32 = knots[:, k] * (1 - w) + knots[:, k + 1] * w
    return some


# --- small helpers -----------------------------------------------------------------------------


def _column(value: npt.ArrayLike, n: int, name: str) -> F64:
    """One float per minute; a scalar applies to every minute."""
    array: F64 = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        return np.full(n, float(array))
    if array.shape != (n,):
        raise ValueError(f"{name} has shape {array.shape}, expected one value per minute ({n})")
    return array


def _unit(v: F64) -> F64:
    result: F64 = v / np.linalg.norm(v)
    return result


def _vector(v: F64) -> Vector:
    return (float(v[0]), float(v[1]), float(v[2]))


def _z_angle(up: F64) -> float:
    return math.degrees(math.atan2(float(up[2]), math.hypot(float(up[0]), float(up[1]))))
