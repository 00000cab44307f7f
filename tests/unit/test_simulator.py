"""The simulator's pure parts: physiology, ward, timeline, pacing, wire and recording formats."""

from __future__ import annotations

import math
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.mqtt import MqttEndpoint
from signals.vitals import PLAUSIBLE, Metric
from simulator.physiology import GENERATED, SCENARIOS, PatientModel, Samples
from simulator.recording import RecordingError, encode_line, iter_recording
from simulator.stream import Message, encode, model_for, stream, topic_for
from simulator.timeline import CADENCE, Timeline, sample_times
from simulator.ward import SimPatient, make_ward, mix

LONDON = ZoneInfo("Europe/London")
# 2026-05-28 07:00 BST: a summer morning, so that local time is UTC+1.
START = int(datetime(2026, 5, 28, 6, 0, tzinfo=UTC).timestamp())
HOUR = 3600


def model(
    scenario: str = "stable",
    *,
    patient_seed: int = 11,
    noise_seed: int = 5,
    onset_h: float | None = 1.0,
    rr_intervals: bool = False,
) -> PatientModel:
    return PatientModel(
        SCENARIOS[scenario],
        patient_seed=patient_seed,
        noise_seed=noise_seed,
        start_s=START,
        tz=LONDON,
        onset_s=None if onset_h is None else START + onset_h * HOUR,
        rr_intervals=rr_intervals,
    )


def same(a: Samples, b: Samples) -> bool:
    return bool(
        np.array_equal(a.ts_s, b.ts_s)
        and all(np.array_equal(a.values[m], b.values[m], equal_nan=True) for m in GENERATED)
    )


def window(s: Samples, metric: Metric, from_h: float, to_h: float) -> np.ndarray:
    inside = (s.ts_s >= START + from_h * HOUR) & (s.ts_s < START + to_h * HOUR)
    values = s.values[metric][inside]
    return values[~np.isnan(values)]


# --- physiology -----------------------------------------------------------------------------


def test_same_seeds_give_the_same_samples_and_another_noise_seed_does_not() -> None:
    a = model().samples(START, START + 6 * HOUR)
    b = model().samples(START, START + 6 * HOUR)
    c = model(noise_seed=6).samples(START, START + 6 * HOUR)
    assert same(a, b)
    assert not same(a, c)


@settings(max_examples=30, deadline=None)
@given(cut1=st.integers(0, 5 * HOUR), cut2=st.integers(0, 5 * HOUR))
def test_slicing_time_differently_changes_nothing(cut1: int, cut2: int) -> None:
    lo, hi = sorted((cut1, cut2))
    whole = model("deteriorating").samples(START, START + 5 * HOUR)
    sliced = model("deteriorating")
    parts = [
        sliced.samples(START, START + lo),
        sliced.samples(START + lo, START + hi),
        sliced.samples(START + hi, START + 5 * HOUR),
    ]
    assert same(whole, Samples.concat(parts))


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
@pytest.mark.parametrize("patient_seed", [1, 2, 3, 4])
def test_every_value_is_plausible_and_rounded_as_devices_do(
    scenario: str, patient_seed: int
) -> None:
    s = model(scenario, patient_seed=patient_seed, rr_intervals=True).samples(
        START, START + 30 * HOUR
    )
    assert len(s) > 0
    for metric in GENERATED:
        values = s.values[metric][~np.isnan(s.values[metric])]
        bounds = PLAUSIBLE[metric]
        assert ((values >= bounds.low) & (values <= bounds.high)).all(), metric
        if metric is Metric.TEMPERATURE:
            assert np.allclose(values, np.round(values, 1))
        else:
            assert np.array_equal(values, np.rint(values)), metric
    assert (s.values[Metric.SPO2][~np.isnan(s.values[Metric.SPO2])] <= 100).all()
    assert s.rr_intervals_ms is not None
    rr = np.concatenate(s.rr_intervals_ms)
    rr_bounds = PLAUSIBLE[Metric.RR_INTERVAL]
    assert ((rr >= rr_bounds.low) & (rr <= rr_bounds.high)).all()


