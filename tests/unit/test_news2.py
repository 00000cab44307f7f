"""NEWS2 against the RCP 2017 chart, band edge by band edge, and over a real ICU recording.

Expected points are written out from RCP NEWS2 2017 Chart 1 / Chart 2 by hand, not read from
``signals.news2``'s tables, so a typo in a table cannot agree with itself.
"""

from __future__ import annotations

import csv
import dataclasses
import doctest
import itertools
import math
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import signals.news2
from signals.news2 import PARAMETERS, News2, news2, news2_from_latest
from signals.vitals import PLAUSIBLE, Metric

NORMAL: dict[str, Any] = {
    "resp_rate": 16,
    "spo2": 97,
    "on_oxygen": False,
    "temperature": 37.0,
    "systolic_bp": 120,
    "heart_rate": 70,
    "consciousness": "A",
}


def score(spo2_scale: int = 1, **changes: Any) -> News2:
    """Score a normal patient with some observations changed."""
    return news2(**{**NORMAL, **changes}, spo2_scale=spo2_scale)


def points(name: str, value: Any, **changes: Any) -> int:
    return score(**{name: value}, **changes).scores[name]


# --- RCP NEWS2 2017, Chart 1, every band edge from both sides --------------------------------

RESP_RATE = [
    (0, 3), (8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3), (60, 3),
]  # fmt: skip
SPO2_SCALE_1 = [(50, 3), (91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0)]
SPO2_SCALE_2_AIR = [
    (50, 3), (83, 3), (84, 2), (85, 2), (86, 1), (87, 1), (88, 0), (92, 0), (93, 0), (100, 0),
]  # fmt: skip
SPO2_SCALE_2_OXYGEN = [
    (50, 3), (83, 3), (84, 2), (85, 2), (86, 1), (87, 1), (88, 0), (92, 0),
    (93, 1), (94, 1), (95, 2), (96, 2), (97, 3), (100, 3),
]  # fmt: skip
SYSTOLIC_BP = [
    (40, 3), (90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3), (300, 3),
]  # fmt: skip
HEART_RATE = [
    (20, 3), (40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1), (111, 2), (130, 2),
    (131, 3), (250, 3),
]  # fmt: skip
TEMPERATURE = [
    (30.0, 3), (35.0, 3), (35.1, 1), (36.0, 1), (36.1, 0), (38.0, 0), (38.1, 1), (39.0, 1),
    (39.1, 2), (42.0, 2),
]  # fmt: skip


@pytest.mark.parametrize(("value", "expected"), RESP_RATE)
def test_resp_rate_band_edges(value: int, expected: int) -> None:
    assert points("resp_rate", value) == expected


@pytest.mark.parametrize(("value", "expected"), SPO2_SCALE_1)
@pytest.mark.parametrize("on_oxygen", [False, True])
def test_spo2_scale_1_ignores_oxygen_for_the_saturation_row(
    value: int, expected: int, on_oxygen: bool
) -> None:
    result = score(spo2=value, on_oxygen=on_oxygen)
    assert result.scores["spo2"] == expected
    assert result.scores["on_oxygen"] == (2 if on_oxygen else 0)


@pytest.mark.parametrize(("value", "expected"), SPO2_SCALE_2_AIR)
def test_spo2_scale_2_on_air_band_edges(value: int, expected: int) -> None:
    result = score(spo2_scale=2, spo2=value, on_oxygen=False)
    assert result.scores["spo2"] == expected
    assert result.scores["on_oxygen"] == 0


@pytest.mark.parametrize(("value", "expected"), SPO2_SCALE_2_OXYGEN)
def test_spo2_scale_2_on_oxygen_band_edges(value: int, expected: int) -> None:
    result = score(spo2_scale=2, spo2=value, on_oxygen=True)
    assert result.scores["spo2"] == expected
    assert result.scores["on_oxygen"] == 2


@pytest.mark.parametrize(("value", "expected"), SYSTOLIC_BP)
def test_systolic_bp_band_edges(value: int, expected: int) -> None:
    assert points("systolic_bp", value) == expected


