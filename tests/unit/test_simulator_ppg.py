"""The simulator's PPG (simulator.ppg, simulator.stream.PpgDevice): what wardwatch derives from it
is the heart and breathing rate the simulated patient had, and motion or an empty wrist give
nothing rather than a wrong rate. The derivation is wardwatch's own (signals.derived), so this
checks the simulator against the pipeline's reading of it, not against itself alone; the
pipeline's accuracy on real recordings is tested elsewhere (test_ppg_heart_rate, test_ppg_resp).
"""

from __future__ import annotations

import threading
from datetime import UTC
from typing import Any

import numpy as np
import orjson
import pytest

from signals.derived import WINDOW_US, ppg_heart_rate_minutes, resp_rate_minutes
from signals.pulse import ppg_pulse_peaks
from signals.waveforms import WaveformChunk, WaveformKind
from simulator import SimPatient, make_ward
from simulator.ppg import ppg_block
from simulator.stream import PPG_CHUNK_S, Message, check_ppg_hz, encode_ppg, stream
from simulator.timeline import Timeline
from wardwatch.cli import build_parser

T0_US = 1_800_000_000 // 60 * 60 * 1_000_000  # on a whole minute


def hour(seed: int = 1) -> dict[str, np.ndarray]:
    """An hour: 72/min breathing 14 for 30 minutes, then 95/min breathing 22; a 5-minute walk
    (minutes 10-14) and 3 minutes off the wrist (50-52)."""
    hr = np.r_[np.full(30, 72.0), np.full(30, 95.0)]
    br = np.r_[np.full(30, 14.0), np.full(30, 22.0)]
    worn = np.ones(60, dtype=bool)
    worn[50:53] = False
    walking = np.zeros(60, dtype=bool)
    walking[10:15] = True
    return {"heart_rate": hr, "resp_rate": br, "worn": worn, "walking": walking}


