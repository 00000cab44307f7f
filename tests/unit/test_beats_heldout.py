"""R-peak detection on data the detector was not tuned on: lead V5 of MIT-BIH 100, and resampling.

Every constant of ``signals.beats`` was chosen on lead MLII at 360 Hz (the quality gate on record
105 alone; docs/beats.md). Lead V5 of record 100 was never looked at while tuning, and nothing was
changed after measuring it, so its figure is the only held-out one here. The resampled records
(250 and 128 Hz) are the tuning records themselves, so they check robustness to the sampling rate,
not generalisation. As in test_beats_ecg.py, figures are pinned at what the detector achieved
(measured 2026-11-28), a fall of more than 0.05 percentage points fails, and the 99.5 % target is
asserted separately.
"""

from __future__ import annotations

from math import gcd
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from scipy import signal

from signals.beats import ecg_r_peaks, score_detections
from tests.wfdb_io import read_beats, read_record

MITDB = Path(__file__).resolve().parent.parent / "data" / "mitdb"
FS_MITDB = 360
TARGET = 0.995  # issue "Signals": Se and +P ≥ 99.5 % on each record, 150 ms window
SLACK = 0.0005  # pins may fall by at most 0.05 percentage points

# Held out: lead V5 of record 100 at 360 Hz. Measured first (2026-11-28) at Se 99.87 % (2,270 of
# 2,273 beats) and +P 100.00 %: 3 consecutive beats missed (296.9, 297.7 and 298.5 s) where for
# about 2.5 s V5's QRS shrinks to a quarter of its size or less while MLII's does not (a lead or
# electrode fault). Since the search back's "stands out" rule (2026-11-29; made for amplitude
# drops simulated on MLII, docs/beats.md, not tuned on V5) two of them are found: Se 99.96 %
# (2,272), +P 100.00 %. V5 also finds the record's last beat, which MLII cuts off.
V5_ACHIEVED = (0.9995, 1.0000)

# (record, Hz, sensitivity, positive predictivity), lead MLII resampled from 360 Hz. 100 and 106
# keep their 360 Hz figures at both rates. 105 gains false beats in its motion artefact and
# places one more beat over 75 ms off (an FP and an FN; at 250 Hz the beat at 1,696.84 s, 72 ms
# off at 360 Hz, lands 76 ms off): at 250 Hz a run of four false beats at 1,324.8–1,327.5 s makes
# 15 FP against 10 at 360 Hz, so +P 99.42 % is under the target; at 128 Hz 12 FP.
RESAMPLED = [
    ("100", 250, 0.9995, 1.0000),
    ("100", 128, 0.9995, 1.0000),
    ("105", 250, 0.9976, 0.9941),
    ("105", 128, 0.9980, 0.9953),
    ("106", 250, 0.9995, 1.0000),
    ("106", 128, 0.9995, 1.0000),
]


def load_lead(
    record: str, lead: str = "MLII"
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Return one lead of an MIT-BIH record in millivolts and its reference beat samples.

    Record 100's reference beats were annotated for the record, so they apply to both leads.
    """
    if record == "100":
        rec = read_record(MITDB / "100.hea")
        samples, _ = read_beats(MITDB / "100.atr")
        return np.ascontiguousarray(rec.signals[:, rec.names.index(lead)]), samples
    if lead != "MLII":
        raise ValueError(f"only lead MLII of record {record} is here")
    ecg = np.load(MITDB / f"mitdb_{record}_MLII_adu.npy").astype(np.float64) / 200.0
    ref = pd.read_csv(MITDB / f"mitdb_{record}_beats_all.csv")["R"].to_numpy(dtype=np.int64)
    return ecg, ref


@pytest.fixture(scope="module")
def v5_score() -> tuple[float, float, int, int, int]:
    ecg, ref = load_lead("100", "V5")
    return score_detections(ecg_r_peaks(ecg, FS_MITDB), ref, FS_MITDB)


def test_v5_is_the_other_lead_of_100() -> None:
    rec = read_record(MITDB / "100.hea")
    assert rec.names == ("MLII", "V5")
    assert rec.fs_hz == FS_MITDB


def test_held_out_lead_v5_does_not_regress(v5_score: tuple[float, float, int, int, int]) -> None:
    se, ppv, *_ = v5_score
    assert se >= V5_ACHIEVED[0] - SLACK
    assert ppv >= V5_ACHIEVED[1] - SLACK


def test_held_out_lead_v5_meets_target(v5_score: tuple[float, float, int, int, int]) -> None:
    se, ppv, *_ = v5_score
    assert se >= TARGET
    assert ppv >= TARGET


@pytest.fixture(scope="module")
def resampled_scores() -> dict[tuple[str, int], tuple[float, float, int, int, int]]:
    out = {}
    for record in ("100", "105", "106"):
        ecg, ref = load_lead(record)
        for fs in (250, 128):
            g = gcd(fs, FS_MITDB)
            # resample_poly's filter is linear-phase and centred, so beat times carry over.
            ecg_fs = signal.resample_poly(ecg, fs // g, FS_MITDB // g)
            ref_fs = np.round(ref * fs / FS_MITDB).astype(np.int64)
            out[record, fs] = score_detections(ecg_r_peaks(ecg_fs, fs), ref_fs, fs)
    return out


@pytest.mark.parametrize(("record", "fs", "se", "ppv"), RESAMPLED)
def test_resampled_accuracy_does_not_regress(
    resampled_scores: dict[tuple[str, int], tuple[float, float, int, int, int]],
    record: str,
    fs: int,
    se: float,
    ppv: float,
) -> None:
    got_se, got_ppv, *_ = resampled_scores[record, fs]
    assert got_se >= se - SLACK
    assert got_ppv >= ppv - SLACK


@pytest.mark.parametrize(
    ("record", "fs"),
    [
        ("100", 250),
        ("100", 128),
        pytest.param(
            "105",
            250,
            marks=pytest.mark.xfail(
                strict=True, reason="+P 99.42 %: false beats in 105's artefact (docs/beats.md)"
            ),
        ),
        ("105", 128),
        ("106", 250),
        ("106", 128),
    ],
)
def test_resampled_accuracy_target(
    resampled_scores: dict[tuple[str, int], tuple[float, float, int, int, int]],
    record: str,
    fs: int,
) -> None:
    se, ppv, *_ = resampled_scores[record, fs]
    assert se >= TARGET
    assert ppv >= TARGET
