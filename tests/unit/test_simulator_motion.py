"""The simulated wrist accelerometer: levels from the literature, posture changes, the stream."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import orjson
import pytest

from ingest.waveform import decode_waveforms
from signals.activity import calibrate
from signals.waveforms import WaveformKind, join_chunks
from simulator.motion import WristProfile, draw_wrist, wrist_accel, wrist_accel_block
from simulator.physiology import SCENARIOS, PatientModel
from simulator.stream import ACCEL_CHUNK_S, Message, check_accel_hz, stream, topic_for
from simulator.timeline import Timeline
from simulator.ward import make_ward
from wardwatch.cli import build_parser

FS = 25.0
PER_MINUTE = int(60 * FS)
START = int(datetime(2026, 5, 28, 6, 0, tzinfo=UTC).timestamp())
WEARERS = range(8)


def accel(
    minutes: int,
    *,
    asleep: bool = False,
    walking: bool = False,
    worn: bool = True,
    severity: float = 0.0,
    wrist: WristProfile | None = None,
    seed: int = 1,
    fs_hz: float = FS,
) -> np.ndarray:
    return wrist_accel(
        np.random.default_rng(seed),
        fs_hz=fs_hz,
        asleep=np.full(minutes, asleep),
        walking=np.full(minutes, walking),
        worn=np.full(minutes, worn),
        severity=severity,
        wrist=draw_wrist(seed).calibrated() if wrist is None else wrist,
    )


def enmo_per_minute(xyz: np.ndarray, fs_hz: float = FS) -> np.ndarray:
    """ENMO (van Hees 2013) in mg, averaged per minute."""
    norm = np.linalg.norm(xyz.astype(np.float64), axis=1)
    enmo = np.maximum(norm - 1.0, 0.0) * 1000.0
    per_minute: np.ndarray = enmo.reshape(-1, int(60 * fs_hz)).mean(axis=1)
    return per_minute


def z_angle_5s(xyz: np.ndarray, fs_hz: float = FS) -> np.ndarray:
    """The arm's z-angle (van Hees 2015) from each 5-s epoch's mean, in degrees."""
    epochs = xyz.astype(np.float64).reshape(-1, int(5 * fs_hz), 3).mean(axis=1)
    angle: np.ndarray = np.degrees(np.arctan2(epochs[:, 2], np.hypot(epochs[:, 0], epochs[:, 1])))
    return angle


def posture_changes(xyz: np.ndarray) -> np.ndarray:
    """Epoch indices where a run of > 5° z-angle changes between successive epochs begins."""
    moved = np.abs(np.diff(z_angle_5s(xyz))) > 5.0
    return np.flatnonzero(np.diff(np.concatenate([[0], moved.astype(np.int8)])) == 1)


def inactive_fraction(xyz: np.ndarray) -> float:
    """Share of epochs inside runs of >= 5 min with no z-angle change above 5° (van Hees 2015)."""
    quiet = np.abs(np.diff(z_angle_5s(xyz))) <= 5.0
    edges = np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    long = stops - starts >= 60
    return float((stops - starts)[long].sum() / quiet.size)


# --- the signal --------------------------------------------------------------------------------


def test_shape_dtype_and_rates() -> None:
    xyz = accel(7)
    assert xyz.shape == (7 * PER_MINUTE, 3)
    assert xyz.dtype == np.float32
    assert np.isfinite(xyz).all()
    assert np.abs(xyz).max() < 16  # within ingest's ±16 g
    assert accel(3, fs_hz=12.5).shape == (3 * 750, 3)
    for bad in (4.0, 101.0, 25.01):
        with pytest.raises(ValueError, match="fs_hz"):
            accel(1, fs_hz=bad)
    with pytest.raises(ValueError, match="walking"):
        wrist_accel(
            np.random.default_rng(0), fs_hz=FS, asleep=[False] * 3, walking=[True], worn=True
        )
    empty = wrist_accel(np.random.default_rng(0), fs_hz=FS, asleep=[], walking=[], worn=[])
    assert empty.shape == (0, 3)


def test_a_still_wrist_measures_one_g_of_gravity_and_sensor_noise() -> None:
    wrist = replace(draw_wrist(3).calibrated(), sleep_change_min=1e6)  # never turns over
    xyz = accel(60, asleep=True, wrist=wrist).astype(np.float64)
    norm = np.linalg.norm(xyz, axis=1)
    assert abs(norm.mean() - 1.0) < 0.002
    assert norm.std() < 0.006  # 3-4.5 mg of noise per axis
    assert np.all(xyz.std(axis=0) < 0.006)
    assert 0.003 <= wrist.noise_g <= 0.0045
    assert enmo_per_minute(xyz).max() < 3.0


def test_device_calibration_errors_are_within_the_published_range() -> None:
    wrists = [draw_wrist(seed) for seed in range(200)]
    offsets = np.array([w.offset_g for w in wrists])
    scales = np.array([w.scale for w in wrists])
    assert np.abs(offsets).max() <= 0.05
    assert 0.015 < np.abs(offsets).mean() < 0.03  # tens of mg: calibration matters
    assert scales.min() >= 0.97
    assert scales.max() <= 1.03
    assert draw_wrist(5) == draw_wrist(5)  # per device: from its seed alone


def test_enmo_levels_by_state_match_wrist_accelerometry() -> None:
    sit, walk = [], []
    for seed in WEARERS:
        seated = enmo_per_minute(accel(60, seed=seed))
        walking = enmo_per_minute(accel(20, walking=True, seed=seed))
        # Sedentary and light seated tasks at the wrist: ~10-40 mg (Bakrania et al. 2016).
        assert 10.0 <= np.median(seated) <= 40.0
        # Walking: Hildebrand et al. 2014's MVPA threshold is ~100 mg; older adults walk slowly.
        assert 70.0 <= np.median(walking) <= 350.0
        sit.append(np.median(seated))
        walk.append(np.median(walking))
        asleep = enmo_per_minute(accel(60, asleep=True, seed=seed))
        assert np.median(asleep) < 5.0
        off = enmo_per_minute(accel(60, worn=False, seed=seed))
        assert np.median(off) < 3.0
    assert 12.0 <= np.median(sit) <= 30.0
    assert 100.0 <= np.median(walk) <= 300.0


def test_walking_swings_the_arm_at_the_stride_and_bounces_at_the_step_frequency() -> None:
    wrist = draw_wrist(4).calibrated()
    xyz = accel(2, walking=True, wrist=wrist).astype(np.float64)
    magnitude = np.linalg.norm(xyz, axis=1)
    spectrum = np.abs(np.fft.rfft(magnitude - magnitude.mean()))
    freqs = np.fft.rfftfreq(magnitude.size, 1 / FS)
    peak = freqs[np.argmax(spectrum)]
    # |a| rises twice a stride (centripetal swing, bounce): the step frequency, 1.6-2 Hz.
    assert peak == pytest.approx(wrist.step_hz, abs=0.15)
    assert 1.5 <= peak <= 2.1


def test_steps_decide_how_much_of_a_minute_is_walked() -> None:
    wrist = draw_wrist(6).calibrated()
    minutes = 30

    def minute_enmo(steps: float, walking: bool) -> float:
        xyz = wrist_accel(
            np.random.default_rng(9),
            fs_hz=FS,
            asleep=np.zeros(minutes, bool),
            walking=np.full(minutes, walking),
            worn=np.ones(minutes, bool),
            steps=np.full(minutes, steps),
            wrist=wrist,
        )
        return float(np.median(enmo_per_minute(xyz)))

    full = minute_enmo(200.0, True)
    half = minute_enmo(wrist.step_hz * 30, True)  # 30 s of walking a minute
    pottering = minute_enmo(4.0, False)  # a few steps about the room
    assert half < 0.75 * full
    assert pottering < 0.5 * half


def test_sleep_is_still_between_posture_changes_every_10_to_60_minutes() -> None:
    rates, fractions = [], []
    for seed in WEARERS:
        wrist = draw_wrist(seed).calibrated()
        xyz = accel(8 * 60, asleep=True, wrist=wrist, seed=seed)
        changes = posture_changes(xyz)
        intervals_min = np.diff(changes) * 5 / 60
        assert intervals_min.size >= 6
        assert intervals_min.min() >= 9.5
        assert intervals_min.max() <= 60.5
        rates.append(changes.size / 8)
        fractions.append(inactive_fraction(xyz))
        assert 20.0 <= wrist.sleep_change_min <= 40.0
    assert all(1.0 <= r <= 4.0 for r in rates)  # about 1.5-3 an hour
    assert min(fractions) > 0.9  # sustained inactivity bouts fill the night


def test_awake_the_arm_keeps_moving() -> None:
    for seed in WEARERS:
        xyz = accel(120, seed=seed)
        intervals_min = np.diff(posture_changes(xyz)) * 5 / 60
        assert np.median(intervals_min) <= 4.5
        assert inactive_fraction(xyz) < 0.1


def test_the_unwell_move_less() -> None:
    fewer, smaller = 0, 0
    for seed in WEARERS:
        wrist = draw_wrist(seed).calibrated()
        well = accel(8 * 60, asleep=True, wrist=wrist, seed=seed)
        ill = accel(8 * 60, asleep=True, wrist=wrist, seed=seed, severity=1.0)
        fewer += posture_changes(ill).size < posture_changes(well).size
        sit_well = np.median(enmo_per_minute(accel(60, wrist=wrist, seed=seed)))
        sit_ill = np.median(enmo_per_minute(accel(60, wrist=wrist, seed=seed, severity=1.0)))
        smaller += sit_ill < 0.6 * sit_well
    assert fewer == len(WEARERS)
    assert smaller == len(WEARERS)


def test_off_the_wrist_it_lies_flat_and_still_for_the_non_wear_rule() -> None:
    for seed in WEARERS:
        xyz = accel(90, worn=False, wrist=draw_wrist(seed), seed=seed).astype(np.float64)
        hour = xyz[2 * PER_MINUTE : 62 * PER_MINUTE]
        # van Hees et al. 2013: SD < 13 mg and range < 50 mg over 60 min on (at least two) axes.
        assert np.all(hour.std(axis=0) < 0.013)
        assert np.all(np.ptp(hour, axis=0) < 0.05)
        gravity = hour.mean(axis=0)
        assert abs(gravity[2]) > 0.9  # flat: gravity along the face's normal


def test_taking_the_watch_off_and_on_again_moves_it() -> None:
    worn = np.ones(30, bool)
    worn[10:20] = False
    wrist = draw_wrist(2).calibrated()
    xyz = wrist_accel(
        np.random.default_rng(2),
        fs_hz=FS,
        asleep=np.zeros(30, bool),
        walking=np.zeros(30, bool),
        worn=worn,
        wrist=wrist,
    )
    per_minute_sd = xyz.astype(np.float64).reshape(30, PER_MINUTE, 3).std(axis=1).max(axis=1)
    assert per_minute_sd[10] > 0.02  # the handling at the start of the off-wrist stretch
    assert per_minute_sd[11:20].max() < 0.006  # then the table: noise only


def test_the_same_seed_gives_the_same_samples() -> None:
    a = accel(30, seed=11)
    assert np.array_equal(a, accel(30, seed=11))
    assert not np.array_equal(a, accel(30, seed=12))


def test_blocks_continue_one_another_without_a_seam() -> None:
    for seed in WEARERS:
        wrist = draw_wrist(seed).calibrated()
        rng = np.random.default_rng(seed)
        still, asleep = np.zeros(60, bool), np.ones(60, bool)
        first, state = wrist_accel_block(
            rng, fs_hz=FS, asleep=asleep, walking=still, worn=asleep, wrist=wrist
        )
        second, _ = wrist_accel_block(
            rng, fs_hz=FS, asleep=asleep, walking=still, worn=asleep, wrist=wrist, state=state
        )
        # The same posture on both sides of the seam (changes are >= 10 min apart asleep).
        seam = np.abs(first[-125:].mean(axis=0) - second[:125].mean(axis=0))
        assert seam.max() < 0.01
        assert state.mode.name == "SLEEP"


def test_calibration_can_be_recovered_from_a_simulated_day() -> None:
    model = PatientModel(SCENARIOS["stable"], patient_seed=3, noise_seed=1, start_s=START, tz=UTC)
    first_hour = START // 3600
    states = [model.minute_states(h) for h in range(first_hour, first_hour + 24)]
    wrist = draw_wrist(8)
    fs = 10.0
    xyz = wrist_accel(
        np.random.default_rng(8),
        fs_hz=fs,
        asleep=np.concatenate([s.asleep for s in states]),
        walking=np.concatenate([s.walking for s in states]),
        worn=np.concatenate([s.worn for s in states]),
        steps=np.concatenate([s.steps for s in states]),
        wrist=wrist,
    )
    fitted = calibrate(xyz, fs)
    true_offset = -np.array(wrist.offset_g) / np.array(wrist.scale)
    assert np.allclose(fitted.offset_g, true_offset, atol=0.001)
    assert np.allclose(fitted.scale, 1 / np.array(wrist.scale), atol=0.001)
    assert fitted.error_before_g > 0.01  # calibration matters: tens of mg before,
    assert fitted.error_after_g < 0.002  # noise only after


def test_a_day_at_25_hz_is_generated_quickly() -> None:
    minutes = 1440
    day = np.arange(minutes)
    asleep = (day < 7 * 60) | (day >= 23 * 60)
    walking = (day % 60 < 3) & ~asleep
    took = []
    for seed in range(3):
        began = time.process_time()
        wrist_accel(
            np.random.default_rng(seed),
            fs_hz=25.0,
            asleep=asleep,
            walking=walking,
            worn=np.ones(minutes, bool),
        )
        took.append(time.process_time() - began)
    assert min(took) < 1.0  # about 0.2 s of CPU on the development machine


# --- the stream --------------------------------------------------------------------------------


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds


def run(
    accel_hz: float | None, *, scenario: str | None = None, patients: int = 3
) -> list[tuple[float, Message]]:
    clock = FakeClock(float(START + 8 * 3600))
    ward = make_ward(patients, seed=3, scenario=scenario)
    # Ten simulated hours, 05:00-15:00 BST: waking, the morning wash, walks.
    timeline = Timeline.plan(now_s=clock(), speed=600, minutes=1.0)
    out: list[tuple[float, Message]] = []
    for message in stream(
        ward,
        timeline=timeline,
        seed=1,
        stop=threading.Event(),
        clock=clock,
        sleep=clock.sleep,
        accel_hz=accel_hz,
        accel_patients=2,
    ):
        out.append((clock(), message))
    return out


def test_the_stream_sends_accelerometer_chunks_beside_unchanged_vitals() -> None:
    with_accel = run(25.0)
    without = run(None)
    vitals = [m for _, m in with_accel if m.topic.endswith("/vitals")]
    assert vitals == [m for _, m in without]  # the vitals are exactly what they were

    chunks = [(at, m) for at, m in with_accel if m.topic.endswith("/waveform")]
    devices = {m.topic.split("/")[3] for _, m in chunks}
    assert devices == {"sim-dev-0001", "sim-dev-0002"}  # the first two patients only
    decoded, rejected = decode_waveforms([(m.topic, m.payload, int(at * 1e6)) for at, m in chunks])
    assert rejected == []
    for device in devices:
        mine = [c for c in decoded if c.device_id == device]
        assert all(c.kind is WaveformKind.ACCEL and c.fs_hz == 25.0 for c in mine)
        assert {c.n_samples for c in mine} == {ACCEL_CHUNK_S * 25}
        assert [c.seq for c in mine] == list(range(len(mine)))
        (segment,) = join_chunks(mine).segments  # continuous: no gap, no overlap
        assert segment.n_samples == len(mine) * ACCEL_CHUNK_S * 25
        assert len(mine) >= 10 * 60 * 2 - 4  # ten hours of 30-s chunks
    for at, m in chunks:
        head = orjson.loads(m.payload)
        end = datetime.fromisoformat(head["ts"]).timestamp() + ACCEL_CHUNK_S
        assert end <= at  # sent once its last sample was taken, never from the future
        assert m.accel_samples == 750
        assert m.samples == 0
        assert len(m.payload) < 32_000

    # Per device, messages go out in time order: a vitals sample after the minute it summarises.
    topic = topic_for("sim-dev-0001")
    times = []
    for _, m in with_accel:
        doc = orjson.loads(m.payload)
        if m.topic == topic:
            times.append(datetime.fromisoformat(doc[-1]["ts"]).timestamp())
        elif "sim-dev-0001" in m.topic:
            times.append(datetime.fromisoformat(doc["ts"]).timestamp() + ACCEL_CHUNK_S)
    assert times == sorted(times)


def test_the_accelerometer_follows_the_minute_model() -> None:
    """The raw signal of a minute is that of what the vitals say the wearer did in it."""
    out = run(25.0, scenario="stable", patients=1)
    minutes: dict[int, dict[str, object]] = {}
    raw: list[np.ndarray] = []
    first_start = None
    for _, m in out:
        doc = orjson.loads(m.payload)
        if m.topic.endswith("/vitals"):
            for sample in doc:
                minutes[int(datetime.fromisoformat(sample["ts"]).timestamp())] = sample
        else:
            if first_start is None:
                first_start = datetime.fromisoformat(doc["ts"]).timestamp()
            raw.append(np.array(doc["samples"], dtype=np.float64))
    assert first_start is not None
    xyz = np.concatenate(raw)
    enmo = np.maximum(np.linalg.norm(xyz, axis=1) - 1, 0) * 1000
    by_state: dict[str, list[float]] = {"walking": [], "still": []}
    for ts, sample in minutes.items():
        # The sample stamped ts summarises [ts - 60, ts): the same 60 s of raw samples.
        i = round((ts - 60 - first_start) * 25)
        if i < 0 or i + PER_MINUTE > xyz.shape[0]:
            continue
        level = float(enmo[i : i + PER_MINUTE].mean())
        steps = sample.get("steps", 0)
        assert isinstance(steps, int)
        if steps >= 60:
            by_state["walking"].append(level)
        elif not sample["worn"]:
            by_state["still"].append(float(xyz[i : i + PER_MINUTE].std(axis=0).max()))
    assert by_state["walking"], "the morning had walks"
    assert np.median(by_state["walking"]) > 60  # uncalibrated, but clearly moving
    assert by_state["still"], "the morning had its wash"
    assert np.median(by_state["still"]) < 0.013


def test_a_silent_device_stops_its_accelerometer_too() -> None:
    out = run(10.0, scenario="device_off", patients=1)
    chunks = [m for _, m in out if m.topic.endswith("/waveform")]
    vitals = [m for _, m in out if m.topic.endswith("/vitals")]
    last_vitals = datetime.fromisoformat(orjson.loads(vitals[-1].payload)[-1]["ts"]).timestamp()
    last_chunk = datetime.fromisoformat(orjson.loads(chunks[-1].payload)["ts"]).timestamp()
    assert last_chunk + ACCEL_CHUNK_S <= last_vitals + 60
    assert len(chunks) < 10 * 60 * 2


def test_accelerometer_rates_and_the_command_line() -> None:
    assert check_accel_hz(25) == 25.0
    assert check_accel_hz(12.5) == 12.5
    for bad in (0.0, 4.0, 250.0, 10.01, float("nan")):
        with pytest.raises(ValueError, match="accelerometer rate"):
            check_accel_hz(bad)
    parser = build_parser()
    args = parser.parse_args(["simulate", "--accel-hz", "25", "--accel-patients", "3"])
    assert (args.accel_hz, args.accel_patients) == (25.0, 3)
    args = parser.parse_args(["simulate"])
    assert (args.accel_hz, args.accel_patients) == (None, None)
    args = parser.parse_args(["demo"])
    assert (args.accel_hz, args.accel_patients) == (10.0, 2)
    assert parser.parse_args(["demo", "--accel-hz", "0"]).accel_hz is None
    # The demo has one PPG-only watch (heart and breathing rate derived); 0 turns it off.
    assert (args.ppg_hz, args.ppg_patients) == (25.0, 1)
    assert parser.parse_args(["demo", "--ppg-hz", "0"]).ppg_hz is None
    with pytest.raises(SystemExit):
        parser.parse_args(["simulate", "--accel-hz", "3"])
    with pytest.raises(SystemExit):
        parser.parse_args(["simulate", "--accel-hz", "25", "--accel-patients", "-1"])