@pytest.mark.parametrize(("value", "expected"), HEART_RATE)
def test_heart_rate_band_edges(value: int, expected: int) -> None:
    assert points("heart_rate", value) == expected


@pytest.mark.parametrize(("value", "expected"), TEMPERATURE)
def test_temperature_band_edges(value: float, expected: int) -> None:
    assert points("temperature", value) == expected


@pytest.mark.parametrize(
    ("level", "expected"),
    [("A", 0), ("C", 3), ("V", 3), ("P", 3), ("U", 3), ("a", 0), ("c", 3), ("u", 3)],
)
def test_acvpu(level: str, expected: int) -> None:
    assert points("consciousness", level) == expected


@pytest.mark.parametrize(("on_oxygen", "expected"), [(False, 0), (True, 2)])
def test_air_or_oxygen(on_oxygen: bool, expected: int) -> None:
    assert points("on_oxygen", on_oxygen) == expected


# --- Our rounding rule: half up to the chart's resolution, then the chart ---------------------


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("resp_rate", 8.49, 3),  # → 8
        ("resp_rate", 8.5, 1),  # → 9
        ("resp_rate", 11.49, 1),  # → 11
        ("resp_rate", 11.5, 0),  # → 12
        ("resp_rate", 20.49, 0),  # → 20
        ("resp_rate", 20.5, 2),  # → 21
        ("resp_rate", 24.5, 3),  # → 25
        ("spo2", 91.49, 3),  # → 91
        ("spo2", 91.5, 2),  # → 92
        ("spo2", 95.49, 1),  # → 95
        ("spo2", 95.5, 0),  # → 96
        ("systolic_bp", 90.5, 2),  # → 91
        ("systolic_bp", 110.49, 1),  # → 110
        ("systolic_bp", 110.5, 0),  # → 111
        ("systolic_bp", 219.5, 3),  # → 220
        ("heart_rate", 40.5, 1),  # → 41
        ("heart_rate", 50.5, 0),  # → 51
        ("heart_rate", 90.49, 0),  # → 90
        ("heart_rate", 90.5, 1),  # → 91
        ("heart_rate", 90.6, 1),  # → 91, the brief's example
        ("heart_rate", 130.5, 3),  # → 131
        ("temperature", 35.04, 3),  # → 35.0
        ("temperature", 35.05, 1),  # → 35.1 (binary 35.05 is 35.0499…; we round what was sent)
        ("temperature", 36.05, 0),  # → 36.1
        ("temperature", 38.04, 0),  # → 38.0
        ("temperature", 38.05, 1),  # → 38.1
        ("temperature", 39.049, 1),  # → 39.0
        ("temperature", 39.05, 2),  # → 39.1
    ],
)
def test_real_readings_round_half_up_to_the_chart_resolution(
    name: str, value: float, expected: int
) -> None:
    assert points(name, value) == expected


def test_numpy_readings_round_like_the_number_the_device_sent() -> None:
    assert points("temperature", np.float32(38.05)) == 1
    assert points("temperature", np.float64(38.05)) == 1
    assert points("heart_rate", np.int64(131)) == 3
    assert points("on_oxygen", np.bool_(True)) == 2


# --- RCP NEWS2 2017, Chart 2: risk --------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "total", "risk", "single_param_3"),
    [
        ({}, 0, "low", False),
        ({"resp_rate": 22, "heart_rate": 115}, 4, "low", False),
        ({"resp_rate": 26}, 3, "low-medium", True),
        ({"resp_rate": 26, "heart_rate": 95}, 4, "low-medium", True),
        ({"resp_rate": 22, "heart_rate": 115, "temperature": 38.5}, 5, "medium", False),
        ({"resp_rate": 22, "consciousness": "C"}, 5, "medium", True),
        ({"resp_rate": 22, "heart_rate": 115, "systolic_bp": 95}, 6, "medium", False),
        (
            {"resp_rate": 22, "heart_rate": 115, "systolic_bp": 95, "temperature": 38.5},
            7,
            "high",
            False,
        ),
        (
            {
                "resp_rate": 30,
                "spo2": 85,
                "on_oxygen": True,
                "systolic_bp": 80,
                "heart_rate": 140,
                "consciousness": "U",
                "temperature": 34.0,
            },
            20,
            "high",
            True,
        ),
    ],
)
def test_risk_bands(changes: dict[str, Any], total: int, risk: str, single_param_3: bool) -> None:
    result = score(**changes)
    assert (result.total, result.risk, result.single_param_3) == (total, risk, single_param_3)
    assert result.complete


