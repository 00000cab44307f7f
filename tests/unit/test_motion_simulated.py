"""A simulated day of raw wrist acceleration (simulator.motion) through signals.motion and the
day's features: the chain a raw-accelerometer patient's data takes, with the truth known.

This checks the chain, not the method: the simulator was written to the same literature the
detector implements (docs/activity-sleep.md says what validation is still owed).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from signals.activity import calibrate
from signals.daily import daily_features, day_window
from signals.motion import MotionMinutes, motion_minutes
from signals.risk import Feature
from signals.vitals import Metric, Readings
from signals.waveforms import WaveformChunk, WaveformKind
from simulator.motion import wrist_accel

FS = 10.0
DAY = day_window(date(2026, 1, 2), 0)  # 10:00 to 10:00 UTC, the wearer's local time too
CLOCK = (np.arange(1440) + 600) % 1440  # the local minute of the day each minute starts at
ASLEEP = (CLOCK >= 23 * 60) | (CLOCK < 7 * 60)  # 480 min
WALKING = np.isin(CLOCK // 20, [h * 3 for h in (8, 11, 13, 16, 17, 19)])  # 6 × 20 min
WORN = ~((CLOCK >= 14 * 60) & (CLOCK < 15 * 60 + 30))  # 90 min on the table


@pytest.fixture(scope="module", params=[1, 2, 3])
def minutes(request: pytest.FixtureRequest) -> MotionMinutes:
    rng = np.random.default_rng(request.param)
    xyz = wrist_accel(rng, fs_hz=FS, asleep=ASLEEP, walking=WALKING, worn=WORN)
    chunk = WaveformChunk("acc", WaveformKind.ACCEL, DAY.start_us, FS, xyz, "g", None)
    return motion_minutes(chunk, calibrate(xyz, FS))


def _as_readings(m: MotionMinutes) -> Readings:
    def rows(metric: Metric, values: np.ndarray) -> Readings:
        n = len(m)
        return Readings(
            device_id=np.full(n, "acc/derived", dtype=object),
            patient_id=np.full(n, "p", dtype=object),
            metric=np.full(n, int(metric), np.int16),
            ts_us=m.end_us,
            value=values.astype(np.float64),
            utc_offset_min=np.zeros(n, np.int16),
            received_us=m.end_us,
        )

    return Readings.concat(
        [rows(Metric.ACTIVITY_MG, m.enmo_mg), rows(Metric.INACTIVE, m.inactive),
         rows(Metric.WORN, m.worn)]
    )  # fmt: skip


def test_minutes_follow_the_simulated_states(minutes: MotionMinutes) -> None:
    assert len(minutes) == 1440
    assert minutes.inactive[ASLEEP].mean() > 0.97
    assert minutes.worn[WORN].all()  # a sleeper changing posture is never taken for a table
    assert (~minutes.worn[~WORN]).sum() >= 60  # the quarter hours wholly on the table
    assert np.all(minutes.enmo_mg[WALKING] >= 40)  # walking is light or more, every minute


def test_the_day_gives_sleep_and_activity_near_the_truth(minutes: MotionMinutes) -> None:
    f = daily_features(_as_readings(minutes), DAY)
    assert f[Feature.SLEEP_MINUTES] == pytest.approx(480, abs=30)
    assert 120 <= f[Feature.ACTIVE_MINUTES] <= 120 + 0.15 * 1440  # walking, and some arm use
    assert np.isnan(f[Feature.STEPS])
