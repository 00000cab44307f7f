"""A day's features for the risk score: windows in local time, and NaN rather than a guess."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import numpy as np

from alerts.model import Rule, Severity
from alerts.rules import risk_condition
from signals.daily import MIN_WORN_MINUTES, daily_features, day_of, day_window
from signals.risk import RELEARN_AFTER_DAYS, Feature, PatientRisk
from signals.vitals import Metric, Readings

US = 1_000_000


def _us(t: datetime) -> int:
    return int(t.timestamp()) * US


def _readings(rows: list[tuple[int, Metric, float]]) -> Readings:
    n = len(rows)
    ts = np.array([r[0] for r in rows], dtype=np.int64)
    return Readings(
        device_id=np.full(n, "d", dtype=object),
        patient_id=np.full(n, "p", dtype=object),
        metric=np.array([int(r[1]) for r in rows], dtype=np.int16),
        ts_us=ts,
        value=np.array([r[2] for r in rows], dtype=np.float64),
        utc_offset_min=np.zeros(n, np.int16),
        received_us=ts,
    )


def test_a_day_runs_from_ten_to_ten_local_with_its_night_inside() -> None:
    # London in summer (UTC+1): the day of 2 July runs 09:00 UTC 1 July to 09:00 UTC 2 July.
    w = day_window(date(2026, 7, 2), 60)
    assert w.start_us == _us(datetime(2026, 7, 1, 9, tzinfo=UTC))
    assert w.end_us == _us(datetime(2026, 7, 2, 9, tzinfo=UTC))
    assert w.night_start_us == _us(datetime(2026, 7, 1, 23, tzinfo=UTC))
    assert w.night_end_us == _us(datetime(2026, 7, 2, 5, tzinfo=UTC))
    assert day_of(w.start_us, 60) == date(2026, 7, 2)
    assert day_of(w.end_us - 1, 60) == date(2026, 7, 2)
    assert day_of(w.end_us, 60) == date(2026, 7, 3)


def _night(
    day: date, *, hr: float, minutes: int, steps_at: int | None = None
) -> list[tuple[int, Metric, float]]:
    w = day_window(day, 0)
    rows: list[tuple[int, Metric, float]] = []
    for k in range(minutes):
        t = w.night_start_us + k * 60 * US
        rows += [(t, Metric.HEART_RATE, hr + (k % 3)), (t, Metric.RESP_RATE, 14.0 + k % 2),
                 (t, Metric.SPO2, 96.0 + (k % 4 == 0))]  # fmt: skip
        if k % 5 == 0:
            rows.append((t, Metric.TEMPERATURE, 36.5))
    if steps_at is not None:
        rows.append((w.night_start_us + steps_at * 60 * US, Metric.STEPS, 30.0))
    return rows


def test_night_features_are_medians_of_the_resting_night() -> None:
    day = date(2026, 3, 10)
    f = daily_features(_readings(_night(day, hr=60.0, minutes=300)), day_window(day, 0))
    assert f[Feature.RESTING_HR] == 61.0  # 60, 61, 62 repeating
    assert f[Feature.RESP_RATE] == 14.5
    assert f[Feature.SPO2] == 96.0
    assert f[Feature.TEMPERATURE] == 36.5
    # No worn flag and 300 minutes of heart rate: far from 16 h worn, so no step count.
    assert math.isnan(f[Feature.STEPS])
    assert math.isnan(f[Feature.HRV_RMSSD])  # no beat-to-beat intervals sent
    assert math.isnan(f[Feature.SLEEP_MINUTES])


def test_minutes_just_after_walking_do_not_count_as_resting() -> None:
    day = date(2026, 3, 10)
    rows = _night(day, hr=60.0, minutes=80, steps_at=0)
    w = day_window(day, 0)
    # 80 night minutes, steps at minute 0: the first 10 are not resting, 70 remain (>= 60).
    assert daily_features(_readings(rows), w)[Feature.RESTING_HR] == 61.0
    rows = _night(day, hr=60.0, minutes=65, steps_at=0)  # 55 resting minutes: too few
    assert math.isnan(daily_features(_readings(rows), w)[Feature.RESTING_HR])


def test_too_little_night_data_gives_nan_not_a_guess() -> None:
    day = date(2026, 3, 10)
    f = daily_features(_readings(_night(day, hr=60.0, minutes=40)), day_window(day, 0))
    for feature in (Feature.RESTING_HR, Feature.RESP_RATE, Feature.SPO2):
        assert math.isnan(f[feature]), feature
    # 40 minutes hold 8 five-minute temperatures, under the 12 a night median needs.
    assert math.isnan(f[Feature.TEMPERATURE])


def test_steps_count_only_on_a_day_the_device_was_worn() -> None:
    day = date(2026, 3, 10)
    w = day_window(day, 0)
    minutes = range(24 * 60)

    def rows(worn_minutes: int) -> list[tuple[int, Metric, float]]:
        out = []
        for k in minutes:
            t = w.start_us + k * 60 * US
            out.append((t, Metric.WORN, 1.0 if k < worn_minutes else 0.0))
            out.append((t, Metric.STEPS, 2.0 if k < worn_minutes else 0.0))
        return out

    assert (
        daily_features(_readings(rows(MIN_WORN_MINUTES)), w)[Feature.STEPS] == 2 * MIN_WORN_MINUTES
    )
    assert math.isnan(daily_features(_readings(rows(MIN_WORN_MINUTES - 1)), w)[Feature.STEPS])


def _usual(hr: float) -> dict[Feature, float]:
    return {Feature.RESTING_HR: hr, Feature.TEMPERATURE: 36.5, Feature.RESP_RATE: 14.0}


def test_patient_risk_learns_then_alarms_only_on_a_sustained_rise() -> None:
    model = PatientRisk()
    week = [60.0, 62.0, 61.0, 59.0, 60.0, 61.0, 63.0]
    for hr in week:
        a = model.step(_usual(hr))
        assert a.risk.learning  # no baseline yet: says so, scores nothing
        assert not a.alarm
    one_bad = model.step(_usual(70.0))
    assert one_bad.risk.score > 0
    assert not one_bad.alarm  # one bad night pages nobody
    assert not model.step(_usual(61.0)).alarm
    # 72 is 6 SD (capped) over three features: 2 SD a day, 1 past the slack: the mean's CUSUM
    # reaches its threshold on day 4. Resting HR's own chart (3 SD a day at most, 1.5 slack)
    # reaches its threshold on day 2: a lone feature this far off for two nights is a review.
    days = [model.step(_usual(72.0)) for _ in range(4)]
    assert [d.cusum >= 4.0 for d in days] == [False, False, False, True]
    assert [d.alone for d in days] == [()] + [(Feature.RESTING_HR,)] * 3
    assert [d.alarm for d in days] == [False, True, True, True]


def test_deviating_days_are_held_back_from_the_baseline_for_two_weeks() -> None:
    model = PatientRisk()
    for hr in [60.0, 62.0, 61.0, 59.0, 60.0, 61.0, 63.0]:
        model.step(_usual(hr))
    usual = model.baselines[Feature.RESTING_HR].get()
    assert usual is not None
    alarms, centres = [], []
    for _ in range(RELEARN_AFTER_DAYS + 16):
        alarms.append(model.step(_usual(75.0)).alarm)
        b = model.baselines[Feature.RESTING_HR].get()
        assert b is not None
        centres.append(b.centre)
    first = alarms.index(True)
    assert first == 1  # resting HR's own chart: 6 SD alone, 3 a day past 1.5 slack: day 2
    # From the first deviating day on, nothing is learnt for two weeks: the rise alarms
    # instead of becoming the patient's usual on the way.
    assert centres[:RELEARN_AFTER_DAYS] == [usual.centre] * RELEARN_AFTER_DAYS
    assert all(alarms[first : RELEARN_AFTER_DAYS + 1])
    # Then the new level is learnt, becomes the usual, and the alarm ends.
    assert centres[-1] == 75.0
    assert alarms[-1] is False
    restored = PatientRisk.restore(model.snapshot())
    assert restored.snapshot() == model.snapshot()
    assert restored.step(_usual(75.0)) == model.step(_usual(75.0))


def test_the_risk_rule_asks_for_a_review_and_says_why() -> None:
    model = PatientRisk()
    for hr in [60.0, 62.0, 61.0, 59.0, 60.0, 61.0, 63.0]:
        model.step(_usual(hr))
    quiet = model.step(_usual(61.0))
    assert risk_condition("p1", date(2026, 3, 10), quiet) is None
    for _ in range(2):
        a = model.step({**_usual(72.0), Feature.TEMPERATURE: 37.4})
    c = risk_condition("p1", date(2026, 3, 12), a)
    assert c is not None
    assert c.rule is Rule.RISK
    assert c.severity is Severity.REVIEW
    assert c.summary.startswith("behaviour risk ")
    assert "on 2026-03-12, sustained over days: " in c.summary
    assert "resting_hr +11/min" in c.summary
    assert "temperature +0.9°C" in c.summary
    assert "not measured: hrv_rmssd, spo2, steps, sleep_minutes" in c.summary


def test_a_frozen_or_noisy_sensor_gives_no_feature_rather_than_a_wrong_one() -> None:
    day = date(2026, 3, 10)
    w = day_window(day, 0)
    rows = _night(day, hr=60.0, minutes=300)
    frozen = [(t, m, 55.0 if m is Metric.HEART_RATE else v) for t, m, v in rows]
    f = daily_features(_readings(frozen), w)
    assert math.isnan(f[Feature.RESTING_HR])  # five hours of exactly 55: a frozen sensor
    assert f[Feature.RESP_RATE] == 14.5  # the other sensors are fine
    # Motion artefact in the first hour: jumps of 50/min. Those slices are dropped; the
    # median comes from the clean four hours and is not pulled towards the artefact.
    burst = [
        (t, m, v + 50.0 * ((t - w.night_start_us) // (60 * US) % 2))
        if m is Metric.HEART_RATE and t < w.night_start_us + 3600 * US
        else (t, m, v)
        for t, m, v in rows
    ]
    assert daily_features(_readings(burst), w)[Feature.RESTING_HR] == 61.0