@pytest.mark.parametrize(
    ("observations", "spo2_scale", "expected_scores"),
    [
        (  # deteriorating on air: every row but consciousness off normal
            {
                "resp_rate": 22,
                "spo2": 93,
                "on_oxygen": False,
                "systolic_bp": 105,
                "heart_rate": 115,
                "consciousness": "A",
                "temperature": 38.5,
            },
            1,
            {
                "resp_rate": 2,
                "spo2": 2,
                "on_oxygen": 0,
                "systolic_bp": 1,
                "heart_rate": 2,
                "consciousness": 0,
                "temperature": 1,
            },
        ),
        (  # COPD patient within target on 2 L oxygen, new confusion
            {
                "resp_rate": 19,
                "spo2": 90,
                "on_oxygen": True,
                "systolic_bp": 135,
                "heart_rate": 88,
                "consciousness": "C",
                "temperature": 37.2,
            },
            2,
            {
                "resp_rate": 0,
                "spo2": 0,
                "on_oxygen": 2,
                "systolic_bp": 0,
                "heart_rate": 0,
                "consciousness": 3,
                "temperature": 0,
            },
        ),
        (  # the same saturation scored on Scale 1
            {
                "resp_rate": 19,
                "spo2": 90,
                "on_oxygen": True,
                "systolic_bp": 135,
                "heart_rate": 88,
                "consciousness": "C",
                "temperature": 37.2,
            },
            1,
            {
                "resp_rate": 0,
                "spo2": 3,
                "on_oxygen": 2,
                "systolic_bp": 0,
                "heart_rate": 0,
                "consciousness": 3,
                "temperature": 0,
            },
        ),
    ],
)
def test_worked_totals(
    observations: dict[str, Any], spo2_scale: int, expected_scores: dict[str, int]
) -> None:
    result = news2(**observations, spo2_scale=spo2_scale)
    assert dict(result.scores) == expected_scores
    assert list(result.scores) == list(PARAMETERS)  # chart order
    assert result.total == sum(expected_scores.values())


@pytest.mark.parametrize(
    ("changes", "total", "risk"),
    [
        # RR 22: 2, SpO2 93: 2, air: 0, SBP 105: 1, HR 115: 2, A: 0, 38.5 °C: 1
        ({"resp_rate": 22, "spo2": 93, "systolic_bp": 105, "heart_rate": 115, "temperature": 38.5},
         8, "high"),
        # RR 24: 2, SpO2 94: 1, oxygen: 2, SBP 111: 0, HR 91: 1, A: 0, 36.0 °C: 1
        ({"resp_rate": 24, "spo2": 94, "on_oxygen": True, "systolic_bp": 111, "heart_rate": 91,
          "temperature": 36.0}, 7, "high"),
        # RR 9: 1, SpO2 96: 0, air: 0, SBP 101: 1, HR 41: 1, A: 0, 36.1 °C: 0
        ({"resp_rate": 9, "spo2": 96, "systolic_bp": 101, "heart_rate": 41, "temperature": 36.1},
         3, "low"),
    ],
)  # fmt: skip
def test_worked_totals_and_risks(changes: dict[str, Any], total: int, risk: str) -> None:
    result = score(**changes)
    assert (result.total, result.risk) == (total, risk)


# --- Missing parameters -------------------------------------------------------------------------


def test_nothing_observed_is_incomplete_not_normal() -> None:
    result = news2(
        resp_rate=None,
        spo2=None,
        on_oxygen=None,
        temperature=None,
        systolic_bp=None,
        heart_rate=None,
        consciousness=None,
    )
    assert result.missing == PARAMETERS
    assert dict(result.scores) == {}
    assert result.total == 0
    assert not result.complete


