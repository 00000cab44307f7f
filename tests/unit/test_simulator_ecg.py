"""The simulator's chest-patch ECG (simulator.ecg, simulator.stream.EcgDevice): what wardwatch
derives from it is the heart rate the simulated patient had, walking shakes it without losing it,
and electrodes off give no heart rate rather than a wrong one. The derivation is wardwatch's own
(signals.derived.ecg_beats, validated on MIT-BIH elsewhere), so this checks the simulator against
the pipeline's reading of it.
"""

from __future__ import annotations

from datetime import UTC

import numpy as np
import orjson
import pytest

from signals.beats import ecg_r_peaks
from signals.derived import WINDOW_US, ecg_beats
from signals.waveforms import WaveformChunk, WaveformKind
from simulator import make_ward
from simulator.ecg import ecg_block
from simulator.stream import ECG_CHUNK_S, check_ecg_hz, encode_ecg
from tests.unit.test_simulator_ppg import streamed, vitals_fields
from wardwatch.cli import build_parser

T0_US = 1_800_000_000 // 60 * 60 * 1_000_000  # on a whole minute


def hour() -> dict[str, np.ndarray]:
    """An hour: 72/min for 30 minutes, then 125/min; a 5-minute walk (minutes 10-14) and the
    electrodes off for 3 minutes (50-52)."""
    hr = np.r_[np.full(30, 72.0), np.full(30, 125.0)]
    br = np.r_[np.full(30, 14.0), np.full(30, 22.0)]
    worn = np.ones(60, dtype=bool)
    worn[50:53] = False
    walking = np.zeros(60, dtype=bool)
    walking[10:15] = True
    return {"heart_rate": hr, "resp_rate": br, "worn": worn, "walking": walking}


def minute_rates(x: np.ndarray, fs: float) -> dict[int, float]:
    chunk = WaveformChunk("d", WaveformKind.ECG, T0_US, fs, x, "mV", None)
    b = ecg_beats(chunk, after_us=0, settled_to_us=chunk.end_us)
    pairs = zip(b.hr_ts_us.tolist(), b.hr_bpm.tolist(), strict=True)
    return {int((t - T0_US) // WINDOW_US - 1): float(v) for t, v in pairs}


@pytest.mark.parametrize("fs", [125.0, 250.0])
def test_wardwatch_reads_back_the_simulated_heart_rate(fs: float) -> None:
    """Measured: every minute with the electrodes on gets a rate (57 of 60), walking ones too,
    within 0.6 beats/min of the minute's truth; none of the three with them off does."""
    h = hour()
    x, _ = ecg_block(np.random.default_rng(1), fs_hz=fs, **h)
    assert x.shape == (60 * 60 * round(fs),)
    assert x.dtype == np.float32
    hr = minute_rates(x, fs)
    assert sorted(hr) == [m for m in range(60) if h["worn"][m]]
    assert max(abs(v - h["heart_rate"][m]) for m, v in hr.items()) < 1.0


def test_the_hour_after_continues_the_beats() -> None:
    """Two half hours generated in turn, the second from the first's state, beat like one."""
    h = hour()
    halves = [{k: v[:30] for k, v in h.items()}, {k: v[30:] for k, v in h.items()}]
    rng = np.random.default_rng(3)
    first, state = ecg_block(rng, fs_hz=125.0, **halves[0])
    second, _ = ecg_block(rng, fs_hz=125.0, state=state, **halves[1])
    joint = np.concatenate([first, second])[(30 * 60 - 20) * 125 : (30 * 60 + 20) * 125]
    intervals = np.diff(ecg_r_peaks(joint, 125.0)) / 125.0
    assert intervals.size > 55
    assert intervals.min() > 60 / 125 * 0.9
    assert intervals.max() < 60 / 72 * 1.1


def test_rates_outside_the_range_are_refused() -> None:
    with pytest.raises(ValueError, match="ECG rate"):
        ecg_block(np.random.default_rng(0), fs_hz=50.0, **hour())
    with pytest.raises(ValueError, match="whole number of samples"):
        check_ecg_hz(128.01)
    assert check_ecg_hz(250) == 250.0


def test_encode_ecg_writes_a_waveform_payload() -> None:
    payload = orjson.loads(encode_ecg(60, 125, np.array([1.01234, -0.2], np.float32), 4, UTC))
    assert payload == {"ts": "1970-01-01T00:01:00+00:00", "kind": "ecg", "fs_hz": 125,
                       "unit": "mV", "seq": 4, "samples": [1.012, -0.2]}  # fmt: skip


def test_the_patch_goes_to_the_first_patient_without_a_ppg_and_leaves_its_heart_rate() -> None:
    """Patient 1 streams a PPG, patient 2 wears the ECG patch (30-s chunks, numbered; its
    vitals carry no heart rate but still a breathing rate), patient 3 is as before."""
    ward = make_ward(3, seed=4, scenario="stable")
    messages = streamed(ward, ppg_hz=25, ppg_patients=1, ecg_hz=125, ecg_patients=1)
    ppg_dev, ecg_dev, other = ward
    chunks = [m for m in messages if m.ecg_samples]
    assert len(chunks) >= 30
    assert {m.ecg_samples for m in chunks} == {ECG_CHUNK_S * 125}
    assert {m.topic for m in chunks} == {f"wardwatch/v1/devices/{ecg_dev.device_id}/waveform"}
    assert [orjson.loads(m.payload)["seq"] for m in chunks] == list(range(len(chunks)))
    assert {orjson.loads(m.payload)["kind"] for m in chunks} == {"ecg"}
    assert not any(m.ecg_samples for m in messages if ppg_dev.device_id in m.topic)
    assert "resp_rate" in vitals_fields(messages, ecg_dev.device_id)
    assert not {"heart_rate", "rr_intervals_ms"} & vitals_fields(messages, ecg_dev.device_id)
    assert {"heart_rate", "resp_rate"} <= vitals_fields(messages, other.device_id)


def test_the_command_line_takes_an_ecg_rate() -> None:
    parser = build_parser()
    args = parser.parse_args(["simulate", "--ecg-hz", "125", "--ecg-patients", "2"])
    assert (args.ecg_hz, args.ecg_patients) == (125.0, 2)
    assert parser.parse_args(["simulate"]).ecg_hz is None
    assert parser.parse_args(["demo"]).ecg_hz == 125.0
    assert parser.parse_args(["demo", "--ecg-hz", "0"]).ecg_hz is None
    with pytest.raises(SystemExit):
        parser.parse_args(["simulate", "--ecg-hz", "60"])