def derived(x: np.ndarray, fs: float) -> tuple[dict[int, float], dict[int, float]]:
    chunk = WaveformChunk("d", WaveformKind.PPG, T0_US, fs, x, "au", None)
    ts, bpm = ppg_heart_rate_minutes(chunk, after_us=0, settled_to_us=chunk.end_us)
    rts, breaths = resp_rate_minutes(chunk, after_us=0)
    minute = {int(t): int((t - T0_US) // WINDOW_US - 1) for t in np.r_[ts, rts].tolist()}
    return ({minute[int(t)]: float(v) for t, v in zip(ts, bpm, strict=True)},
            {minute[int(t)]: float(v) for t, v in zip(rts, breaths, strict=True)})  # fmt: skip


@pytest.mark.parametrize("fs", [25.0, 50.0])
def test_wardwatch_reads_back_the_simulated_heart_and_breathing_rates(fs: float) -> None:
    """Measured: every still, worn minute gets both rates (52 of 60), within 0.4 beats/min and
    0.4 breaths/min of the minute's truth; no walking or off-wrist minute gets either."""
    h = hour()
    x, _ = ppg_block(np.random.default_rng(1), fs_hz=fs, **h)
    assert x.shape == (60 * 60 * round(fs),)
    assert x.dtype == np.float32
    hr, br = derived(x, fs)
    still = [m for m in range(60) if h["worn"][m] and not h["walking"][m]]
    assert sorted(hr) == sorted(br) == still
    assert max(abs(v - h["heart_rate"][m]) for m, v in hr.items()) < 1.0
    assert max(abs(v - h["resp_rate"][m]) for m, v in br.items()) < 1.0


def test_the_hour_after_continues_the_beats_and_the_breath() -> None:
    """Two half hours generated in turn, the second from the first's state, beat like one: no
    interval across the joint is shorter or longer than the rate allows."""
    h = hour()
    halves = [{k: v[:30] for k, v in h.items()}, {k: v[30:] for k, v in h.items()}]
    rng = np.random.default_rng(3)
    first, state = ppg_block(rng, fs_hz=50.0, **halves[0])
    second, _ = ppg_block(rng, fs_hz=50.0, state=state, **halves[1])
    joint = np.concatenate([first, second])[(30 * 60 - 20) * 50 : (30 * 60 + 20) * 50]
    intervals = np.diff(ppg_pulse_peaks(joint, 50.0)) / 50.0
    assert intervals.size > 40
    assert intervals.min() > 60 / 95 * 0.85
    assert intervals.max() < 60 / 72 * 1.15


def test_a_missing_reported_rate_keeps_the_last_one() -> None:
    h = hour()
    h["heart_rate"][5:8] = np.nan  # a dropout in the reported vital sign, not in the heart
    x, _ = ppg_block(np.random.default_rng(1), fs_hz=25.0, **h)
    hr, _ = derived(x, 25.0)
    assert all(abs(hr[m] - 72.0) < 1.0 for m in (5, 6, 7))


def test_rates_outside_the_range_are_refused() -> None:
    with pytest.raises(ValueError, match="PPG rate"):
        ppg_block(np.random.default_rng(0), fs_hz=10.0, **hour())
    with pytest.raises(ValueError, match="whole number of samples"):
        check_ppg_hz(33.3)
    assert check_ppg_hz(25) == 25.0


def test_encode_ppg_writes_a_waveform_payload() -> None:
    payload = orjson.loads(encode_ppg(60, 25, np.array([0.51234, -0.2], np.float32), 3, UTC))
    assert payload == {"ts": "1970-01-01T00:01:00+00:00", "kind": "ppg", "fs_hz": 25,
                       "unit": "au", "seq": 3, "samples": [0.512, -0.2]}  # fmt: skip


def test_a_ppg_device_streams_chunks_and_leaves_its_rates_to_wardwatch() -> None:
    """The first patient's device streams 30-s PPG chunks, numbered, and its vitals carry no
    heart or breathing rate; the second patient's device is as before."""
    ward = make_ward(2, seed=4, scenario="stable")
    messages = streamed(ward, ppg_hz=25, ppg_patients=1)
    ppg_dev, other = ward
    chunks = [m for m in messages if m.ppg_samples]
    assert len(chunks) >= 30
    assert {m.ppg_samples for m in chunks} == {PPG_CHUNK_S * 25}
    assert {m.topic for m in chunks} == {f"wardwatch/v1/devices/{ppg_dev.device_id}/waveform"}
    seqs = [orjson.loads(m.payload)["seq"] for m in chunks]
    assert seqs == list(range(len(chunks)))

    assert "spo2" in vitals_fields(messages, ppg_dev.device_id)
    assert not {"heart_rate", "resp_rate", "rr_intervals_ms"} & vitals_fields(
        messages, ppg_dev.device_id
    )
    assert {"heart_rate", "resp_rate"} <= vitals_fields(messages, other.device_id)


def streamed(ward: list[SimPatient], **waveforms: Any) -> list[Message]:
    """Two simulated minutes of the ward's messages at 600x, on a clock that never waits."""
    now = 1_800_000_000.0
    timeline = Timeline.plan(now_s=now, speed=600.0, minutes=2 / 60)
    clock = iter(np.arange(now, now + 3600, 0.5).tolist())
    return list(
        stream(ward, timeline=timeline, seed=1, stop=threading.Event(),
               clock=lambda: next(clock), sleep=lambda _s: None, **waveforms)
    )  # fmt: skip


def vitals_fields(messages: list[Message], device_id: str) -> set[str]:
    """Every field the device's vitals messages carried."""
    topic = f"wardwatch/v1/devices/{device_id}/vitals"
    rows = [r for m in messages if m.topic == topic for r in orjson.loads(m.payload)]
    return {k for r in rows for k in r}


def test_the_command_line_takes_a_ppg_rate() -> None:
    parser = build_parser()
    args = parser.parse_args(["simulate", "--ppg-hz", "25", "--ppg-patients", "2"])
    assert (args.ppg_hz, args.ppg_patients) == (25.0, 2)
    assert parser.parse_args(["simulate"]).ppg_hz is None
    assert parser.parse_args(["simulate", "--ppg-hz", "0"]).ppg_hz is None
    with pytest.raises(SystemExit):
        parser.parse_args(["simulate", "--ppg-hz", "10"])
