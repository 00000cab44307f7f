"""Behaviour-based risk: deviations from the patient's own baseline, explained and sustained."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from signals.baseline import Baseline
from signals.risk import DEFAULT_RULES, Feature, Sustained, daily_risk

USUAL = {
    Feature.RESTING_HR: Baseline(60.0, 2.0, 28),
    Feature.HRV_RMSSD: Baseline(45.0, 8.0, 28),
    Feature.RESP_RATE: Baseline(14.0, 1.0, 28),
    Feature.TEMPERATURE: Baseline(36.5, 0.2, 28),
    Feature.SPO2: Baseline(97.0, 1.0, 28),
    Feature.STEPS: Baseline(4000.0, 1000.0, 28),
    Feature.SLEEP_MINUTES: Baseline(420.0, 40.0, 28),
}
NORMAL = {f: b.centre for f, b in USUAL.items()}


def test_a_usual_day_scores_zero() -> None:
    r = daily_risk(NORMAL, USUAL)
    assert r.score == 0
    assert r.missing == ()  # active minutes are not missing: steps stand in for them
    assert len(r.contributions) == len(DEFAULT_RULES) - 1


def test_a_fever_night_is_explained_by_its_features() -> None:
    day = {**NORMAL, Feature.RESTING_HR: 70.0, Feature.TEMPERATURE: 37.5}
    r = daily_risk(day, USUAL)
    top = [c.feature for c in r.contributions[:2]]
    # HR +10 = 5 SD (weight 1); temperature +1.0 °C = 5 SD (weight 1): equal shares, the rest 0.
    assert set(top) == {Feature.RESTING_HR, Feature.TEMPERATURE}
    assert r.contributions[0].z == pytest.approx(5.0)
    assert sum(c.points for c in r.contributions) == pytest.approx(r.score)
    # The weights sum to 5.4: the mean deviation is 10 / 5.4 SD; the score maps it to 0-100.
    assert r.score == pytest.approx(100 * (1 - math.exp(-(10 / 5.4) / 2)))
    hr = next(c for c in r.contributions if c.feature is Feature.RESTING_HR)
    assert hr.describe("/min") == "resting_hr +10/min (5.0 SD from usual)"


def test_only_the_concerning_direction_counts() -> None:
    calm = {**NORMAL, Feature.RESTING_HR: 52.0, Feature.HRV_RMSSD: 80.0, Feature.STEPS: 9000.0}
    assert daily_risk(calm, USUAL).score == 0


def test_missing_and_still_learning_features_are_named_not_assumed_normal() -> None:
    baselines = {**USUAL, Feature.HRV_RMSSD: None}
    day = {Feature.RESTING_HR: 66.0, Feature.HRV_RMSSD: 30.0}
    r = daily_risk(day, baselines)
    assert Feature.HRV_RMSSD in r.learning
    assert set(r.missing) == set(DEFAULT_RULES) - {Feature.RESTING_HR, Feature.HRV_RMSSD}
    assert [c.feature for c in r.contributions] == [Feature.RESTING_HR]
    assert daily_risk({}, USUAL).assessable is False


@given(st.sampled_from(list(USUAL)), st.floats(0, 10), st.floats(0, 10))
def test_more_deviation_never_lowers_the_score(feature: Feature, a: float, b: float) -> None:
    rule = DEFAULT_RULES[feature]
    usual = USUAL[feature]
    lo, hi = sorted((a, b))
    day_lo = {**NORMAL, feature: usual.centre + rule.direction * lo * usual.scale}
    day_hi = {**NORMAL, feature: usual.centre + rule.direction * hi * usual.scale}
    s_lo, s_hi = daily_risk(day_lo, USUAL).score, daily_risk(day_hi, USUAL).score
    assert 0 <= s_lo <= s_hi + 1e-9 <= 100 + 1e-9


def test_one_bad_night_does_not_alarm_two_in_a_row_do() -> None:
    c = Sustained()
    assert not c.update(3.0)  # one bad night
    assert c.value == 2.0
    assert not c.update(0.4)  # back to usual: a usual day still deviates 0.4 SD on average
    assert c.value == pytest.approx(1.4)
    c = Sustained()
    assert not c.update(50.0)  # however bad, one night alone never alarms
    c = Sustained()
    assert not c.update(3.0)
    assert c.update(3.0)  # the second night in a row
    restored = Sustained.restore(c.snapshot())
    assert restored.alarm
    assert restored.value == c.value


def test_the_sum_is_capped_so_an_alarm_ends_days_after_the_deviation() -> None:
    c = Sustained()
    for _ in range(30):  # a month of deviation
        c.update(4.0)
    assert c.value == 6.0
    usual = [c.update(0.4) for _ in range(5)]
    assert usual == [True, True, True, False, False]  # 5.4, 4.8, 4.2, 3.6: clear on day 4


def test_healthy_days_do_not_creep_towards_an_alarm() -> None:
    """Only concerning deviations count, so a healthy day feeds the CUSUM 0.40 SD on average
    (the mean of a half-normal); the slack must sit above that or the sum drifts up in health.
    """
    rng = np.random.default_rng(7)
    z = np.maximum(rng.standard_normal(200_000), 0.0)
    assert float(z.mean()) == pytest.approx(1 / math.sqrt(2 * math.pi), abs=0.005)
    c = Sustained()
    alarms = sum(c.update(float(d)) for d in z[:3650])  # ten years of one healthy feature
    assert alarms == 0


def test_active_minutes_stand_in_for_steps_on_a_raw_accelerometer() -> None:
    # A patch streaming raw acceleration counts no steps: its activity is minutes at light
    # intensity or more (signals.daily), scored against their own baseline, and steps are not
    # named as missing; a day with neither names both.
    usual: dict[Feature, Baseline | None] = {
        f: b for f, b in USUAL.items() if f is not Feature.STEPS
    }
    usual[Feature.ACTIVE_MINUTES] = Baseline(300.0, 30.0, 28)
    normal: dict[Feature, float | None] = {f: b.centre for f, b in usual.items() if b}
    quiet = daily_risk({**normal, Feature.ACTIVE_MINUTES: 180.0}, usual)
    [top] = quiet.contributions[:1]
    assert top.feature is Feature.ACTIVE_MINUTES
    assert top.z == pytest.approx(4.0)  # 120 min below usual at an SD of 30 min
    assert Feature.STEPS not in quiet.missing
    neither = daily_risk(
        {f: v for f, v in normal.items() if f is not Feature.ACTIVE_MINUTES}, usual
    )
    assert {Feature.STEPS, Feature.ACTIVE_MINUTES} <= set(neither.missing)
