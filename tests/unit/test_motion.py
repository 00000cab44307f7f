"""Activity, wear and sustained inactivity from raw wrist acceleration (signals.motion).

The rules are van Hees et al.'s (2013 non-wear, 2015 sustained inactivity); these tests check each
rule at its published edges on signals whose right answer is known by construction, and the
minute grid's independence from where a segment starts. No raw-accelerometer recording with a
sleep diary is available here (the actigraphy example holds counts only, docs/activity-sleep.md).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import numpy.typing as npt
import pytest

from signals.activity import calibrate
from signals.daily import daily_features, day_window
from signals.motion import CONTEXT_US, MINUTE_US, motion_minutes
from signals.risk import Feature
from signals.vitals import Metric, Readings
from signals.waveforms import WaveformChunk, WaveformKind

FS = 25.0
T0 = 1_767_225_600_000_000 + 17_000_000  # 2026-01-01T00:00:17Z: not on a minute boundary


def _unit(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.asarray(v / np.linalg.norm(v, axis=-1, keepdims=True), dtype=np.float64)


def _chunk(xyz: npt.NDArray[np.float64], start_us: int = T0) -> WaveformChunk:
    return WaveformChunk(
        "acc-1", WaveformKind.ACCEL, start_us, FS, xyz.astype(np.float32), "g", None
    )


def _held(
    rng: np.random.Generator, minutes: float, every_s: float, noise_g: float
) -> npt.NDArray[np.float64]:
    """The wrist held in a random pose, a new one every ``every_s`` seconds, plus sensor noise."""
    n = round(minutes * 60 * FS)
    poses = _unit(rng.normal(size=(int(n / (every_s * FS)) + 1, 3)))
    g = poses[(np.arange(n) / (every_s * FS)).astype(int)]
    return np.asarray(g + rng.normal(0.0, noise_g, size=(n, 3)), dtype=np.float64)


def _table(rng: np.random.Generator, minutes: float) -> npt.NDArray[np.float64]:
    n = round(minutes * 60 * FS)
    return np.array([0.0, 0.0, 1.0]) + rng.normal(0.0, 0.002, size=(n, 3))


def _day_parts(rng: np.random.Generator) -> list[tuple[str, npt.NDArray[np.float64]]]:
    return [
        ("awake", _held(rng, 60, 4, 0.01)),  # an arm moving every few seconds
        ("asleep", _held(rng, 120, 20 * 60, 0.004)),  # a new posture every 20 minutes
        ("table", _table(rng, 90)),  # on the bedside table
        ("awake", _held(rng, 60, 4, 0.01)),
    ]


def test_each_state_is_recognised() -> None:
    rng = np.random.default_rng(3)
    parts = _day_parts(rng)
    m = motion_minutes(_chunk(np.concatenate([x for _, x in parts])))
    first = T0 - T0 % MINUTE_US + 2 * MINUTE_US  # the minute T0 falls in is under 80 % covered
    labels = np.empty(len(m), dtype=object)
    at = 0
    for name, x in parts:  # the state of each minute's end
        n_min = x.shape[0] / FS / 60
        ends = (m.end_us - T0) / MINUTE_US
        labels[(ends > at + 1) & (ends <= at + n_min)] = name  # skip the minute each change is in
        at += n_min
    assert m.end_us[0] == first  # minutes end on the clock's minutes
    awake, asleep, table = (labels == s for s in ("awake", "asleep", "table"))
    assert not m.inactive[awake].any()
    assert m.inactive[asleep].all()
    assert m.worn[awake].all()
    assert m.worn[asleep].all()
    # 90 min on a table: non-wear is found to the quarter hour (van Hees 2013's 15-min steps).
    assert table.sum() >= 88
    assert (~m.worn[table]).sum() >= 60
    assert m.enmo_mg[table].max() < 10


def test_a_posture_change_every_four_minutes_is_not_a_bout_every_six_is() -> None:
    # van Hees 2015: a bout needs 5 minutes with no z-angle change above 5°.
    rng = np.random.default_rng(4)
    tilts = np.radians([0.0, 30.0])  # successive poses 30° apart in arm elevation

    def alternating(every_min: float) -> npt.NDArray[np.float64]:
        n = round(60 * 60 * FS)
        pose = (np.arange(n) // round(every_min * 60 * FS)) % 2
        a = tilts[pose]
        g = np.column_stack([np.cos(a), np.zeros(n), np.sin(a)])
        return g + rng.normal(0.0, 0.004, size=(n, 3))

    quick = motion_minutes(_chunk(alternating(4.0)))
    slow = motion_minutes(_chunk(alternating(6.0)))
    assert not quick.inactive.any()
    assert slow.inactive.mean() > 0.9


def test_enmo_of_a_known_movement() -> None:
    # Acceleration along gravity of 1 + a·sin(2π f t): ENMO averages a/π (the positive half).
    t = np.arange(round(10 * 60 * FS)) / FS
    a = 0.3
    z = 1.0 + a * np.sin(2 * np.pi * 1.9 * t)
    m = motion_minutes(
        _chunk(np.column_stack([np.zeros_like(z), np.zeros_like(z), z]), T0 - 17_000_000)
    )
    assert m.enmo_mg == pytest.approx(np.full(len(m), a / np.pi * 1000), rel=0.01)


def test_calibration_removes_the_offset_error_from_still_minutes() -> None:
    rng = np.random.default_rng(5)
    true = np.concatenate([_held(rng, 120, 5 * 60, 0.004), _held(rng, 30, 4, 0.01)])
    offset, scale = np.array([0.05, -0.04, 0.03]), np.array([1.02, 0.97, 1.01])
    raw = (true - offset) / scale  # what an uncalibrated sensor reports
    still = slice(5, 115)
    uncorrected = motion_minutes(_chunk(raw)).enmo_mg[still]
    corrected = motion_minutes(_chunk(raw), calibrate(raw, FS)).enmo_mg[still]
    assert uncorrected.max() > 20  # some poses read tens of mg of "activity" when still
    assert corrected.max() < 5


def test_minutes_do_not_depend_on_where_a_segment_starts() -> None:
    rng = np.random.default_rng(6)
    xyz = np.concatenate([x for _, x in _day_parts(rng)])
    whole = motion_minutes(_chunk(xyz))
    cut = round(137.3 * 60 * FS)  # a second run starting mid-minute, two hours in
    later = motion_minutes(_chunk(xyz[cut:], T0 + round(cut / FS * 1e6)))
    # Minutes with the context their rules need (CONTEXT_US both sides) agree exactly.
    lo, hi = later.end_us[0] + CONTEXT_US, later.end_us[-1] - CONTEXT_US
    a = (whole.end_us >= lo) & (whole.end_us <= hi)
    b = (later.end_us >= lo) & (later.end_us <= hi)
    assert a.sum() > 50
    np.testing.assert_array_equal(whole.end_us[a], later.end_us[b])
    np.testing.assert_array_equal(whole.worn[a], later.worn[b])
    np.testing.assert_array_equal(whole.inactive[a], later.inactive[b])
    np.testing.assert_allclose(whole.enmo_mg[a], later.enmo_mg[b], rtol=1e-9)


def test_a_gap_in_the_samples_leaves_its_minutes_out() -> None:
    rng = np.random.default_rng(7)
    xyz = _held(rng, 10, 4, 0.01)
    m = motion_minutes(_chunk(xyz[: round(4.5 * 60 * FS)], T0 - 17_000_000))
    assert len(m) == 4  # the half-covered fifth minute is not a minute


def test_refuses_a_ppg() -> None:
    ppg = WaveformChunk("ox-1", WaveformKind.PPG, T0, FS, np.zeros(10, np.float32), "au", None)
    with pytest.raises(ValueError, match="accelerometer"):
        motion_minutes(ppg)


# --- into the day's features -----------------------------------------------------------------


def _readings(
    ts: npt.NDArray[np.int64], metric: Metric, value: npt.NDArray[np.float64]
) -> Readings:
    n = ts.size
    return Readings(
        device_id=np.full(n, "acc-1/derived", dtype=object),
        patient_id=np.full(n, "p-1", dtype=object),
        metric=np.full(n, int(metric), np.int16),
        ts_us=ts.astype(np.int64),
        value=value.astype(np.float64),
        utc_offset_min=np.zeros(n, np.int16),
        received_us=ts.astype(np.int64),
    )


def test_a_raw_accelerometer_day_gives_sleep_activity_and_resting_heart_rate() -> None:
    # A day (10:00 to 10:00 UTC) summarised to minutes the way the derive job stores them: awake
    # and moving 10:00-23:00 with 240 light minutes, asleep 23:00-07:00 apart from a 20-min wake
    # at 03:00, awake again until 10:00. Heart rate 80 awake, 55 asleep, 70 in the 03:00 wake.
    w = day_window(date(2026, 1, 2), 0)
    ends = w.start_us + MINUTE_US * np.arange(1, 1441, dtype=np.int64)
    clock = (np.arange(1440) + 10 * 60) % 1440  # local minute of the day each minute starts at
    hour = clock / 60
    wake_bout = (clock >= 180) & (clock < 200)
    asleep = ((hour >= 23) | (hour < 7)) & ~wake_bout
    enmo = np.where(asleep, 2.0, 20.0)
    awake_minutes = np.flatnonzero(~asleep & ~wake_bout)
    enmo[awake_minutes[::3][:240]] = 120.0  # 240 light-or-more minutes spread over the day
    hr = np.where(asleep, 55.0, np.where(wake_bout, 70.0, 80.0)) + np.tile([-1.0, 0.0, 1.0], 480)
    day = Readings.concat([
        _readings(ends, Metric.ACTIVITY_MG, enmo),
        _readings(ends, Metric.INACTIVE, asleep.astype(np.float64)),
        _readings(ends, Metric.WORN, np.ones(1440)),
        _readings(ends - 30_000_000, Metric.HEART_RATE, hr),
    ])  # fmt: skip
    f = daily_features(day, w)
    assert f[Feature.SLEEP_MINUTES] == 8 * 60 - 20  # the wake bout is inside, not asleep
    assert f[Feature.ACTIVE_MINUTES] == 240
    assert np.isnan(f[Feature.STEPS])  # no step counter: activity is measured by minutes
    assert f[Feature.RESTING_HR] == 55.0

    # The same day with the device off the wrist from 12:00 to 22:00 is not a day of activity.
    off = (hour >= 12) & (hour < 22)
    worn_less = Readings.concat([
        _readings(ends, Metric.ACTIVITY_MG, np.where(off, 0.0, enmo)),
        _readings(ends, Metric.INACTIVE, asleep.astype(np.float64)),
        _readings(ends, Metric.WORN, (~off).astype(np.float64)),
    ])  # fmt: skip
    g = daily_features(worn_less, w)
    assert np.isnan(g[Feature.ACTIVE_MINUTES])
    assert np.isnan(g[Feature.SLEEP_MINUTES])


def test_a_step_counter_keeps_activity_in_steps() -> None:
    w = day_window(date(2026, 1, 2), 0)
    ends = w.start_us + MINUTE_US * np.arange(1, 1441, dtype=np.int64)
    day = Readings.concat([
        _readings(ends, Metric.ACTIVITY_MG, np.full(1440, 120.0)),
        _readings(ends - MINUTE_US, Metric.STEPS, np.full(1440, 3.0)),  # stamped at the start
        _readings(ends, Metric.WORN, np.ones(1440)),
    ])  # fmt: skip
    f = daily_features(day, w)
    assert f[Feature.STEPS] == 4320
    assert np.isnan(f[Feature.ACTIVE_MINUTES])


def test_resting_heart_rate_comes_from_inactive_minutes() -> None:
    # Awake from 02:30 but lying still without a step: no step count tells rest from sleep, the
    # arm's inactivity does. Most of the night is that wake, so counting it would give 70.
    w = day_window(date(2026, 1, 2), 0)
    night = w.night_start_us + MINUTE_US * np.arange(1, 361, dtype=np.int64)
    asleep = np.arange(360) < 150
    hr = np.where(asleep, 55.0, 70.0) + np.tile([-1.0, 0.0, 1.0], 120)
    day = Readings.concat([
        _readings(night, Metric.INACTIVE, asleep.astype(np.float64)),
        _readings(night - 30_000_000, Metric.HEART_RATE, hr),
    ])  # fmt: skip
    assert daily_features(day, w)[Feature.RESTING_HR] == 55.0
    without_motion = _readings(night - 30_000_000, Metric.HEART_RATE, hr)
    assert daily_features(without_motion, w)[Feature.RESTING_HR] > 65  # the wake dominates