def test_stable_patient_sleeps_walks_by_day_and_has_gaps() -> None:
    s = model("stable", onset_h=None).samples(START, START + 24 * HOUR)
    assert len(s) == 24 * 60
    # START is 07:00 BST: 17-21 h later is 00:00-04:00 at night; 3-7 h later mid-morning.
    night_hr = window(s, Metric.HEART_RATE, 17, 21).mean()
    day_hr = window(s, Metric.HEART_RATE, 5, 11).mean()
    assert night_hr < day_hr - 4
    assert window(s, Metric.STEPS, 17, 21).sum() == 0
    assert 1_000 <= s.values[Metric.STEPS].sum() <= 8_000
    # Fields on their cadence; vitals sometimes missing while worn (motion artefact, dropout).
    present = {m: int((~np.isnan(s.values[m])).sum()) for m in GENERATED}
    assert present[Metric.SYSTOLIC_BP] == 24 * 60 // CADENCE.blood_pressure_every
    assert present[Metric.BATTERY] == 24 * 60 // CADENCE.battery_every
    assert present[Metric.TEMPERATURE] <= 24 * 60 // CADENCE.temperature_every
    assert present[Metric.STEPS] == present[Metric.WORN] == len(s)
    worn = s.values[Metric.WORN] == 1
    assert 0 < np.isnan(s.values[Metric.SPO2][worn]).sum() < 0.2 * worn.sum()
    assert present[Metric.HEART_RATE] < worn.sum()
    # No vital sign from a device off the wrist (the morning wash at least).
    assert (~worn).sum() >= 10
    assert np.isnan(s.values[Metric.HEART_RATE][~worn]).all()


def test_stable_battery_drains_slowly() -> None:
    s = model("stable", patient_seed=3, onset_h=None).samples(START, START + 12 * HOUR)
    battery = s.values[Metric.BATTERY][~np.isnan(s.values[Metric.BATTERY])]
    steps_down = np.diff(battery)
    assert ((steps_down <= 0) | (steps_down > 5)).all()  # drains, or a charge (steep rise)
    assert -1.5 <= steps_down[steps_down <= 0].mean() * 4 <= -0.3  # %/h


# RCP NEWS2 2017, Chart 1, for the parameters a wearable gives (SpO2 scale 1).
def news2_parts(hr: float, rr: float, spo2: float, temp: float) -> list[int]:
    def band(value: float, edges: list[tuple[float, int]], above: int) -> int:
        return next((score for edge, score in edges if value <= edge), above)

    return [
        band(hr, [(40, 3), (50, 1), (90, 0), (110, 1), (130, 2)], 3),
        band(rr, [(8, 3), (11, 1), (20, 0), (24, 2)], 3),
        band(spo2, [(91, 3), (93, 2), (95, 1)], 0),
        band(temp, [(35.0, 3), (36.0, 1), (38.0, 0), (39.0, 1)], 2),
    ]


@pytest.mark.parametrize("patient_seed", range(1, 31))
def test_deteriorating_patient_climbs_through_every_news2_band(patient_seed: int) -> None:
    m = model("deteriorating", patient_seed=patient_seed, onset_h=1.0)
    s = m.samples(START, START + 9 * HOUR)
    first, last = (0, 1), (8, 9)
    assert (
        window(s, Metric.HEART_RATE, *last).mean() - window(s, Metric.HEART_RATE, *first).mean()
        > 30
    )
    assert window(s, Metric.HEART_RATE, *last).mean() >= 115
    assert window(s, Metric.RESP_RATE, *last).mean() >= 25
    assert window(s, Metric.SPO2, *first).mean() - window(s, Metric.SPO2, *last).mean() > 4
    assert window(s, Metric.SPO2, *last).mean() <= 91
    assert window(s, Metric.TEMPERATURE, *last).mean() >= 39.0
    # One cuff reading every 4 h: the last one is well below the patient's usual pressure.
    systolic = s.values[Metric.SYSTOLIC_BP][~np.isnan(s.values[Metric.SYSTOLIC_BP])]
    assert systolic[-1] <= 112
    assert m.profile.baseline[Metric.SYSTOLIC_BP] - systolic[-1] > 10
    assert window(s, Metric.STEPS, *last).sum() < window(s, Metric.STEPS, *first).sum() + 1

    # Scores from 15-minute medians (the last one carried over a gap such as the morning wash):
    # 0-2 before the onset, then a 3 in one parameter and 5+ (either first), then 7+.
    scores = quarter_hour_scores(s, 9)
    totals = [sum(p) for p in scores]
    assert max(totals[:4]) <= 2
    first_5 = next(i for i, t in enumerate(totals) if t >= 5)
    first_7 = next(i for i, t in enumerate(totals) if t >= 7)
    first_3_in_one = next(i for i, p in enumerate(scores) if max(p) == 3)
    assert 4 <= first_5 < first_7
    assert 4 <= first_3_in_one <= first_7
    assert min(totals[-4:]) >= 7


