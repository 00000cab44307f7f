"""Time-domain HRV against hand-worked examples, properties and every Welltory measurement."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from signals.hrv import TimeDomain, clean_nn, time_domain

WELLTORY_CSV = Path(__file__).parent.parent / "data" / "welltory" / "hrv_rr.csv"

# What the investigation found (docs/hrv.md): no row disagrees beyond the published rounding.
WELLTORY_ROWS = 2107
EXPECTED_MISMATCHING_ROWS = 0
# Welltory's bpm is floor(mean(60000 / RR)), not round(60000 / mean RR): the two differ by one
# beat/min in this many rows, which is why mean_hr_bpm is not compared with bpm directly.
EXPECTED_BPM_ROUNDED_MEAN_HR_DIFFERENT = 624


def _welltory_rows() -> list[dict[str, str]]:
    with WELLTORY_CSV.open(newline="") as f:
        return list(csv.DictReader(f))


def _rr(row: dict[str, str]) -> npt.NDArray[np.float64]:
    return np.array(row["rr_data"].split(","), dtype=np.float64)


# --- hand-worked examples -----------------------------------------------------------------------


def test_hand_worked_four_intervals() -> None:
    # NN 800, 850, 790, 800: mean 810; deviations -10, 40, -20, -10 → Σ² = 2200, SDNN = √(2200/3).
    # ΔNN = 50, -60, 10: Σ² = 6200 → RMSSD = √(6200/3); mean Δ = 0 → SDSD = √(6200/2).
    # |Δ| > 50: only 60 (50 is not strictly greater) → pNN50 = 100/3.
    td = time_domain([800, 850, 790, 800])
    assert (td.n_intervals, td.n_differences, td.mean_nn_ms) == (4, 3, 810.0)
    assert td.sdnn_ms == pytest.approx(math.sqrt(2200 / 3))
    assert td.rmssd_ms == pytest.approx(math.sqrt(6200 / 3))
    assert td.sdsd_ms == pytest.approx(math.sqrt(6200 / 2))
    assert td.pnn50_pct == pytest.approx(100 / 3)
    assert td.mean_hr_bpm == pytest.approx(60000 / 810)
    assert isinstance(td, TimeDomain)


def test_hand_worked_sdsd_is_of_signed_differences() -> None:
    # ΔNN = 100, 100, 100: every difference equal, so SDSD (signed) is 0 while RMSSD is 100;
    # an absolute-difference SDSD would give the same 0 here, so add a sign change below.
    rising = time_domain([600, 700, 800, 900])
    assert rising.sdsd_ms == 0.0
    assert rising.rmssd_ms == pytest.approx(100.0)
    assert rising.pnn50_pct == 100.0
    # ΔNN = 100, -100: signed SD = √((100² + 100²)/1) = 141.42; absolute would be 0.
    alternating = time_domain([700, 800, 700])
    assert alternating.sdsd_ms == pytest.approx(math.sqrt(20000))
    assert alternating.sdnn_ms == pytest.approx(math.sqrt(10000 / 3))


def test_two_intervals_give_one_difference_and_no_sdsd() -> None:
    td = time_domain([1000.0, 1060.0])
    assert (td.n_intervals, td.n_differences) == (2, 1)
    assert td.rmssd_ms == pytest.approx(60.0)
    assert td.pnn50_pct == 100.0
    assert td.mean_hr_bpm == pytest.approx(60000 / 1030)
    assert math.isnan(td.sdsd_ms)


def test_mask_takes_differences_only_between_adjacent_nn() -> None:
    rr = [800, 810, 400, 1200, 820, 830]
    mask = np.array([True, True, False, False, True, True])
    td = time_domain(rr, mask=mask)
    # NN 800, 810, 820, 830; the pairs (810, 820) straddle the gap and are not successive.
    assert (td.n_intervals, td.n_differences) == (4, 2)
    assert td.mean_nn_ms == pytest.approx(815.0)
    assert td.rmssd_ms == pytest.approx(10.0)
    assert td.pnn50_pct == 0.0


def test_result_is_frozen() -> None:
    td = time_domain([800, 810, 820])
    with pytest.raises(AttributeError):
        td.sdnn_ms = 0.0  # type: ignore[misc]


# --- invalid input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rr", "message"),
    [
        ([], "at least 2"),
        ([800], "at least 2"),
        ([800, float("nan"), 810], "finite"),
        ([800, float("inf")], "finite"),
        ([800, 0, 810], "positive"),
        ([800, -5], "positive"),
        ([[800, 810], [820, 830]], "one-dimensional"),
        (["800", "abc"], "numbers"),
    ],
)
def test_invalid_intervals_raise(rr: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        time_domain(rr)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        clean_nn(rr)  # type: ignore[arg-type]


def test_mask_must_match_and_leave_adjacent_pair() -> None:
    with pytest.raises(ValueError, match="mask must be 3 booleans"):
        time_domain([800, 810, 820], mask=[True, True])
    with pytest.raises(ValueError, match="mask must be 3 booleans"):
        time_domain([800, 810, 820], mask=[1, 1, 1])
    with pytest.raises(ValueError, match="at least 2 NN"):
        time_domain([800, 810, 820], mask=np.array([True, False, False]))
    with pytest.raises(ValueError, match="adjacent NN"):
        time_domain([800, 810, 820], mask=np.array([True, False, True]))


def test_labels_must_be_one_per_beat() -> None:
    with pytest.raises(ValueError, match="one label per beat: 4 for 3 intervals"):
        clean_nn([800, 810, 820], labels=["N", "N", "N"])


# --- properties ---------------------------------------------------------------------------------

rr_series = st.lists(
    st.floats(min_value=300.0, max_value=2000.0, allow_nan=False, allow_infinity=False),
    min_size=3,
    max_size=300,
)


@given(rr_series, st.floats(min_value=-250.0, max_value=1000.0))
def test_sdnn_rmssd_pnn50_ignore_a_constant_offset(rr: list[float], offset: float) -> None:
    a = time_domain(rr)
    b = time_domain(np.array(rr) + offset)
    assert b.sdnn_ms == pytest.approx(a.sdnn_ms, rel=1e-9, abs=1e-6)
    assert b.rmssd_ms == pytest.approx(a.rmssd_ms, rel=1e-9, abs=1e-6)
    assert b.mean_nn_ms == pytest.approx(a.mean_nn_ms + offset, rel=1e-12)


@given(st.floats(min_value=300.0, max_value=2000.0), st.integers(min_value=2, max_value=500))
def test_constant_series_has_no_variability(rr: float, n: int) -> None:
    td = time_domain([rr] * n)
    assert td.rmssd_ms == 0.0
    assert td.pnn50_pct == 0.0
    assert td.sdnn_ms == pytest.approx(0.0, abs=1e-9)
    assert td.mean_hr_bpm == pytest.approx(60000 / rr)


@given(rr_series)
def test_pnn50_is_a_percentage(rr: list[float]) -> None:
    assert 0.0 <= time_domain(rr).pnn50_pct <= 100.0


@given(rr_series)
def test_time_reversal_keeps_rmssd_and_pnn50(rr: list[float]) -> None:
    forward, backward = time_domain(rr), time_domain(rr[::-1])
    assert backward.rmssd_ms == pytest.approx(forward.rmssd_ms, rel=1e-12)
    assert backward.pnn50_pct == forward.pnn50_pct
    assert backward.sdnn_ms == pytest.approx(forward.sdnn_ms, rel=1e-9, abs=1e-9)


@given(rr_series)
def test_sdsd_rmssd_identity(rr: list[float]) -> None:
    # With signed differences d (m of them): SDSD² · (m − 1)/m = RMSSD² − mean(d)².
    td = time_domain(rr)
    m = td.n_differences
    mean_d = (rr[-1] - rr[0]) / m
    assert td.sdsd_ms**2 * (m - 1) / m == pytest.approx(
        td.rmssd_ms**2 - mean_d**2, rel=1e-7, abs=1e-6
    )


@given(rr_series)
def test_all_true_mask_is_no_mask(rr: list[float]) -> None:
    assert time_domain(rr, mask=np.ones(len(rr), dtype=bool)) == time_domain(rr)


# --- every Welltory measurement -----------------------------------------------------------------


def test_welltory_every_row_agrees() -> None:
    rows = _welltory_rows()
    assert len(rows) == WELLTORY_ROWS
    mismatching: list[str] = []
    for row in rows:
        td = time_domain(_rr(row))
        ours = {
            "meanrr": td.mean_nn_ms,
            "sdnn": td.sdnn_ms,
            "rmssd": td.rmssd_ms,
            "pnn50": td.pnn50_pct,
        }
        # Welltory publishes 3 decimals (pNN50 rounded to 2 and padded with a 0), so ours must be
        # within half a unit of the last published place, and within the 0.01 target anyway.
        half_unit = {"meanrr": 0.0005, "sdnn": 0.0005, "rmssd": 0.0005, "pnn50": 0.005}
        off = [
            f"{name} {ours[name]:.4f} vs {row[name]}"
            for name in ours
            if abs(ours[name] - float(row[name])) > min(half_unit[name] + 1e-9, 0.01)
        ]
        if off:
            mismatching.append(f"{row['rr_code']}: {'; '.join(off)}")
    assert len(mismatching) == EXPECTED_MISMATCHING_ROWS, mismatching[:10]


def test_welltory_bpm_is_truncated_mean_instantaneous_rate() -> None:
    rows = _welltory_rows()
    bpm = np.array([float(row["bpm"]) for row in rows])
    instantaneous = np.array([math.floor(float(np.mean(60000 / _rr(row)))) for row in rows])
    assert int(np.count_nonzero(instantaneous != bpm)) == 0
    ours = np.array([time_domain(_rr(row)).mean_hr_bpm for row in rows])
    assert int(np.count_nonzero(np.round(ours) != bpm)) == EXPECTED_BPM_ROUNDED_MEAN_HR_DIFFERENT
    # 60000/mean(RR) ≤ mean(60000/RR) (Jensen), so ours never exceeds Welltory's by a full beat.
    assert np.all(ours < bpm + 1)


# --- NN cleaning --------------------------------------------------------------------------------


def _ectopy(pattern: str) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.str_]]:
    """Return RR and beat labels: 20 sinus beats, ``pattern`` repeated 30 times, 21 sinus beats."""
    rng = np.random.default_rng(20261128)
    labels = np.array(["N"] * 20 + list(pattern) * 30 + ["N"] * 21)
    rr = 800.0 + rng.normal(0.0, 15.0, labels.size - 1)
    into_v = labels[1:] == "V"
    out_of_v = (labels[:-1] == "V") & ~into_v
    rr[into_v] = 480.0 + rng.normal(0.0, 10.0, int(into_v.sum()))  # coupling interval
    rr[out_of_v] = 1120.0 + rng.normal(0.0, 10.0, int(out_of_v.sum()))  # compensatory pause
    return rr, labels


def _ectopic_adjacent(labels: npt.NDArray[np.str_]) -> npt.NDArray[np.bool_]:
    adjacent: npt.NDArray[np.bool_] = (labels[:-1] == "V") | (labels[1:] == "V")
    return adjacent


def test_clean_nn_with_labels_drops_both_intervals_around_every_ectopic() -> None:
    rr, labels = _ectopy("NV")  # 30 beats of ventricular bigeminy
    nn, mask = clean_nn(rr, labels=labels)
    assert np.array_equal(mask, ~_ectopic_adjacent(labels))
    assert np.array_equal(nn, rr[mask])
    assert nn.min() > 700.0  # no coupling interval left
    assert nn.max() < 900.0  # no compensatory pause left
    td = time_domain(rr, mask=mask)
    # 20 + 20 intervals between sinus beats; the bigeminy run is a gap no difference spans.
    assert (td.n_intervals, td.n_differences) == (40, 38)


def test_clean_nn_with_labels_drops_regular_couplets() -> None:
    rr, labels = _ectopy("NVV")
    _, mask = clean_nn(rr, labels=labels)
    assert np.array_equal(mask, ~_ectopic_adjacent(labels))


def test_clean_nn_accepts_other_normal_label_sets() -> None:
    nn, mask = clean_nn([800, 810, 820], labels=["N", "L", "N", "N"], normal_labels={"N"})
    assert mask.tolist() == [False, False, True]
    assert nn.tolist() == [820.0]


def test_clean_nn_without_labels_drops_isolated_artefacts() -> None:
    rr = np.full(40, 800.0)
    rr[10], rr[11] = 480.0, 1120.0  # an isolated premature beat
    rr[25] = 1600.0  # a missed detection
    rr[32] = 300.0  # an extra detection
    _, mask = clean_nn(rr)
    assert np.flatnonzero(~mask).tolist() == [10, 11, 25, 32]


def test_clean_nn_without_labels_catches_strict_alternation() -> None:
    # In plain bigeminy the 11-beat window centred on an interval holds 6 of the *other* kind,
    # so the median sits in the other population and every ectopic-adjacent interval is caught.
    rr, labels = _ectopy("NV")
    _, mask = clean_nn(rr)
    assert not np.any(mask & _ectopic_adjacent(labels))


def test_clean_nn_without_labels_catches_trigeminy() -> None:
    # N N V repeated: the 11-beat median is a sinus interval, and each premature pair (480 ms
    # then 1120 ms, summing to two sinus cycles) is also caught by the compensatory-pause rule.
    rr, labels = _ectopy("NNV")
    _, mask = clean_nn(rr)
    adjacent = _ectopic_adjacent(labels)
    assert not np.any(mask & adjacent)
    assert np.array_equal(mask, ~adjacent)  # and no sinus interval is lost


def test_clean_nn_without_labels_catches_the_pause_of_regular_couplets() -> None:
    # The documented limit, narrowed: with N V V repeated, two 480 ms coupling intervals for each
    # pause, the 11-beat median is itself an ectopic interval. The second coupling interval and
    # the pause form a short-long pair summing to about two sinus cycles and are dropped (the
    # 20 % median rule alone kept 56 of the 60 coupling intervals); the N→V coupling interval,
    # followed by another short one, has no such signature and 28 of 30 still pass as NN.
    # Labels are needed for couplets (docs/hrv.md).
    rr, labels = _ectopy("NVV")
    _, mask = clean_nn(rr)
    into_v = labels[1:] == "V"
    first_coupling = into_v & (labels[:-1] != "V")
    assert int(np.count_nonzero(mask & first_coupling)) == 28
    assert int(np.count_nonzero(mask & into_v & ~first_coupling)) == 0
    assert int(np.count_nonzero(mask & _ectopic_adjacent(labels))) == 28
    assert np.all(mask[~_ectopic_adjacent(labels)])  # no sinus interval is lost


def test_clean_nn_without_labels_keeps_sinus_arrhythmia_below_20_pct_steps() -> None:
    # Respiratory sinus arrhythmia of ±10 % over a 4.5-beat breath (successive intervals differ by
    # up to 14 %) has no short-long premature pair and is kept whole. The cost of the
    # compensatory-pause rule: at ±15 % the steps reach 21 % and 44 of them exceed 20 %, those
    # short-long pairs look premature, and 90 of 399 intervals are dropped (Malik et al. 1989's
    # successive-interval 20 % rule would drop them too). See docs/hrv.md.
    beats = np.arange(400)
    gentle = 800.0 * (1.0 + 0.10 * np.sin(2 * np.pi * beats / 4.5))
    assert bool(np.all(clean_nn(gentle)[1]))
    strong = 800.0 * (1.0 + 0.15 * np.sin(2 * np.pi * beats / 4.5))
    assert int(np.count_nonzero(np.diff(strong) / strong[:-1] > 0.20)) == 44
    assert int(np.count_nonzero(~clean_nn(strong)[1])) == 90
