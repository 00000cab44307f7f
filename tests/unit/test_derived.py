"""Breathing rate per wall-clock minute from a stored PPG segment (signals.derived)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from signals.derived import WINDOW_US, resp_rate_minutes
from signals.respiration import resp_rates_from_ppg
from signals.waveforms import WaveformChunk, WaveformKind
from tests.unit.test_ppg_resp import FS, recording

T0_US = int(datetime(2026, 11, 28, 9, 0, tzinfo=UTC).timestamp()) * 1_000_000


def _segment(start_us: int, samples: np.ndarray) -> WaveformChunk:
    return WaveformChunk(
        "d1", WaveformKind.PPG, start_us, FS, samples.astype(np.float32), "au", None
    )


def test_minutes_are_the_clocks_not_the_segments() -> None:
    ppg = recording()["PPG"]
    late_start = T0_US + 20_000_000  # the stream began 20 s past the minute
    ends, rates = resp_rate_minutes(_segment(late_start, ppg), after_us=0)
    # 300 s from 09:00:20: whole minutes 09:01-09:02, ..., 09:04-09:05 (the first 40 s unused)
    assert ends.tolist() == [T0_US + WINDOW_US * k for k in range(2, 6)]
    skipped = round(40 * FS)
    same = resp_rates_from_ppg(ppg[skipped:].astype(np.float32).astype(np.float64), FS)
    assert rates == pytest.approx(same[np.isfinite(same)])


def test_only_minutes_after_the_last_run_and_only_ppg() -> None:
    ppg = recording()["PPG"]
    ends, _ = resp_rate_minutes(_segment(T0_US, ppg), after_us=T0_US + 3 * WINDOW_US)
    assert ends.tolist() == [T0_US + 4 * WINDOW_US, T0_US + 5 * WINDOW_US]
    ecg = WaveformChunk("d1", WaveformKind.ECG, T0_US, FS, ppg.astype(np.float32), "mV", None)
    with pytest.raises(ValueError, match="from PPG"):
        resp_rate_minutes(ecg, after_us=0)
    short, _ = resp_rate_minutes(_segment(T0_US, ppg[: 50 * int(FS)]), after_us=0)
    assert short.size == 0  # under a minute: nothing, not a guess
