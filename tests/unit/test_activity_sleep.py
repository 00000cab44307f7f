"""Test activity and sleep features on tables, properties and real data (docs/activity-sleep.md).

Real data, copied into tests/data with provenance in each folder's README: 12.8 days of Actiwatch
counts with a sleep diary (pyActigraphy example, data only) and a month of Fitbit daily summaries
(Furberg et al., Zenodo doi:10.5281/zenodo.53894). The readers live here: ``signals`` does no I/O.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from signals.activity import (
    Calibration,
    CalibrationError,
    IntensityMinutes,
    calibrate,
    daily_totals,
    dedupe_daily,
    enmo_mg,
    epoch_mean,
    epoch_sum,
    fitbit_nonwear_days,
    minutes_by_intensity,
    nonwear_from_counts,
    nonwear_from_flag,
    total_active_minutes,
)
from signals.sleep import (
    main_sleep_period,
    nightly_summaries,
    noon_windows,
    score_cole_kripke,
    score_oakley,
    summarise_night,
)

DATA = Path(__file__).parent.parent / "data"
AWD = DATA / "actigraphy" / "example_01.AWD"
DIARY = DATA / "actigraphy" / "example_01_sleepdiary.csv"
MASKLOG = DATA / "actigraphy" / "example_masklog.csv"
FITBIT_DAILY = DATA / "fitbit" / "dailyActivity_merged.csv"
FITBIT_SLEEP = DATA / "fitbit" / "sleepDay_merged.csv"

# Actiwatch AWD epoch codes in 15-s units, as pyActigraphy reads them (4 = 1 minute).
AWD_EPOCH_S = {1: 15, 2: 30, 4: 60, 8: 120}


# --- readers (test-side only) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Awd:
    start: dt.datetime  # local wall-clock time of the first epoch (naive: the file has no zone)
    epoch_s: int
    counts: npt.NDArray[np.float64]
    markers: npt.NDArray[np.bool_]  # event-marker button presses ("71 M")


@cache
def read_awd(path: Path = AWD) -> Awd:
    """Read an Actiwatch AWD export: 7 header lines, then one ``count[ M]`` line per epoch."""
    lines = path.read_text().splitlines()
    header, body = lines[:7], [line for line in lines[7:] if line.strip()]
    start = dt.datetime.strptime(f"{header[1].strip()} {header[2].strip()}", "%d-%b-%Y %H:%M")  # noqa: DTZ007 - local time of an anonymised recording
    fields = [line.split() for line in body]
    counts = np.array([float(f[0]) for f in fields])
    markers = np.array([len(f) > 1 and f[1] == "M" for f in fields])
    return Awd(start, AWD_EPOCH_S[int(header[3])], counts, markers)


@cache
def read_diary(path: Path = DIARY) -> tuple[tuple[str, int, int], ...]:
    """Diary periods as (type, start epoch, stop epoch) of the AWD recording."""
    awd = read_awd()
    with path.open(newline="") as f:
        return tuple(
            (row["TYPE"], _epoch(awd, row["START"]), _epoch(awd, row["END"]))
            for row in csv.DictReader(f)
        )


def _epoch(awd: Awd, stamp: str) -> int:
    seconds = (dt.datetime.fromisoformat(stamp.strip()) - awd.start).total_seconds()
    return int(seconds // awd.epoch_s)


def _mask(n: int, periods: list[tuple[int, int]]) -> npt.NDArray[np.bool_]:
    m = np.zeros(n, dtype=bool)
    for a, b in periods:
        m[a:b] = True
    return m


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


# --- ENMO, calibration, epochs, intensity ---------------------------------------------------


@pytest.mark.parametrize(
    ("xyz", "expected_mg"),
    [
        ([0.0, 0.0, 1.0], 0.0),
        ([0.0, 0.0, 0.9], 0.0),  # negatives truncated
        ([0.0, 0.6, 0.8], 0.0),
        ([0.0, 0.0, 1.25], 250.0),
        ([1.2, 0.0, 0.5], 300.0),  # ‖(1.2, 0, 0.5)‖ = 1.3
    ],
)
def test_enmo_table(xyz: list[float], expected_mg: float) -> None:
    assert enmo_mg([xyz])[0] == pytest.approx(expected_mg, abs=1e-9)


@pytest.mark.parametrize(
    ("enmo", "expected"),
    [
        ([0.0, 39.9, 40.0, 99.9, 100.0, 399.9, 400.0, 1000.0], IntensityMinutes(2, 2, 2, 2)),
        ([], IntensityMinutes(0, 0, 0, 0)),
        ([np.nan, 10.0], IntensityMinutes(1, 0, 0, 0)),
    ],
)
def test_minutes_by_intensity_thresholds(enmo: list[float], expected: IntensityMinutes) -> None:
    assert minutes_by_intensity(enmo) == expected


def test_epoch_mean_and_sum_drop_incomplete_tail() -> None:
    assert epoch_mean([1, 2, 3, 4, 5], 2).tolist() == [1.5, 3.5]
    assert epoch_sum([1, 2, 3, 4, 5], 2).tolist() == [3.0, 7.0]


def _still_poses(
    offset: tuple[float, float, float], scale: tuple[float, float, float], seed: int = 1
) -> npt.NDArray[np.float64]:
    """Ten 20-s still poses at 50 Hz in different orientations, as a miscalibrated sensor reads."""
    rng = np.random.default_rng(seed)
    directions = np.array(
        [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1],
         [1, 1, 0], [0, -1, 1], [-1, 0, -1], [1, -1, 1]],
        dtype=float,
    )  # fmt: skip
    true = np.repeat(directions / np.linalg.norm(directions, axis=1, keepdims=True), 1000, axis=0)
    true += rng.normal(0.0, 0.003, true.shape)  # 3 mg sensor noise, well under the 13 mg limit
    # Measured = (true − offset) / scale, so that offset + scale · measured recovers the truth.
    return np.asarray((true - np.asarray(offset)) / np.asarray(scale), dtype=np.float64)


def test_calibration_removes_offset_error_from_a_still_device() -> None:
    offset, scale = (0.05, -0.04, 0.03), (1.02, 0.97, 1.01)
    raw = _still_poses(offset, scale)
    assert enmo_mg(raw).mean() > 15.0  # the error shows as spurious activity
    cal = calibrate(raw, 50.0)
    assert cal.n_still_windows == 20
    np.testing.assert_allclose(cal.offset_g, offset, atol=2e-3)
    np.testing.assert_allclose(cal.scale, scale, atol=2e-3)
    assert cal.error_after_g < 1e-3 < cal.error_before_g
    assert enmo_mg(cal.apply(raw)).mean() < 3.0  # only sensor noise remains


def test_calibration_of_a_single_orientation_is_refused() -> None:
    raw = np.tile([0.02, 0.01, 1.05], (5000, 1))
    with pytest.raises(CalibrationError):
        calibrate(raw, 50.0)


def test_identity_calibration_changes_nothing() -> None:
    cal = Calibration((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), 0, 0.0, 0.0)
    xyz = np.array([[0.1, 0.2, 0.3]])
    np.testing.assert_array_equal(cal.apply(xyz), xyz)


@given(hnp.arrays(np.float64, st.tuples(st.integers(0, 50), st.just(3)),
                  elements=st.floats(-16.0, 16.0)))  # fmt: skip
def test_enmo_is_never_negative(xyz: npt.NDArray[np.float64]) -> None:
    assert np.all(enmo_mg(xyz) >= 0.0)


# --- steps and wear -------------------------------------------------------------------------


def test_daily_totals_of_steps() -> None:
    t = np.array([0, 3600, 86399, 86400, 3 * 86400 + 5], dtype=float)
    days, totals = daily_totals(t, [10, 20, 30, 40, 50])
    assert days.tolist() == [0, 1, 3]
    assert totals.tolist() == [60.0, 40.0, 50.0]
    # Days starting at 03:00 move the samples at 00:00 and 01:00 into the day before.
    days, totals = daily_totals(t, [10, 20, 30, 40, 50], day_start_s=3 * 3600)
    assert days.tolist() == [-1, 0, 2]
    assert totals.tolist() == [30.0, 70.0, 50.0]


_Z = [0] * 45


@pytest.mark.parametrize(
    ("counts", "kwargs", "expected_nonwear"),
    [
        ([5, *[0] * 90, 5], {}, 90),
        ([5, *[0] * 89, 5], {}, 0),
        ([5, *_Z, 7, 3, *_Z, 5], {}, 92),  # a 2-min spike inside 30+ zero minutes each side
        ([5, *_Z, 7, 3, 1, *_Z, 5], {}, 0),  # 3 min of movement is wear
        ([5, *[0] * 20, 7, *[0] * 95, 5], {}, 95),  # too few zeros before the spike
        ([0] * 30, {"min_nonwear_min": 30}, 30),
    ],
)
def test_nonwear_from_counts_table(
    counts: list[int], kwargs: dict[str, int], expected_nonwear: int
) -> None:
    assert int(nonwear_from_counts(counts, **kwargs).sum()) == expected_nonwear


def _run_lengths(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.intp]:
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)


@given(
    st.lists(st.sampled_from([0, 0, 0, 0, 0, 1, 50]), max_size=400),
    st.integers(1, 120),
)
def test_nonwear_runs_are_never_shorter_than_the_minimum(counts: list[int], minimum: int) -> None:
    nonwear = nonwear_from_counts(counts, min_nonwear_min=minimum, spike_window_min=5)
    assert np.all(_run_lengths(nonwear) >= minimum)
    c = np.asarray(counts)
    starts = np.flatnonzero(np.diff(np.concatenate([[0], nonwear.astype(np.int8)])) == 1)
    assert np.all(c[starts] == 0)


def test_nonwear_from_flag_ignores_short_losses_of_contact() -> None:
    worn = np.array([1, 0, 1, 1, 0, 0, 0, 1], dtype=bool)
    assert nonwear_from_flag(worn).tolist() == (~worn).tolist()
    assert nonwear_from_flag(worn, min_nonwear_epochs=2).tolist() == [
        False, False, False, False, True, True, True, False
    ]  # fmt: skip


# --- sleep scoring --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ([0, 0, 0, 0, 0], [True] * 5),
        ([0, 0, 41, 0, 0], [True, True, False, True, True]),
        ([0, 0, 40, 0, 0], [True] * 5),  # at the threshold is still sleep
        # Neighbours weigh 0.2 and 0.04: 0.2 · 200 = 40 is still sleep, 0.2 · 1000 is not.
        ([0, 0, 0, 0, 200, 0, 0], [True, True, True, True, False, True, True]),
        ([0, 0, 1000, 0, 0], [True, False, False, False, True]),
    ],
)
def test_oakley_table(counts: list[int], expected: list[bool]) -> None:
    assert score_oakley(counts).tolist() == expected


def test_cole_kripke_weights_and_scale() -> None:
    # 0.001 · 230 · A < 1 ⇔ A < 4.35 for a lone epoch.
    assert score_cole_kripke([0, 0, 0, 0, 4, 0, 0]).tolist()[4]
    assert not score_cole_kripke([0, 0, 0, 0, 5, 0, 0]).tolist()[4]
    assert score_cole_kripke([0, 0, 0, 0, 400, 0, 0], scale=100.0).tolist()[4]


@pytest.mark.parametrize(
    ("pattern", "kwargs", "expected"),
    [
        ("W" * 10 + "S" * 40 + "W" * 10, {}, (10, 50)),
        ("S" * 20 + "W" * 5 + "S" * 20, {}, (0, 45)),  # a 5-min wake bout does not split
        ("S" * 35 + "W" * 15 + "S" * 20, {}, (0, 35)),  # a 15-min one does
        ("S" * 20 + "W" * 15 + "S" * 20, {}, None),  # neither half reaches 30 min
        ("S" * 35 + "W" * 15 + "S" * 20, {"max_wake_bout": 15}, (0, 70)),
        ("W" * 60, {}, None),
    ],
)
def test_main_sleep_period_table(
    pattern: str, kwargs: dict[str, int], expected: tuple[int, int] | None
) -> None:
    sleep = np.array([c == "S" for c in pattern])
    assert main_sleep_period(sleep, **kwargs) == expected


def test_summarise_night() -> None:
    sleep = np.array([c == "S" for c in "WWSSSWSSWW"])
    night = summarise_night(sleep, (2, 8))
    assert (night.time_in_bed_min, night.sleep_min, night.wake_after_onset_min) == (6, 5, 1)
    assert night.efficiency_pct == pytest.approx(100 * 5 / 6)
    in_bed = summarise_night(sleep, (2, 8), in_bed=(0, 10))
    assert (in_bed.time_in_bed_min, in_bed.sleep_min, in_bed.efficiency_pct) == (10, 5, 50.0)


def test_noon_windows() -> None:
    assert noon_windows(3000, 100) == [(0, 100), (100, 1540), (1540, 2980), (2980, 3000)]
    assert noon_windows(1440, 0) == [(0, 1440)]


# --- real Actiwatch recording with sleep diary ----------------------------------------------


def test_awd_header_and_length() -> None:
    awd = read_awd()
    assert awd.start == dt.datetime(1918, 1, 23, 13, 58)  # noqa: DTZ001 - the file's local time
    assert awd.epoch_s == 60
    assert awd.counts.size == 18401  # 12.8 days of minutes
    assert int(awd.markers.sum()) == EXPECTED_MARKERS


EXPECTED_MARKERS = 22  # lines such as "71 M": the count, then an event-marker press


def _actigraphy_figures() -> dict[str, float]:
    """Score the AWD recording against its diary (the figures in docs/activity-sleep.md)."""
    awd = read_awd()
    diary = read_diary()
    n = awd.counts.size
    nonwear = nonwear_from_counts(awd.counts)
    sleep = score_oakley(awd.counts) & ~nonwear
    diary_nowear = _mask(n, [(a, b) for t, a, b in diary if t == "NOWEAR"])
    night = _mask(n, [(a, b) for t, a, b in diary if t == "NIGHT"])
    nap = _mask(n, [(a, b) for t, a, b in diary if t == "NAP"])
    span = _mask(n, [(min(a for _, a, _ in diary), max(b for *_, b in diary))])
    scored = span & ~diary_nowear & ~nonwear
    truth = night | nap
    onset_err, offset_err, sleep_min, efficiency_pct, diary_efficiency_pct = [], [], [], [], []
    first_noon = _epoch(awd, "1918-01-23 12:00:00") % 1440
    windows = noon_windows(n, first_noon)
    for kind, a, b in diary:
        if kind != "NIGHT":
            continue
        w0, w1 = next(w for w in windows if w[0] <= a < w[1])
        period = main_sleep_period(sleep[w0:w1])
        assert period is not None
        onset_err.append(w0 + period[0] - a)
        offset_err.append(w0 + period[1] - b)
        window_sleep = sleep[w0:w1]
        night_summary = summarise_night(window_sleep, period)
        sleep_min.append(night_summary.sleep_min)
        efficiency_pct.append(night_summary.efficiency_pct)
        in_diary_bed = summarise_night(window_sleep, period, in_bed=(a - w0, b - w0))
        diary_efficiency_pct.append(in_diary_bed.efficiency_pct)
    return {
        "agreement": float(np.mean(sleep[scored] == truth[scored])),
        "sensitivity": float(np.mean(sleep[scored & truth])),
        "specificity": float(np.mean(~sleep[scored & ~truth])),
        "night_sensitivity": float(np.mean(sleep[scored & night])),
        "onset_mae_min": float(np.median(np.abs(onset_err))),
        "offset_mae_min": float(np.median(np.abs(offset_err))),
        "median_sleep_min": float(np.median(sleep_min)),
        "median_efficiency_pct": float(np.median(efficiency_pct)),
        "median_diary_efficiency_pct": float(np.median(diary_efficiency_pct)),
        "nowear_min": float(diary_nowear.sum()),
        "choi_recall": float(np.mean(nonwear[diary_nowear])),
        "choi_in_span_min": float(np.sum(nonwear & span)),
        "short_recall": float(
            np.mean(nonwear_from_counts(awd.counts, min_nonwear_min=30)[diary_nowear])
        ),
    }


# What Oakley "medium" scoring (Actiware, threshold 40) achieves against the diary, 24 Jan – 3 Feb
# 1918, excluding diary NOWEAR and detected non-wear. Sleep truth for epoch-by-epoch figures is
# NIGHT ∪ NAP; the main sleep period is compared with NIGHT only. Regressions show up here.
EXPECTED_ACTIGRAPHY: dict[str, float] = {
    "agreement": 0.8045,
    "sensitivity": 0.8250,
    "specificity": 0.7924,
    "night_sensitivity": 0.8485,  # sleep scored inside the diary's NIGHT periods only
    "onset_mae_min": 22.5,  # median |onset − diary NIGHT start| over the 10 nights
    "offset_mae_min": 9.5,
    "median_sleep_min": 426.0,
    "median_efficiency_pct": 88.1903,  # sleep / main sleep period
    "median_diary_efficiency_pct": 86.0715,  # sleep / diary NIGHT window
    # Both diary NOWEAR periods (30 and 53 min) are shorter than Choi's 90 min, so the default
    # detector finds none of them, and it marks nothing else inside the diary span either.
    "nowear_min": 83.0,
    "choi_recall": 0.0,
    "choi_in_span_min": 0.0,
    # With a 30-min minimum: the last 37 min of the 53-min period (its 4- and 3-count spikes have
    # only 7-8 zeros before them, Choi wants 30); the 30-min one has 17 zeros in a row.
    "short_recall": 0.4458,
}


def test_actigraphy_against_the_diary() -> None:
    assert _actigraphy_figures() == pytest.approx(EXPECTED_ACTIGRAPHY, abs=5e-4)


# --- Fitbit daily summaries -----------------------------------------------------------------


def test_dedupe_daily_table() -> None:
    keep = dedupe_daily([1, 1, 2, 1, 2], ["a", "a", "a", "b", "a"])
    assert keep.tolist() == [True, False, True, True, False]
    assert dedupe_daily([], []).tolist() == []


def test_fitbit_sleep_duplicates_removed() -> None:
    rows = read_csv(FITBIT_SLEEP)
    keep = dedupe_daily([r["Id"] for r in rows], [r["SleepDay"] for r in rows])
    assert (len(rows), int((~keep).sum())) == (413, 3)
    dropped = [rows[i] for i in np.flatnonzero(~keep)]
    assert all(sum(r == d for r in rows) == 2 for d in dropped)  # each is an exact repeat
    asleep = np.array([float(r["TotalMinutesAsleep"]) for r in rows])
    in_bed = np.array([float(r["TotalTimeInBed"]) for r in rows])
    assert asleep[keep].sum() == 171861.0  # 173,240 before removing the repeats
    assert np.all(asleep <= in_bed)
    ids = np.array([r["Id"] for r in rows])
    assert asleep[keep & (ids == "1503960366")].sum() == 9007.0


def test_fitbit_daily_nonwear_and_totals() -> None:
    rows = read_csv(FITBIT_DAILY)
    col = {
        k: np.array([float(r[k]) for r in rows]) for k in rows[0] if k not in {"Id", "ActivityDate"}
    }
    ids = np.array([r["Id"] for r in rows])
    keep = dedupe_daily(ids, [r["ActivityDate"] for r in rows])
    assert (len(rows), int(keep.sum())) == (940, 940)
    nonwear = fitbit_nonwear_days(col["TotalSteps"], col["SedentaryMinutes"])
    assert int(nonwear.sum()) == 84  # 77 zero-step days, 79 all-sedentary days, 72 both
    active = total_active_minutes(
        col["VeryActiveMinutes"], col["FairlyActiveMinutes"], col["LightlyActiveMinutes"]
    )
    assert np.all(active + col["SedentaryMinutes"] <= 1440)
    for participant, days, minutes, steps in [
        ("1503960366", 31, 8612, 375619),
        ("1624580081", 31, 5207, 178061),
        ("1844505072", 31, 3623, 79982),
    ]:
        mine = ids == participant
        assert (int(mine.sum()), active[mine].sum(), col["TotalSteps"][mine].sum()) == (
            days,
            minutes,
            steps,
        )
    assert active[:3].tolist() == [366.0, 257.0, 222.0]


def test_mask_log_matches_the_diary() -> None:
    """The mask log repeats the diary's second NOWEAR (2 min later) and masks the 2 Feb nap."""
    awd = read_awd()
    masks = [(_epoch(awd, r["Start_time"]), _epoch(awd, r["Stop_time"])) for r in read_csv(MASKLOG)]
    nowear = [(a, b) for t, a, b in read_diary() if t == "NOWEAR"]
    nap = next((a, b) for t, a, b in read_diary() if t == "NAP" and a >= masks[1][0] - 60)
    assert (masks[0][0] - nowear[1][0], masks[0][1] - nowear[1][1]) == (2, 2)
    assert nap[0] <= masks[1][0] < masks[1][1] <= nap[1]