def test_missing_parameters_are_listed_in_chart_order_and_not_counted() -> None:
    result = score(temperature=None, heart_rate=None, resp_rate=25)
    assert result.missing == ("heart_rate", "temperature")
    assert "heart_rate" not in result.scores
    assert "temperature" not in result.scores
    assert result.total == 3
    assert result.risk == "low-medium"
    assert not result.complete


def test_scale_2_high_saturation_without_air_or_oxygen_cannot_be_scored() -> None:
    result = score(spo2_scale=2, spo2=95, on_oxygen=None)
    assert result.missing == ("spo2", "on_oxygen")
    assert result.total == 0


@pytest.mark.parametrize(("spo2", "expected"), [(83, 3), (87, 1), (92, 0)])
def test_scale_2_at_or_below_target_is_scored_without_air_or_oxygen(
    spo2: int, expected: int
) -> None:
    result = score(spo2_scale=2, spo2=spo2, on_oxygen=None)
    assert result.scores["spo2"] == expected
    assert result.missing == ("on_oxygen",)


# --- Invalid input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"consciousness": "X"},
        {"consciousness": ""},
        {"consciousness": "alert"},
        {"consciousness": 0},
        {"spo2_scale": 3},
        {"spo2_scale": 0},
        {"spo2_scale": True},
        {"spo2_scale": "1"},
        {"spo2_scale": 1.5},
        {"resp_rate": math.nan},
        {"spo2": math.nan},
        {"temperature": math.nan},
        {"systolic_bp": math.nan},
        {"heart_rate": np.float64("nan")},
        {"heart_rate": math.inf},
        {"resp_rate": -1},
        {"temperature": -0.1},
        {"systolic_bp": -120},
        {"heart_rate": -60.0},
        {"spo2": -5},
        {"spo2": 100.5},
        {"heart_rate": "70"},
        {"heart_rate": True},
        {"on_oxygen": "yes"},
        {"on_oxygen": 2},
        {"on_oxygen": 0.5},
    ],
)
def test_invalid_input_raises_value_error(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must"):
        score(**changes)


def test_error_names_the_parameter() -> None:
    with pytest.raises(ValueError, match="heart_rate"):
        score(heart_rate=math.nan)
    with pytest.raises(ValueError, match="ACVPU"):
        score(consciousness="X")


# --- The value object ---------------------------------------------------------------------------


def test_result_is_frozen_slotted_and_its_scores_immutable() -> None:
    result = score()
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.total = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        result.scores["heart_rate"] = 3  # type: ignore[index]
    assert not hasattr(result, "__dict__")


def test_result_scores_cannot_be_changed_through_the_callers_dict() -> None:
    mine = {"heart_rate": 1}
    result = News2.from_scores(mine)
    mine["heart_rate"] = 3
    assert result.scores["heart_rate"] == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"total": 2, "risk": "low", "scores": {"heart_rate": 1}},
        {"total": 1, "risk": "medium", "scores": {"heart_rate": 1}},
        {"total": 4, "risk": "low", "scores": {"heart_rate": 4}},
        {"total": 1, "risk": "low", "scores": {"pulse": 1}},
    ],
)
def test_an_inconsistent_result_cannot_be_built(fields: dict[str, Any]) -> None:
    missing = tuple(name for name in PARAMETERS if name not in fields["scores"])
    with pytest.raises(ValueError, match="must"):
        News2(**fields, missing=missing)


def test_an_incomplete_result_must_list_what_is_missing() -> None:
    with pytest.raises(ValueError, match="missing"):
        News2(total=1, risk="low", scores={"heart_rate": 1}, missing=())


def test_chart_tables_are_contiguous() -> None:
    tables = [
        signals.news2.RESP_RATE_BANDS,
        signals.news2.SPO2_SCALE_1_BANDS,
        signals.news2.SPO2_SCALE_2_AIR_BANDS,
        signals.news2.SPO2_SCALE_2_OXYGEN_BANDS,
        signals.news2.SYSTOLIC_BP_BANDS,
        signals.news2.HEART_RATE_BANDS,
        signals.news2.TEMPERATURE_TENTHS_BANDS,
    ]
    for bands in tables:
        assert bands[0][0] is None
        assert bands[-1][1] is None
        for (_, highest, _), (lowest, _, _) in itertools.pairwise(bands):
            assert highest is not None
            assert lowest == highest + 1


