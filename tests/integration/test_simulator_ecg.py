"""A simulated chest patch that streams its ECG and no heart rate, through the real chain:
Mosquitto, ingest, PostgreSQL, then ``derive_beats``, which must give the patient the heart rate
the simulator gave them, and NN intervals beside it."""

from __future__ import annotations

import math
from datetime import timedelta

import psycopg
import pytest

from signals.vitals import Metric
from signals.waveforms import WaveformKind
from simulator import make_ward
from simulator.stream import ECG_CHUNK_S, model_for
from storage.devices import DERIVED_SUFFIX
from tests.sim_afternoon import simulated_afternoon
from wardwatch import derive

pytestmark = pytest.mark.integration


def test_an_ecg_patch_gets_its_heart_rate_derived(
    mqtt_url: str, database_url: str, uid: str
) -> None:
    ward = make_ward(1, seed=6, scenario="stable", ward=f"ward-{uid}", first_number=7201)
    (patient,) = ward
    # 3 s of wall time at 600x: 30 simulated minutes of ECG at 125 Hz in 30-s chunks.
    run = simulated_afternoon(mqtt_url, database_url, uid, ward, WaveformKind.ECG, wall_s=3,
                              ecg_hz=125)  # fmt: skip
    stats, zone = run.stats, run.zone
    assert stats.ecg_messages >= 50
    assert stats.ecg_samples == stats.ecg_messages * ECG_CHUNK_S * 125
    assert len(run.chunks) == stats.ecg_messages
    with psycopg.connect(database_url) as conn:
        own = conn.execute(
            "select count(*) from readings where device_id = %s and metric = %s",
            (patient.device_id, int(Metric.HEART_RATE)),
        ).fetchone()
    assert own == (0,)  # the patch sends no heart rate of its own

    now = stats.event_end + timedelta(minutes=3)
    with psycopg.connect(database_url) as conn:
        stored = derive.derive_beats(conn, now=now)
        rows = conn.execute(
            "select (extract(epoch from ts))::int8, value, device_id from readings"
            " where patient_id = %s and metric = %s order by ts",
            (patient.patient_id, int(Metric.HEART_RATE)),
        ).fetchall()
    assert {r[2] for r in rows} == {patient.device_id + DERIVED_SUFFIX}
    assert len(rows) >= 20  # of about 28 whole minutes
    assert stored > len(rows) * 40  # each minute's NN intervals beside its rate

    # The derived clock minute straddles two of the simulator's (stamped at second offset_s):
    # each rate must lie within the range of the two, give or take 1.5 (RSA and jitter).
    start_s = int(stats.event_start.timestamp())
    model = model_for(patient, seed=2, start_s=start_s, tz=zone)
    truth: dict[int, float] = {}
    for hour in range(start_s // 3600 - 1, int(now.timestamp()) // 3600 + 1):
        s = model.hour_samples(hour)
        truth.update(zip(s.ts_s.tolist(), s.values[Metric.HEART_RATE].tolist(), strict=True))
    offset = model.profile.offset_s
    checked = 0
    for end_s, value, _ in rows:
        known = [truth.get(t) for t in (end_s - 60 + offset, end_s + offset)]
        known = [v for v in known if v is not None and math.isfinite(v)]
        if not known:
            continue  # a dropout in the model's reported value: the patch held the last one
        assert min(known) - 1.5 <= value <= max(known) + 1.5, (end_s, value, known)
        checked += 1
    assert checked >= 0.9 * len(rows)