def quarter_hour_scores(s: Samples, hours: int) -> list[list[int]]:
    """NEWS2 parts from 15-minute medians (the last one carried over a gap); the first from
    hour 0."""
    scores = []
    latest: dict[Metric, float] = {}
    for quarter in range(hours * 4):
        a, b = quarter / 4, (quarter + 1) / 4
        for metric in (Metric.HEART_RATE, Metric.RESP_RATE, Metric.SPO2, Metric.TEMPERATURE):
            values = window(s, metric, a, b)
            if values.size:
                latest[metric] = float(np.median(values))
        scores.append(
            news2_parts(
                latest[Metric.HEART_RATE],
                latest[Metric.RESP_RATE],
                latest[Metric.SPO2],
                latest[Metric.TEMPERATURE],
            )
        )
    return scores


@pytest.mark.parametrize("patient_seed", range(1, 31))
def test_a_recovering_patient_deteriorates_holds_then_returns_to_normal(patient_seed: int) -> None:
    m = model("deteriorating_recovering", patient_seed=patient_seed, onset_h=1.0)
    p = m.profile
    assert p.recovery_s is not None
    assert 1 * HOUR <= p.hold_s <= 2 * HOUR
    assert 3 * HOUR <= p.recovery_s <= 6 * HOUR
    worst_from_h = 1.0 + p.ramp_s / HOUR
    recovering_from_h = worst_from_h + p.hold_s / HOUR
    recovered_h = recovering_from_h + p.recovery_s / HOUR
    s = m.samples(START, START + 18 * HOUR)

    # Until it starts to recover, the patient is the "deteriorating" one, sample for sample.
    until = START + int(recovering_from_h * HOUR)
    sick = model("deteriorating", patient_seed=patient_seed, onset_h=1.0)
    assert same(sick.samples(START, until), m.samples(START, until))

    scores = quarter_hour_scores(s, 18)
    totals = [sum(parts) for parts in scores]
    quarter = [int(h * 4) for h in (worst_from_h, recovering_from_h, recovered_h)]
    assert max(totals[:4]) <= 2  # before the onset
    assert min(totals[quarter[0] + 1 : quarter[1]]) >= 7  # at its worst through the hold
    # Back to normal: no score that would raise an alert (RCP NEWS2 2017, Chart 4: 0-4 without
    # a 3 in one parameter), well before the recovery's end and from then on.
    calm = next(i for i in range(quarter[1], len(totals)) if totals[i] <= 4 and max(scores[i]) < 3)
    assert calm <= quarter[2]
    assert all(t <= 2 for t in totals[quarter[2] + 1 :])
    last = (recovered_h, 18.0)
    assert window(s, Metric.HEART_RATE, *last).mean() <= 90
    assert window(s, Metric.RESP_RATE, *last).mean() <= 20
    assert window(s, Metric.SPO2, *last).mean() >= 94
    assert window(s, Metric.TEMPERATURE, *last).mean() < 37.6