def test_docstring_example() -> None:
    assert doctest.testmod(signals.news2).failed == 0


# --- Properties ---------------------------------------------------------------------------------


def maybe(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | values


def reading(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


OBSERVATIONS = st.fixed_dictionaries(
    {
        "resp_rate": maybe(reading(0, 80)),
        "spo2": maybe(reading(0, 100)),
        "on_oxygen": maybe(st.booleans()),
        "temperature": maybe(reading(25, 45)),
        "systolic_bp": maybe(reading(0, 300)),
        "heart_rate": maybe(reading(0, 300)),
        "consciousness": maybe(st.sampled_from("ACVPUacvpu")),
        "spo2_scale": st.sampled_from([1, 2]),
    }
)


@given(OBSERVATIONS)
def test_total_is_the_sum_of_what_was_scored(observations: dict[str, Any]) -> None:
    result = news2(**observations)
    assert result.total == sum(result.scores.values())
    assert 0 <= result.total <= 20
    assert set(result.scores).isdisjoint(result.missing)
    assert set(result.scores) | set(result.missing) == set(PARAMETERS)
    assert result.complete == (not result.missing)
    unobserved = {k for k, v in observations.items() if v is None}
    assert unobserved <= set(result.missing)


@given(OBSERVATIONS)
def test_risk_follows_chart_2(observations: dict[str, Any]) -> None:
    result = news2(**observations)
    if result.total >= 7:
        assert result.risk == "high"
    elif result.total >= 5:
        assert result.risk == "medium"
    elif any(v == 3 for v in result.scores.values()):
        assert result.risk == "low-medium"
    else:
        assert result.risk == "low"


# name, a value inside the normal band, the highest value to draw
CENTRES = [
    ("resp_rate", 16.0, 80.0),
    ("systolic_bp", 150.0, 300.0),
    ("heart_rate", 70.0, 300.0),
    ("temperature", 37.0, 45.0),
]


@pytest.mark.parametrize(("name", "centre", "top"), CENTRES)
@given(data=st.data())
def test_points_never_fall_moving_away_from_normal(
    name: str, centre: float, top: float, data: st.DataObject
) -> None:
    below = sorted(data.draw(st.lists(reading(0, centre), min_size=2, max_size=2)))
    above = sorted(data.draw(st.lists(reading(centre, top), min_size=2, max_size=2)))
    assert points(name, below[0]) >= points(name, below[1])
    assert points(name, above[0]) <= points(name, above[1])


@pytest.mark.parametrize(("spo2_scale", "on_oxygen"), [(1, False), (1, True), (2, False)])
@given(pair=st.lists(reading(0, 100), min_size=2, max_size=2).map(sorted))
def test_spo2_points_never_rise_with_saturation_below_the_top_of_target(
    spo2_scale: int, on_oxygen: bool, pair: list[float]
) -> None:
    low, high = (score(spo2_scale=spo2_scale, spo2=v, on_oxygen=on_oxygen) for v in pair)
    assert low.scores["spo2"] >= high.scores["spo2"]


@given(hundredths=st.integers(0, 30_000))
def test_integer_rows_score_the_value_rounded_half_up(hundredths: int) -> None:
    value = hundredths / 100  # str() of this is the 2-decimal text, as a device would send
    rounded = (hundredths + 50) // 100  # half up, done in integers
    assert points("heart_rate", value) == points("heart_rate", rounded)
    assert points("systolic_bp", value) == points("systolic_bp", rounded)


@given(hundredths=st.integers(2_500, 4_500))
def test_temperature_scores_the_value_rounded_half_up_to_one_decimal(hundredths: int) -> None:
    tenths = (hundredths + 5) // 10
    assert points("temperature", hundredths / 100) == points("temperature", tenths / 10)


# --- news2_from_latest --------------------------------------------------------------------------

MINUTE_US = 60_000_000
AT_US = 1_750_000_000_000_000
FRESH_US = 15 * MINUTE_US


def all_metrics(ts_us: int) -> dict[Metric, tuple[int, float]]:
    return {
        Metric.RESP_RATE: (ts_us, 22.0),
        Metric.SPO2: (ts_us, 93.0),
        Metric.ON_OXYGEN: (ts_us, 1.0),
        Metric.SYSTOLIC_BP: (ts_us, 105.0),
        Metric.HEART_RATE: (ts_us, 115.0),
        Metric.CONSCIOUSNESS: (ts_us, 2.0),  # "V"
        Metric.TEMPERATURE: (ts_us, 38.5),
        Metric.STEPS: (ts_us, 400.0),  # not a NEWS2 parameter
    }


@pytest.mark.parametrize("age_us", [0, MINUTE_US, FRESH_US])
def test_from_latest_scores_fresh_values(age_us: int) -> None:
    result = news2_from_latest(all_metrics(AT_US - age_us), at_us=AT_US, freshness_us=FRESH_US)
    assert dict(result.scores) == {
        "resp_rate": 2,
        "spo2": 2,
        "on_oxygen": 2,
        "systolic_bp": 1,
        "heart_rate": 2,
        "consciousness": 3,
        "temperature": 1,
    }
    assert result.complete


@pytest.mark.parametrize(
    "ts_us", [AT_US - FRESH_US - 1, AT_US - 10 * FRESH_US, AT_US + 1, AT_US + MINUTE_US]
)
def test_from_latest_treats_stale_and_future_values_as_missing(ts_us: int) -> None:
    result = news2_from_latest(all_metrics(ts_us), at_us=AT_US, freshness_us=FRESH_US)
    assert result.missing == PARAMETERS
    assert result.total == 0


def test_from_latest_mixes_fresh_and_stale() -> None:
    latest = all_metrics(AT_US)
    latest[Metric.HEART_RATE] = (AT_US - FRESH_US - 1, 150.0)
    latest[Metric.TEMPERATURE] = (AT_US + 1, 39.5)
    del latest[Metric.CONSCIOUSNESS]
    result = news2_from_latest(latest, at_us=AT_US, freshness_us=FRESH_US)
    assert result.missing == ("heart_rate", "consciousness", "temperature")
    assert result.total == 2 + 2 + 2 + 1


def test_from_latest_passes_the_spo2_scale_and_decodes_air() -> None:
    latest = all_metrics(AT_US)
    latest[Metric.ON_OXYGEN] = (AT_US, 0.0)
    latest[Metric.SPO2] = (AT_US, 90.0)
    latest[Metric.CONSCIOUSNESS] = (AT_US, 0.0)  # "A"
    result = news2_from_latest(latest, at_us=AT_US, freshness_us=FRESH_US, spo2_scale=2)
    assert result.scores["spo2"] == 0
    assert result.scores["on_oxygen"] == 0
    assert result.scores["consciousness"] == 0


@pytest.mark.parametrize(
    ("metric", "value"),
    [
        (Metric.ON_OXYGEN, 0.5),
        (Metric.ON_OXYGEN, 2.0),
        (Metric.CONSCIOUSNESS, 5.0),
        (Metric.CONSCIOUSNESS, 1.5),
        (Metric.CONSCIOUSNESS, -1.0),
        (Metric.CONSCIOUSNESS, math.nan),
        (Metric.HEART_RATE, math.nan),
    ],
)
def test_from_latest_rejects_impossible_codes(metric: Metric, value: float) -> None:
    latest = all_metrics(AT_US)
    latest[metric] = (AT_US, value)
    with pytest.raises(ValueError, match="must"):
        news2_from_latest(latest, at_us=AT_US, freshness_us=FRESH_US)


def test_from_latest_rejects_a_negative_window() -> None:
    with pytest.raises(ValueError, match="freshness_us"):
        news2_from_latest({}, at_us=AT_US, freshness_us=-1)


# --- A real recording: MIMIC-III numerics, record s00001-2896-10-10-00-31n ---------------------

EXCERPT = Path(__file__).parents[1] / "data" / "mimic3_s00001_excerpt.csv"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
COLUMNS: Mapping[str, Metric] = {
    "heart_rate_bpm": Metric.HEART_RATE,
    "resp_rate_per_min": Metric.RESP_RATE,
    "spo2_pct": Metric.SPO2,
    "nbp_systolic_mmhg": Metric.SYSTOLIC_BP,
}


def excerpt_rows() -> list[dict[str, str]]:
    with EXCERPT.open(newline="") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def to_us(iso: str) -> int:
    return (datetime.fromisoformat(iso) - EPOCH) // timedelta(microseconds=1)


def plausible_readings(rows: list[dict[str, str]]) -> Iterator[tuple[int, int, Metric, float]]:
    """Yield (sample, time µs, metric, value), dropping what ingest drops.

    The monitor writes 0 when a sensor drops out (and once 11.5 bpm during a dropout); both lie
    outside ``PLAUSIBLE``, so the pipeline never stores them and they must not be scored.
    """
    for row in rows:
        for column, metric in COLUMNS.items():
            if row[column] and PLAUSIBLE[metric].contains(float(row[column])):
                yield int(row["sample"]), to_us(row["time_utc"]), metric, float(row[column])


def latest_by_minute() -> dict[int, tuple[int, dict[Metric, tuple[int, float]]]]:
    """Per sample: its time and each metric's latest plausible (time, value) so far."""
    rows = excerpt_rows()
    readings = list(plausible_readings(rows))
    out: dict[int, tuple[int, dict[Metric, tuple[int, float]]]] = {}
    latest: dict[Metric, tuple[int, float]] = {}
    for row in rows:
        sample = int(row["sample"])
        for s, ts_us, metric, value in readings:
            if s == sample:
                latest[metric] = (ts_us, value)
        out[sample] = (to_us(row["time_utc"]), dict(latest))
    return out


FROM_RECORDING = {"on_oxygen", "consciousness", "temperature"}  # never in this recording


# Hand-checked against RCP NEWS2 2017 Chart 1. Values are the excerpt's, the NBP the latest within
# 15 minutes; a parameter absent from the dict had no fresh value. Rounding shown as value→chart.
@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        # HR 55.5→56: 0; RR 11.1→11: 1; SpO2 96.0: 0; no NBP yet (first at 1323): missing.
        (1320, {"heart_rate": 0, "resp_rate": 1, "spo2": 0}),
        # HR 53.5→54: 0; RR 9.8→10: 1; SpO2 96.7→97: 0; NBP 131 (1343): 0.
        (1351, {"heart_rate": 0, "resp_rate": 1, "spo2": 0, "systolic_bp": 0}),
        # 9 min into a dropout: last HR 52.3→52: 0, RR 11.5→12: 0, SpO2 97.2→97: 0 (all 1381),
        # the 11.5 bpm at 1389 is implausible; NBP 120 (1374) is 16 min old: missing.
        (1390, {"heart_rate": 0, "resp_rate": 0, "spo2": 0}),
        # 19 min into the dropout: nothing fresh at all. Scoring the zeros would give 3+3+3.
        (1400, {}),
        # HR 53.3→53: 0; RR 11.5→12 (half up): 0; SpO2 98.6→99: 0; NBP 149 (1411): 0.
        (1414, {"heart_rate": 0, "resp_rate": 0, "spo2": 0, "systolic_bp": 0}),
        # HR 50.2→50: 1; RR 12.1→12: 0; SpO2 97.3→97: 0; NBP 149 (1411): 0.
        (1419, {"heart_rate": 1, "resp_rate": 0, "spo2": 0, "systolic_bp": 0}),
        # HR 50.8→51: 0 (rounding lifts it into the normal band); RR 10.3→10: 1; SpO2 97.9→98: 0;
        # NBP 145 (1421): 0.
        (1425, {"heart_rate": 0, "resp_rate": 1, "spo2": 0, "systolic_bp": 0}),
        # HR 48.1→48: 1; RR 15.5→16: 0; SpO2 97.6→98: 0; NBP 145 (1421): 0.
        (1426, {"heart_rate": 1, "resp_rate": 0, "spo2": 0, "systolic_bp": 0}),
        # HR 52.8→53: 0; RR 13.3→13: 0; SpO2 93.6→94: 1; NBP 129 (1431): 0.
        (1438, {"heart_rate": 0, "resp_rate": 0, "spo2": 1, "systolic_bp": 0}),
        # SpO2 reads 0 (dropout since 1439): the 93.6 at 1438 is still fresh: 1.
        (1440, {"heart_rate": 0, "resp_rate": 0, "spo2": 1, "systolic_bp": 0}),
    ],
)
def test_recording_hand_checked_minutes(sample: int, expected: dict[str, int]) -> None:
    at_us, latest = latest_by_minute()[sample]
    result = news2_from_latest(latest, at_us=at_us, freshness_us=FRESH_US)
    assert dict(result.scores) == expected
    assert set(result.missing) == set(PARAMETERS) - set(expected)
    assert set(result.missing) >= FROM_RECORDING
    assert not result.complete
    assert result.total == sum(expected.values())


