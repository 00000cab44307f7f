"""Heart rate per minute from a PPG (signals.derived.ppg_heart_rate_minutes), against the ECG.

The recording is the 5-minute resting finger PPG with a simultaneous ECG (tests/data/ppg-ecg-resp);
the reference is each clock minute's rate from the ECG's R peaks, found by the separately written
detector of test_ppg_resp, so a fault in the PPG code cannot agree with itself. Motion and
saturation are the seeded synthetic artefact of test_ppg_quality (no labelled motion-corrupted
recording exists here). Figures pinned here are in docs/ppg-respiration.md ("Heart rate").
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from scipy import signal

from signals.daily import successive
from signals.derived import WINDOW_US, ppg_beats, ppg_heart_rate_minutes
from signals.hrv import clean_nn, time_domain
from signals.pulse import ppg_pulse_peaks
from signals.waveforms import WaveformChunk, WaveformKind
from tests.unit.test_ppg_quality import T0_US, corrupted, pulses, regular
from tests.unit.test_ppg_resp import FS, ecg_r_peaks, recording

F64 = npt.NDArray[np.float64]


def chunk(samples: F64, fs: float = FS, start_us: int = T0_US) -> WaveformChunk:
    return WaveformChunk("d1", WaveformKind.PPG, start_us, fs, samples.astype(np.float32), "au",
                         None)  # fmt: skip


def minutes(samples: F64, fs: float = FS, start_us: int = T0_US) -> dict[int, float]:
    """Minute index from T0 -> rate, for every minute the function gives."""
    c = chunk(samples, fs, start_us)
    ts, bpm = ppg_heart_rate_minutes(c, after_us=0, settled_to_us=c.end_us)
    return {(t - T0_US) // WINDOW_US - 1: float(b) for t, b in zip(ts.tolist(), bpm, strict=True)}


def rate_per_minute(peak_times_s: F64) -> dict[int, float]:
    """60 / mean interval of the intervals whose second beat falls in each minute."""
    ibi = np.diff(peak_times_s)
    minute = (peak_times_s[1:] // 60).astype(int)
    return {int(m): 60.0 / float(np.mean(ibi[minute == m])) for m in np.unique(minute)}


@pytest.fixture(scope="module")
def ecg_minutes() -> dict[int, float]:
    return rate_per_minute(ecg_r_peaks(recording()["ECG"], FS) / FS)


def decimated(ppg: F64, fs: float) -> F64:
    return ppg if fs == FS else signal.decimate(ppg, round(FS / fs), ftype="fir", zero_phase=True)


@pytest.mark.parametrize("fs", [100.0, 50.0, 25.0])
def test_each_minute_of_the_clean_recording_within_half_a_beat_of_the_ecg(
    fs: float, ecg_minutes: dict[int, float]
) -> None:
    """Measured: at most 0.11 beats/min from the ECG at 100 Hz (0.11 at 50, 0.12 at 25 Hz)."""
    got = minutes(decimated(recording()["PPG"], fs), fs)
    assert sorted(got) == [0, 1, 2, 3, 4]
    for m, bpm in got.items():
        assert abs(bpm - ecg_minutes[m]) < 0.5, (m, bpm, ecg_minutes[m])


@pytest.mark.parametrize("seed", range(10))
def test_motion_and_saturation_leave_minutes_out_or_right_never_wrong(
    seed: int, ecg_minutes: dict[int, float]
) -> None:
    """40 s of motion in minute 1 leaves too little clean signal: no rate. 10 s of motion in
    minute 2 and 15 s of saturation in minute 3: the rest of the minute still gives one.

    Measured over seeds 0–9: minutes 0, 2, 3, 4 kept; at most 1.24 beats/min from the ECG's rate
    of the whole minute (the clean part of a minute beats a little differently from all of it).
    Without the gate the worst minute was 21–22 beats/min off (next test).
    """
    got = minutes(corrupted(seed))
    assert sorted(got) == [0, 2, 3, 4]
    for m, bpm in got.items():
        assert abs(bpm - ecg_minutes[m]) < 1.5, (m, bpm, ecg_minutes[m])


def test_without_the_gate_the_artefact_would_have_moved_the_rate() -> None:
    """The artefact is not benign: pulses found over the whole corrupted signal, intervals
    200–3000 ms, put the worst minute 21–22 beats/min off the ECG in every seed (measured)."""
    reference = rate_per_minute(ecg_r_peaks(recording()["ECG"], FS) / FS)
    worst = []
    for seed in range(10):
        t = ppg_pulse_peaks(corrupted(seed), FS) / FS
        ibi = np.diff(t)
        keep = np.concatenate([[True], (ibi >= 0.2) & (ibi <= 3.0)])
        ungated = rate_per_minute(t[keep])
        worst.append(max(abs(ungated[m] - reference[m]) for m in reference if m in ungated))
    assert min(worst) > 10.0


def test_minutes_are_the_clocks_whatever_the_segment_start(ecg_minutes: dict[int, float]) -> None:
    """A segment that starts 3.3 s into a minute: the windows are moved onto the clock's 10-s
    grid, the first (partial) minute is skipped, the others are whole clock minutes."""
    ppg = recording()["PPG"]
    cut = round(3.3 * FS)
    got = minutes(ppg[cut:], start_us=T0_US + 3_300_000)
    assert sorted(got) == [1, 2, 3, 4]
    for m, bpm in got.items():
        assert abs(bpm - ecg_minutes[m]) < 0.5


def test_after_and_settled_bound_the_minutes() -> None:
    c = chunk(recording()["PPG"])
    ts, _ = ppg_heart_rate_minutes(
        c, after_us=T0_US + WINDOW_US + 5, settled_to_us=T0_US + 4 * WINDOW_US - 1
    )
    # Minute 1 (ends at T0+2 min) holds after_us; minute 3 ends after settled_to_us.
    assert ts.tolist() == [T0_US + 2 * WINDOW_US, T0_US + 3 * WINDOW_US]


@pytest.mark.parametrize("bpm", [45.0, 75.0, 120.0, 170.0])
def test_steady_synthetic_pulses_give_their_rate(bpm: float) -> None:
    got = minutes(pulses(regular(bpm, 120.0), 25.0, 120.0), 25.0)
    assert sorted(got) == [0, 1]
    assert all(v == pytest.approx(bpm, abs=0.5) for v in got.values())


#: Largest error allowed, by true rate (beats/min), and what was measured (max over the scan).
SCAN_LIMITS = ((150, 0.5), (180, 2.5), (240, 5.0))  # measured: 0.08, 1.45, 0.16


def test_from_30_to_240_per_minute_a_minute_is_right_or_not_given() -> None:
    """Steady synthetic pulses at 30-240/min, plain and with a wobbling pulse shape, at 25 and
    100 Hz: every minute given is close to the truth (SCAN_LIMITS). Above about 185/min the
    detector misses beats (its 300-ms refractory period); the quality gate (40-180/min), the
    per-minute median rule and the spectral cross-check then give no rate rather than a wrong
    one. Without the cross-check, 198/min read 100/min and 216/min read 90/min at 25 Hz: an
    emergency shown as normal.
    Below 40/min the gate gives none either: such minutes are "not measured" (docs say so).
    """
    given_fast = 0
    for fs in (25.0, 100.0):
        for bpm in range(30, 241, 6):
            for wobble in (0.0, 0.3):
                x = pulses(regular(float(bpm), 120.0), fs, 120.0, wobble=wobble, seed=bpm)
                got = minutes(x, fs)
                limit = next(err for top, err in SCAN_LIMITS if bpm <= top)
                assert all(abs(v - bpm) <= limit for v in got.values()), (fs, bpm, wobble, got)
                if bpm < 40:
                    assert got == {}
                given_fast += len(got) if bpm > 185 else 0
    assert given_fast <= 4  # measured: 2 minutes (191.8 twice, of 192/min), 36 trains above 185


def test_flat_or_non_finite_ppg_gives_nothing_and_other_kinds_are_refused() -> None:
    assert minutes(np.zeros(round(120 * FS))) == {}
    assert minutes(np.full(round(120 * FS), np.nan)) == {}
    ecg = WaveformChunk("d1", WaveformKind.ECG, T0_US, FS, np.zeros(1000, np.float32), "mV", None)
    with pytest.raises(ValueError, match="PPG"):
        ppg_heart_rate_minutes(ecg, after_us=0, settled_to_us=ecg.end_us)


@pytest.mark.parametrize(
    ("fs", "rmssd", "sdnn"),
    [(100.0, 35.91, 48.07), (50.0, 35.93, 48.06), (25.0, 36.63, 48.37)],  # measured 2026-11-28
)
def test_pulse_intervals_give_the_ecg_s_hrv_at_rest(fs: float, rmssd: float, sdnn: float) -> None:
    """Pulse-rate variability as the nightly feature computes it (RR-only cleaning, no
    difference across a gap) against the ECG's HRV (RMSSD 35.69 ms, SDNN 47.41 ms): within
    1.5 ms at every rate, thanks to placing each pulse between samples (without it, 25 Hz read
    RMSSD 46.1 ms)."""
    c = chunk(decimated(recording()["PPG"], fs), fs)
    b = ppg_beats(c, after_us=0, settled_to_us=c.end_us)
    _, mask = clean_nn(b.rr_ms)
    got = time_domain(b.rr_ms, mask=mask, adjacent=successive(b.rr_ts_us, b.rr_ms))
    rr = np.diff(ecg_r_peaks(recording()["ECG"], FS)) / FS * 1000
    _, ecg_mask = clean_nn(rr)
    want = time_domain(rr, mask=ecg_mask)
    assert abs(got.rmssd_ms - want.rmssd_ms) < 1.5
    assert abs(got.sdnn_ms - want.sdnn_ms) < 1.5
    assert (got.rmssd_ms, got.sdnn_ms) == pytest.approx((rmssd, sdnn), abs=0.01)
    assert b.rr_ms.size >= 425  # of the ECG's 431 intervals
