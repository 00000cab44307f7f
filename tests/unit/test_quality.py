"""Window quality labels: each kind of bad data is named, good data is called acceptable."""

from __future__ import annotations

import numpy as np
import pytest

from signals.quality import Quality, label_windows
from signals.vitals import Metric

MIN_US = 60_000_000
HOUR_S = 3600.0


def _minutes(n: int, start: int = 0) -> np.ndarray:
    return (np.arange(n, dtype=np.int64) + start) * MIN_US


def _labels(ts: np.ndarray, values: np.ndarray, **kw: object) -> list[Quality]:
    codes = label_windows(
        ts, values, metric=Metric.HEART_RATE, start_us=0, window_s=HOUR_S, n_windows=1, **kw
    )  # type: ignore[arg-type]
    return [Quality(int(c)) for c in codes]


def test_a_normal_hour_is_acceptable() -> None:
    rng = np.random.default_rng(1)
    hr = 70 + rng.normal(0, 3, 60)
    assert _labels(_minutes(60), hr) == [Quality.ACCEPTABLE]


@pytest.mark.parametrize(
    ("ts", "values", "want"),
    [
        (_minutes(0), np.array([]), Quality.DISCONNECTED),
        (_minutes(30), np.full(30, 70.0) + np.arange(30) % 3, Quality.INTERMITTENT_LOSS),
        (
            _minutes(60),
            np.where(np.arange(60) % 5 == 0, 0.0, 70.0) + np.arange(60) % 2,
            Quality.NOISY,
        ),  # dropout zeros
        (_minutes(60), 70.0 + 45.0 * (np.arange(60) % 2), Quality.NOISY),  # jumps of 45/min
        (_minutes(60), np.full(60, 72.0), Quality.STUCK),
    ],
    ids=["nothing", "half", "zeros", "jumps", "frozen"],
)
def test_each_fault_is_named(ts: np.ndarray, values: np.ndarray, want: Quality) -> None:
    assert _labels(ts, values.astype(np.float64)) == [want]


def test_off_body_wins_over_everything_but_silence() -> None:
    worn_ts = _minutes(6, start=0) * 10
    worn = np.array([False, False, False, False, True, False])
    hr = 70 + np.arange(60) % 3
    got = _labels(_minutes(60), hr.astype(np.float64), worn_ts_us=worn_ts, worn=worn)
    assert got == [Quality.OFF_BODY]
    assert Quality.OFF_BODY.label == "off-body"
    assert Quality.INTERMITTENT_LOSS.label == "intermittent loss"


def test_windows_are_labelled_independently() -> None:
    ts = np.concatenate([_minutes(60), _minutes(10, start=120)])
    hr = (70 + np.arange(70) % 3).astype(np.float64)
    codes = label_windows(
        ts, hr, metric=Metric.HEART_RATE, start_us=0, window_s=HOUR_S, n_windows=3
    )
    assert [Quality(int(c)) for c in codes] == [
        Quality.ACCEPTABLE,
        Quality.DISCONNECTED,
        Quality.INTERMITTENT_LOSS,
    ]


def test_a_frozen_run_is_stuck_even_where_it_crosses_window_edges() -> None:
    # An hour of one heart rate, seen through ten-minute windows: each window holds only 10 of
    # the 60 identical values, but the run is what is impossible, not the window.
    hr = np.concatenate([70 + np.arange(30) % 2, np.full(60, 72.0), 70 + np.arange(30) % 2])
    codes = label_windows(
        _minutes(120), hr.astype(np.float64), metric=Metric.HEART_RATE, start_us=0,
        window_s=600.0, n_windows=12,
    )  # fmt: skip
    got = [Quality(int(c)) for c in codes]
    assert got[3:9] == [Quality.STUCK] * 6
    assert got[:3] + got[9:] == [Quality.ACCEPTABLE] * 6


def test_a_steady_spo2_is_not_a_frozen_sensor() -> None:
    # Whole-percent SpO2 at rest often holds one value for an hour; four hours is a fault.
    flat = np.full(60, 97.0)
    ok = label_windows(_minutes(60), flat, metric=Metric.SPO2, start_us=0, window_s=HOUR_S,
                       n_windows=1)  # fmt: skip
    assert Quality(int(ok[0])) is Quality.ACCEPTABLE
    frozen = label_windows(_minutes(240), np.full(240, 97.0), metric=Metric.SPO2, start_us=0,
                           window_s=HOUR_S, n_windows=4)  # fmt: skip
    assert [Quality(int(c)) for c in frozen] == [Quality.STUCK] * 4