def reference_points(metric: Metric, text: str) -> int:
    """Chart 1 coded again, independently: integer half-up rounding of the recorded text."""
    whole, _, frac = text.partition(".")
    value = int(whole) + (1 if frac and int(frac[0]) >= 5 else 0)  # one decimal in the excerpt
    if metric is Metric.HEART_RATE:
        edges = [(40, 3), (50, 1), (90, 0), (110, 1), (130, 2)]
        top = 3
    elif metric is Metric.RESP_RATE:
        edges = [(8, 3), (11, 1), (20, 0), (24, 2)]
        top = 3
    elif metric is Metric.SPO2:
        edges = [(91, 3), (93, 2), (95, 1)]
        top = 0
    else:
        edges = [(90, 3), (100, 2), (110, 1), (219, 0)]
        top = 3
    return next((p for highest, p in edges if value <= highest), top)


def test_recording_every_minute_matches_an_independent_reference() -> None:
    rows = excerpt_rows()
    by_sample = latest_by_minute()
    text = {(int(r["sample"]), m): r[c] for r in rows for c, m in COLUMNS.items() if r[c]}
    names = {
        Metric.HEART_RATE: "heart_rate",
        Metric.RESP_RATE: "resp_rate",
        Metric.SPO2: "spo2",
        Metric.SYSTOLIC_BP: "systolic_bp",
    }
    scored_minutes = 0
    for sample, (at_us, latest) in by_sample.items():
        result = news2_from_latest(latest, at_us=at_us, freshness_us=FRESH_US)
        expected: dict[str, int] = {}
        for metric, name in names.items():
            # the newest plausible reading within the window, found by walking back in minutes
            for back in range(16):
                value = text.get((sample - back, metric))
                if value is not None and PLAUSIBLE[metric].contains(float(value)):
                    expected[name] = reference_points(metric, value)
                    break
        assert dict(result.scores) == expected, sample
        scored_minutes += bool(expected)
    assert scored_minutes == len(rows) - 5  # 1397-1401: every sensor silent for over 15 minutes


def test_recording_dropout_zeros_would_be_scored_as_extremes_if_not_filtered() -> None:
    rows = excerpt_rows()
    dropouts = [r for r in rows if r["heart_rate_bpm"] == "0.0" and r["spo2_pct"] == "0.0"]
    assert len(dropouts) >= 15
    for row in dropouts:
        naive = news2(
            resp_rate=float(row["resp_rate_per_min"]),
            spo2=float(row["spo2_pct"]),
            on_oxygen=None,
            temperature=None,
            systolic_bp=None,
            heart_rate=float(row["heart_rate_bpm"]),
            consciousness=None,
        )
        assert naive.total == 9  # 0/min, 0 %, 0 bpm: three 3s, an alarm from a loose probe
        assert naive.risk == "high"
    # the pipeline's view of the same minutes never scores them
    filtered = {(s, m) for s, _, m, _ in plausible_readings(dropouts)}
    assert filtered == set()
