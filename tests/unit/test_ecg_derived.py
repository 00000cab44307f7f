"""Heart rate and RR intervals derived from an ECG (signals.derived.ecg_beats) on MIT-BIH.

The reference is the cardiologists' beat annotations: a minute's rate is 60 000 / the mean of
the reference intervals ending in it (all beats: the rate a monitor shows and NEWS2 scores).
"""

from __future__ import annotations

import numpy as np
import pytest

from signals.derived import ecg_beats
from signals.waveforms import WaveformChunk, WaveformKind
from tests.unit.test_beats_ecg import FS_MITDB, load_record

T0 = 1_795_824_000_000_000  # on a whole minute: the record's 30 minutes are 30 clock minutes

# record: (largest |derived - reference| in any minute, measured 2026-11-28, bpm; allowed)
ACHIEVED = {"100": 0.0, "105": 2.03, "106": 0.99}
ALLOWED = {"100": 0.5, "105": 2.5, "106": 1.0}  # 105 is the noisy record
# Minutes with a rate, and NN intervals kept as a share of the reference's intervals: 105 loses
# the minute whose beats do not look alike (QRS correlation 0.41: noise read as beats), 106
# keeps its bigeminal minutes (0.58-0.64) for the rate. Intervals into and out of a beat of
# another shape are not NN (test_ecg_nn.py): 100 keeps 2,263 of 2,272 (99.6 %), noisy 105
# 2,201 of 2,571 (85.6 %), 106 with its 520 PVCs 1,098 of 2,026 (54.2 %).
MINUTES = {"100": 30, "105": 29, "106": 30}
KEPT = {"100": (0.994, 0.998), "105": (0.85, 0.86), "106": (0.535, 0.55)}


@pytest.mark.parametrize("record", ["100", "105", "106"])
def test_heart_rate_per_minute_against_the_reference_beats(record: str) -> None:
    ecg, ref = load_record(record)
    chunk = WaveformChunk("e", WaveformKind.ECG, T0, FS_MITDB, ecg.astype(np.float32), "mV", None)
    b = ecg_beats(chunk, after_us=T0 - 1, settled_to_us=chunk.end_us)
    assert b.hr_ts_us.size == MINUTES[record]
    ref_us = T0 + np.rint(ref * (1e6 / FS_MITDB)).astype(np.int64)
    ref_rr, ref_ts = np.diff(ref_us) / 1000.0, ref_us[1:]
    errors = []
    for end, bpm in zip(b.hr_ts_us, b.hr_bpm, strict=True):
        inside = (ref_ts > end - 60_000_000) & (ref_ts <= end)
        errors.append(abs(bpm - 60_000 / ref_rr[inside].mean()))
    assert max(errors) <= ALLOWED[record]
    assert max(errors) == pytest.approx(ACHIEVED[record], abs=0.01)
    lo, hi = KEPT[record]
    assert lo * ref_rr.size <= b.rr_ms.size <= hi * ref_rr.size


def test_a_loose_electrode_gives_no_heart_rate() -> None:
    # Two minutes of noise and mains hum, no heartbeat: no minute may get a rate.
    rng = np.random.default_rng(0)
    t = np.arange(int(2 * 60 * FS_MITDB)) / FS_MITDB
    noise = 0.05 * rng.normal(size=t.size) + 0.2 * np.sin(2 * np.pi * 50 * t)
    chunk = WaveformChunk("e", WaveformKind.ECG, T0, FS_MITDB, noise.astype(np.float32), "mV", None)
    b = ecg_beats(chunk, after_us=T0 - 1, settled_to_us=chunk.end_us)
    assert b.hr_ts_us.size == 0


def test_only_the_settled_span_is_returned() -> None:
    ecg, _ = load_record("100")
    chunk = WaveformChunk("e", WaveformKind.ECG, T0, FS_MITDB, ecg[: int(300 * FS_MITDB)]
                          .astype(np.float32), "mV", None)  # fmt: skip
    after, settled = T0 + 90_000_000, T0 + 200_000_000  # 01:30 to 03:20
    b = ecg_beats(chunk, after_us=after, settled_to_us=settled)
    assert b.rr_ts_us.min() > after
    assert b.rr_ts_us.max() <= settled
    # Minutes ending 02:00 and 03:00: the one 01:30 falls in is whole in the segment, so it
    # comes too; 03:00-04:00 is not settled.
    assert (b.hr_ts_us - T0).tolist() == [120_000_000, 180_000_000]


def test_motion_artefact_gives_no_wrong_heart_rate() -> None:
    # Record 100 with a 1.5-mV swing at 1.3 Hz (arm movement) and 0.3-mV noise: a minute may be
    # left out, but no minute may report a rate more than 5 beats/min off the reference.
    ecg, ref = load_record("100")
    n = int(120 * FS_MITDB)
    t = np.arange(n) / FS_MITDB
    rng = np.random.default_rng(1)
    noisy = ecg[:n] + 1.5 * np.sin(2 * np.pi * 1.3 * t) + 0.3 * rng.normal(size=n)
    chunk = WaveformChunk("e", WaveformKind.ECG, T0, FS_MITDB, noisy.astype(np.float32), "mV", None)
    b = ecg_beats(chunk, after_us=T0 - 1, settled_to_us=chunk.end_us)
    ref_us = T0 + np.rint(ref[ref < n] * (1e6 / FS_MITDB)).astype(np.int64)
    for end, bpm in zip(b.hr_ts_us, b.hr_bpm, strict=True):
        inside = (ref_us[1:] > end - 60_000_000) & (ref_us[1:] <= end)
        assert abs(bpm - 60_000 / (np.diff(ref_us)[inside] / 1000).mean()) < 5
