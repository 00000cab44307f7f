"""Personal baselines: streaming results equal batch numpy/pandas; snapshots restore exactly."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signals.baseline import MAD_TO_SD, ByTimeOfDay, Ewm, RollingRobust

values = st.lists(st.floats(30, 200, allow_nan=False), min_size=1, max_size=80)


@given(values, st.integers(1, 30))
def test_rolling_robust_equals_numpy_over_the_last_window(xs: list[float], window: int) -> None:
    b = RollingRobust(window=window, min_count=1)
    for x in xs:
        b.update(x)
    last = np.array(xs[-window:])
    got = b.get()
    assert got is not None
    assert got.centre == pytest.approx(float(np.median(last)))
    mad = float(np.median(np.abs(last - np.median(last))))
    assert got.scale == pytest.approx(max(mad * MAD_TO_SD, 1e-9))
    assert got.count == len(last)


def test_nothing_is_said_before_min_count_and_nan_is_not_a_day() -> None:
    b = RollingRobust(window=28, min_count=7)
    for x in (60, 61, math.nan, 62, 60, 59):
        b.update(x)
    assert b.get() is None
    assert b.z(80) is None
    b.update(61)
    assert b.get() is None  # six days measured: NaN was not a day
    b.update(62)
    assert b.get() is not None


def test_one_bad_night_barely_moves_a_robust_baseline() -> None:
    b = RollingRobust(window=14, min_count=7)
    for x in [58, 60, 59, 61, 60, 59, 60, 61, 58, 60]:
        b.update(x)
    before = b.get()
    b.update(95)  # one feverish night
    after = b.get()
    assert before is not None
    assert after is not None
    assert abs(after.centre - before.centre) <= 0.5
    assert b.z(95) is not None
    assert b.z(95) > 10  # type: ignore[operator]


@settings(deadline=None)
@given(values, st.floats(0.01, 1.0))
def test_ewm_mean_equals_pandas(xs: list[float], alpha: float) -> None:
    e = Ewm(alpha, min_count=1)
    for x in xs:
        e.update(x)
    want = pd.Series(xs).ewm(alpha=alpha, adjust=False).mean().iloc[-1]
    assert e.mean == pytest.approx(want, rel=1e-9)
    assert e.var >= 0


@given(values)
def test_snapshots_restore_exactly(xs: list[float]) -> None:
    r, e = RollingRobust(window=10, min_count=1), Ewm(0.2, min_count=1)
    for x in xs:
        r.update(x)
        e.update(x)
    r2, e2 = RollingRobust.restore(r.snapshot()), Ewm.restore(e.snapshot())
    assert r2.get() == r.get()
    assert e2.get() == e.get()
    r2.update(100)
    r.update(100)
    assert r2.get() == r.get()


def test_time_of_day_bins_keep_night_and_day_apart() -> None:
    b = ByTimeOfDay(lambda: RollingRobust(window=7, min_count=3), bins=4)
    for day in range(5):
        b.update(55 + day % 2, hour=3)  # asleep
        b.update(75 + day % 2, hour=15)  # afternoon
    night, afternoon = b.get(hour=2.5), b.get(hour=14)
    assert night is not None
    assert afternoon is not None
    assert night.centre < 60 < afternoon.centre
    restored = ByTimeOfDay(lambda: RollingRobust(window=7, min_count=3), bins=4)
    restored.restore_parts(b.snapshot())
    assert restored.get(hour=3) == night


@pytest.mark.parametrize(("window", "min_count"), [(0, 1), (5, 0), (5, 6)])
def test_bad_settings_are_refused(window: int, min_count: int) -> None:
    with pytest.raises(ValueError, match="min_count"):
        RollingRobust(window=window, min_count=min_count)