def test_only_the_recovering_scenario_recovers() -> None:
    for name in SCENARIOS:
        recovers = model(name).profile.recovery_s is not None
        assert recovers == (name == "deteriorating_recovering"), name


def test_hypoxic_patient_desaturates_and_breathes_faster() -> None:
    s = model("hypoxic", onset_h=1.0).samples(START, START + 8 * HOUR)
    assert 91 <= window(s, Metric.SPO2, 0, 1).mean() <= 95
    assert window(s, Metric.SPO2, 7, 8).mean() <= 88
    assert window(s, Metric.RESP_RATE, 7, 8).mean() - window(s, Metric.RESP_RATE, 0, 1).mean() > 5
    assert window(s, Metric.TEMPERATURE, 7, 8).mean() < 38.0


def test_device_off_takes_the_watch_off_then_falls_silent() -> None:
    m = model("device_off", onset_h=2.0)
    s = m.samples(START, START + 24 * HOUR)
    silent = m.silent_from_s
    assert silent is not None
    assert START + 2 * HOUR + 5 * 60 <= silent <= START + 2 * HOUR + 20 * 60
    assert s.ts_s.max() < silent
    after_onset = s.ts_s >= START + 2 * HOUR
    assert after_onset.sum() >= 4
    assert (s.values[Metric.WORN][after_onset] == 0).all()
    assert np.isnan(s.values[Metric.HEART_RATE][after_onset]).all()
    assert m.next_due(int(silent)) is None
    assert len(m.samples(int(silent), START + 48 * HOUR)) == 0


def test_rr_intervals_agree_with_heart_rate() -> None:
    s = model("deteriorating", rr_intervals=True).samples(START, START + 6 * HOUR)
    assert s.rr_intervals_ms is not None
    checked = 0
    for hr, intervals in zip(s.values[Metric.HEART_RATE], s.rr_intervals_ms, strict=True):
        if math.isnan(hr):
            assert intervals.size == 0
            continue
        assert intervals.size == int(hr)
        assert abs(intervals.mean() - 60_000 / hr) < 0.03 * 60_000 / hr
        checked += 1
    assert checked > 300


# --- ward -----------------------------------------------------------------------------------


def test_a_mixed_ward_of_24_has_a_few_unwell_patients_chosen_by_the_seed() -> None:
    ward = make_ward(24, seed=7)
    assert Counter(p.scenario for p in ward) == {
        "stable": 19,
        "deteriorating": 3,
        "hypoxic": 1,
        "device_off": 1,
    }
    assert ward == make_ward(24, seed=7)
    assert [p.scenario for p in ward] != [p.scenario for p in make_ward(24, seed=8)]
    assert ward[0].device_id == "sim-dev-0001"
    assert ward[0].patient_id == "sim-pt-0001"
    assert ward[23].device_id == "sim-dev-0024"
    assert len({p.device_id for p in ward}) == len({p.seed for p in ward}) == 24
    for p in ward:
        assert p.ward == "ward-a"
        hours = SCENARIOS[p.scenario].onset_hours
        if hours is None:
            assert p.onset is None
        else:
            assert p.onset is not None
            assert timedelta(hours=hours[0]) <= p.onset <= timedelta(hours=hours[1])


def test_a_ward_with_a_scenario_gives_it_to_everyone() -> None:
    ward = make_ward(5, seed=1, scenario="hypoxic", ward="ward-b", first_number=101)
    assert {p.scenario for p in ward} == {"hypoxic"}
    assert ward[0].device_id == "sim-dev-0101"
    assert {p.ward for p in ward} == {"ward-b"}
    with pytest.raises(ValueError, match="unknown scenario"):
        make_ward(2, seed=1, scenario="zombie")


@pytest.mark.parametrize("n", [0, 1, 2, 3, 10, 24, 100])
def test_the_mix_always_adds_up(n: int) -> None:
    counts = mix(n)
    assert sum(counts.values()) == n
    assert all(c >= 0 for c in counts.values())
    assert counts["deteriorating"] >= (1 if n >= 2 else 0)