def test_nightly_summaries_find_the_diary_nights_and_skip_nonwear_days() -> None:
    awd = read_awd()
    nonwear = nonwear_from_counts(awd.counts)
    first_noon = _epoch(awd, "1918-01-23 12:00:00") % 1440
    nights = nightly_summaries(score_oakley(awd.counts), nonwear, first_noon)
    found = [night for _, night in nights if night is not None]
    diary_nights = [(a, b) for t, a, b in read_diary() if t == "NIGHT"]
    assert len(nights) == 13
    assert len(found) == len(diary_nights) == 10  # the 3 skipped windows are mostly non-wear
    # Every night found overlaps its diary night; onset errors as in EXPECTED_ACTIGRAPHY.
    for night, (a, b) in zip(found, diary_nights, strict=True):
        assert night.onset < b
        assert a < night.offset
    onset_error = np.median(
        [abs(n.onset - a) for n, (a, _) in zip(found, diary_nights, strict=True)]
    )
    assert onset_error == EXPECTED_ACTIGRAPHY["onset_mae_min"]
    assert [n.sleep_min for n in found][:3] == [472, 394, 436]


def test_nightly_summaries_skip_a_window_that_is_mostly_nonwear() -> None:
    sleep = np.zeros(1440 * 2, dtype=bool)
    sleep[600:1000] = True
    sleep[2040:2440] = True
    nonwear = np.zeros_like(sleep)
    nonwear[1440:2400] = True
    nights = nightly_summaries(sleep, nonwear, 0)
    assert [w for w, _ in nights] == [(0, 1440), (1440, 2880)]
    first, second = (night for _, night in nights)
    assert first is not None
    assert (first.onset, first.offset, first.sleep_min) == (600, 1000, 400)
    assert second is None
