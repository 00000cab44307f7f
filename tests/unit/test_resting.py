"""Nightly resting heart rate: still minutes only, robust to artefact, honest when short."""

from __future__ import annotations

import math

import numpy as np

from signals.resting import MIN_US, nightly_resting_hr, resting_minutes


def test_minutes_soon_after_steps_are_not_resting() -> None:
    hr_ts = np.arange(60, dtype=np.int64) * MIN_US
    steps_ts = np.array([5 * MIN_US, 30 * MIN_US], dtype=np.int64)
    still = resting_minutes(hr_ts, steps_ts, np.array([120.0, 40.0]), still_for_min=10)
    assert still[:5].all()  # before any step
    assert not still[5:15].any()  # within 10 min of the walk at minute 5
    assert still[15:30].all()
    assert not still[30:40].any()
    assert still[40:].all()
    assert resting_minutes(hr_ts, steps_ts, np.zeros(2)).all()  # zero-step reports are still


def test_resting_hr_is_the_median_of_resting_minutes_in_the_night() -> None:
    rng = np.random.default_rng(3)
    ts = np.arange(8 * 60, dtype=np.int64) * MIN_US
    hr = 58 + rng.normal(0, 2, ts.size)
    hr[100:103] = 160.0  # artefact
    hr[200:260] = 95.0  # awake and walking to the bathroom
    resting = np.ones(ts.size, dtype=bool)
    resting[200:260] = False
    r = nightly_resting_hr(ts, hr, resting, night_start_us=0, night_end_us=int(ts[-1]) + MIN_US)
    assert abs(r.bpm - 58) < 0.5
    assert r.minutes == 8 * 60 - 60


def test_a_night_with_too_few_resting_minutes_says_so() -> None:
    ts = np.arange(30, dtype=np.int64) * MIN_US
    r = nightly_resting_hr(
        ts,
        np.full(30, 60.0),
        np.ones(30, dtype=bool),
        night_start_us=0,
        night_end_us=30 * MIN_US,
        min_minutes=60,
    )
    assert math.isnan(r.bpm)
    assert r.minutes == 30