# --- timeline -------------------------------------------------------------------------------

speeds = st.floats(0.05, 100_000, allow_nan=False, allow_infinity=False)
durations = st.one_of(st.none(), st.floats(0.01, 10_000, allow_nan=False))


@settings(max_examples=300, deadline=None)
@given(
    now=st.floats(1e9, 2e9),
    speed=speeds,
    minutes=durations,
    history_s=st.integers(0, 72 * HOUR),
    elapsed=st.lists(st.floats(-10, 1e8, allow_nan=False), min_size=1, max_size=20),
)
def test_event_time_never_runs_ahead_of_the_wall_clock(
    now: float, speed: float, minutes: float | None, history_s: int, elapsed: list[float]
) -> None:
    t = Timeline.plan(now_s=now, speed=speed, minutes=minutes, history=timedelta(seconds=history_s))
    previous = -math.inf
    for e in sorted(elapsed):
        event = t.event_at(e)
        assert event <= now + max(e, 0.0)
        assert event >= previous
        previous = event


@settings(max_examples=200, deadline=None)
@given(now=st.floats(1e9, 2e9), speed=speeds, minutes=st.floats(0.01, 10_000))
def test_a_bounded_run_spans_minutes_times_speed(now: float, speed: float, minutes: float) -> None:
    t = Timeline.plan(now_s=now, speed=speed, minutes=minutes)
    end = t.event_end_s
    assert end is not None
    assert end - t.event_start_s == pytest.approx(minutes * 60 * speed, rel=1e-9, abs=1e-3)
    if speed >= 1:
        assert end == pytest.approx(now + minutes * 60, abs=1e-3)  # meets the wall clock
    assert t.event_at(minutes * 60 * 10) == end


@settings(max_examples=200, deadline=None)
@given(now=st.floats(1e9, 2e9), speed=st.floats(1.01, 10_000), history_s=st.integers(1, 72 * HOUR))
def test_an_open_run_catches_up_then_goes_live(now: float, speed: float, history_s: int) -> None:
    t = Timeline.plan(now_s=now, speed=speed, minutes=None, history=timedelta(seconds=history_s))
    assert t.event_start_s == now - history_s
    catch_up = t.catch_up_s
    assert catch_up is not None
    assert catch_up == pytest.approx(history_s / (speed - 1))
    half = catch_up / 2
    assert t.event_at(half) == pytest.approx(now - history_s + speed * half)
    for later in (catch_up * 1.01 + 1, catch_up + 10 * HOUR):
        assert t.event_at(later) == pytest.approx(now + later, abs=1e-6)
    for target in (now - history_s / 2, now + 5.0):
        wake = t.elapsed_at(target)
        assert wake is not None
        assert t.event_at(wake) == pytest.approx(target, abs=1e-5)


def test_slow_and_bad_speeds() -> None:
    slow = Timeline.plan(now_s=1e9, speed=1, minutes=None)
    assert slow.catch_up_s is None  # stays six hours behind, never ahead
    assert slow.event_at(100) == 1e9 - 6 * HOUR + 100
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="speed"):
            Timeline.plan(now_s=1e9, speed=bad, minutes=1)


def test_sample_times_lie_on_the_device_grid() -> None:
    ts = sample_times(1000, 1300, 17)
    assert ts.tolist() == [1037, 1097, 1157, 1217, 1277]
    assert sample_times(1037, 1037, 17).size == 0


# --- pacing and the wire ----------------------------------------------------------------------


class FakeClock:
    """A wall clock that only moves when the code under test sleeps."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.slept.append(seconds)
        self.now += seconds


def decode(message: Message) -> list[dict[str, object]]:
    samples = orjson.loads(message.payload)
    assert isinstance(samples, list)
    assert len(samples) == message.samples
    return samples


def stamp(sample: dict[str, object]) -> float:
    ts = sample["ts"]
    assert isinstance(ts, str)
    parsed = datetime.fromisoformat(ts)
    assert parsed.utcoffset() is not None
    return parsed.timestamp()


def test_an_open_run_catches_up_in_batches_then_publishes_each_minute_live() -> None:
    clock = FakeClock(float(START + 10 * HOUR))
    wall_start = clock.now
    patients = make_ward(3, seed=2, scenario="stable")
    timeline = Timeline.plan(now_s=clock(), speed=3600, minutes=None, history=timedelta(hours=6))
    stop = threading.Event()
    seen: list[tuple[float, Message]] = []
    for message in stream(
        patients, timeline=timeline, seed=1, stop=stop, clock=clock, sleep=clock.sleep, tz=LONDON
    ):
        seen.append((clock(), message))
        for sample in decode(message):
            assert stamp(sample) <= clock()  # never from the future
        if clock() > wall_start + 120:
            stop.set()
    catch_up = timeline.catch_up_s
    assert catch_up is not None
    batched = [m for at, m in seen if at < wall_start + catch_up]
    live = [(at, m) for at, m in seen if at > wall_start + catch_up + 2]
    assert max(m.samples for m in batched) == 60
    assert {m.samples for _, m in live} == {1}
    assert len(live) >= 3 * 100 // 60
    for at, m in live:
        assert at - stamp(decode(m)[0]) <= 60 + 1  # at most a tick late
    # Every sample exactly once, in order per device.
    for patient in patients:
        ts = [
            stamp(s) for _, m in seen if m.topic == topic_for(patient.device_id) for s in decode(m)
        ]
        assert ts == sorted(set(ts))
        assert len(ts) >= 6 * 60
        assert np.diff(ts).max() <= 60 * 21  # a morning wash may drop vitals, never the sample


def test_a_bounded_run_publishes_its_span_and_ends() -> None:
    clock = FakeClock(float(START))
    patients = make_ward(4, seed=3)
    timeline = Timeline.plan(now_s=clock(), speed=120, minutes=5)
    messages = list(
        stream(
            patients,
            timeline=timeline,
            seed=1,
            stop=threading.Event(),
            clock=clock,
            sleep=clock.sleep,
            tz=LONDON,
        )
    )
    samples = sum(m.samples for m in messages)
    assert 4 * (600 - 1) <= samples <= 4 * 600 + 4  # 5 min x 120 = 600 simulated minutes
    assert clock() <= START + 5 * 60 + 1
    assert max(m.samples for m in messages) == 2  # a 1 s tick at speed 120 spans two minutes
    assert max(clock.slept) <= 0.2


def test_stream_stops_promptly_when_asked() -> None:
    clock = FakeClock(float(START))
    stop = threading.Event()

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if clock() >= START + 30:
            stop.set()

    timeline = Timeline.plan(now_s=clock(), speed=1, minutes=None, history=timedelta(0))
    list(
        stream(make_ward(2, seed=1), timeline=timeline, seed=1, stop=stop, clock=clock, sleep=sleep)
    )
    assert START + 30 <= clock() <= START + 30.2 + 1e-9


def test_a_silent_device_drops_out_of_the_stream() -> None:
    clock = FakeClock(float(START))
    (patient,) = make_ward(1, seed=4, scenario="device_off")
    timeline = Timeline.plan(now_s=clock(), speed=3600, minutes=6 / 60)  # six hours
    messages = list(
        stream(
            [patient],
            timeline=timeline,
            seed=1,
            stop=threading.Event(),
            clock=clock,
            sleep=clock.sleep,
        )
    )
    samples = [s for m in messages for s in decode(m)]
    assert samples[-1]["worn"] is False
    assert patient.onset is not None
    assert stamp(samples[-1]) < timeline.event_start_s + patient.onset.total_seconds() + 20 * 60
    assert clock() < START + 6 * 60  # ended early: nothing more will come


def test_encoded_samples_follow_the_wire_format() -> None:
    patient = SimPatient("sim-dev-0009", "sim-pt-0009", "ward-a", "stable", None, 99)
    m = model_for(patient, seed=3, start_s=START, tz=LONDON, rr_intervals=True)
    s = m.samples(START, START + 8 * HOUR)
    rows = orjson.loads(encode(s, LONDON))
    assert len(rows) == len(s)
    allowed = {"ts"} | {metric.wire_name for metric in Metric}
    for row, ts in zip(rows, s.ts_s.tolist(), strict=True):
        assert set(row) <= allowed
        assert row["ts"].endswith("+01:00")  # British Summer Time
        assert datetime.fromisoformat(row["ts"]).timestamp() == ts
        assert isinstance(row["worn"], bool)
        assert isinstance(row["steps"], int)
        for name in ("heart_rate", "spo2", "resp_rate", "battery", "systolic_bp"):
            assert name not in row or type(row[name]) is int
        if "temperature" in row:
            assert row["temperature"] == round(row["temperature"], 1)
        if "rr_intervals_ms" in row:
            assert all(type(x) is int for x in row["rr_intervals_ms"])
        assert "consciousness" not in row
        assert "on_oxygen" not in row
    assert sum("systolic_bp" in r for r in rows) == 2
    assert topic_for("sim-dev-0009") == "wardwatch/v1/devices/sim-dev-0009/vitals"


# --- broker URL and recording format ----------------------------------------------------------


def test_broker_urls() -> None:
    assert MqttEndpoint.from_url("mqtt://localhost") == MqttEndpoint("localhost", 1883)
    tls = MqttEndpoint.from_url("mqtts://u:p%2Fq@broker:9000")
    assert (tls.host, tls.port, tls.tls, tls.username, tls.password) == (
        "broker",
        9000,
        True,
        "u",
        "p/q",
    )
    assert "p/q" not in repr(tls)
    assert MqttEndpoint.from_url("mqtts://broker").port == 8883
    with pytest.raises(ValueError, match="mqtt://"):
        MqttEndpoint.from_url("http://broker")
    with pytest.raises(ValueError, match="host"):
        MqttEndpoint.from_url("mqtt://")


@settings(max_examples=100, deadline=None)
@given(
    messages=st.lists(
        st.tuples(
            st.floats(0, 1e6, allow_nan=False),
            st.text(min_size=1).filter(lambda s: "\x00" not in s),
            st.binary() | st.text().map(str.encode),
        ),
        max_size=10,
    )
)
def test_recording_lines_round_trip_any_payload(
    tmp_path_factory: pytest.TempPathFactory, messages: list[tuple[float, str, bytes]]
) -> None:
    path = tmp_path_factory.mktemp("rec") / "r.jsonl"
    with path.open("wb") as out:
        out.write(b'{"wardwatch_recording": 1, "started_at": "2026-05-28T06:00:00+00:00"}\n')
        for t, topic, payload in messages:
            out.write(encode_line(t, topic, payload))
    back = list(iter_recording(path))
    assert [(topic, payload) for _, topic, payload in back] == [(tp, p) for _, tp, p in messages]
    assert [t for t, _, _ in back] == pytest.approx([round(t, 6) for t, _, _ in messages])


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"not json\n", "line 1: not JSON"),
        (b'{"t": 1, "topic": "a"}\n', "line 1: needs 'payload'"),
        (b'{"t": "soon", "topic": "a", "payload": ""}\n', "line 1: 't'"),
        (b'{"t": 1, "topic": "a", "payload": ""}\n{"wardwatch_recording": 1}\n', "line 2"),
        (b'{"wardwatch_recording": 2}\n', "line 1: unexpected header"),
        (b'{"t": 1, "topic": "a", "payload_b64": "@@"}\n', "line 1: bad payload_b64"),
    ],
)
def test_malformed_recordings_name_the_line(tmp_path: Path, content: bytes, error: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(RecordingError, match=error):
        list(iter_recording(path))


def test_a_recording_without_header_or_with_blank_lines_reads(tmp_path: Path) -> None:
    path = tmp_path / "plain.jsonl"
    path.write_bytes(b'\n{"t": 0.5, "topic": "x/y", "payload": "[]"}\n\n')
    assert list(iter_recording(path)) == [(0.5, "x/y", b"[]")]
