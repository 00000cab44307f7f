"""The simulator's raw wrist accelerometer through the real chain: Mosquitto, ingest, PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

from signals.waveforms import WaveformKind, join_chunks
from simulator import make_ward, simulate
from simulator.stream import ACCEL_CHUNK_S
from storage import devices
from wardwatch.demo import enrol_ward
from wardwatch.service import Options, running
from wardwatch.settings import Settings

pytestmark = pytest.mark.integration


def test_accelerometer_chunks_are_stored_whole_and_in_order(
    mqtt_url: str, database_url: str, uid: str
) -> None:
    ward = make_ward(2, seed=5, scenario="stable", ward=f"ward-{uid}", first_number=7001)
    with_accel, without = ward
    enrol_ward(database_url, ward, datetime.now(UTC) - timedelta(hours=2))
    settings = Settings(mqtt_url, database_url, "127.0.0.1", 0)
    with running(settings, Options(client_id=f"ingest-{uid}")) as svc:
        # 4 s of wall time at 600x: 40 simulated minutes, about 80 chunks of 30 s at 25 Hz.
        stats = simulate(
            ward,
            mqtt_url=mqtt_url,
            speed=600,
            minutes=4 / 60,
            seed=2,
            stop=threading.Event(),
            accel_hz=25,
            accel_patients=1,
        )
        assert stats.accel_messages >= 70
        assert stats.accel_samples == stats.accel_messages * ACCEL_CHUNK_S * 25
        assert stats.messages > stats.accel_messages  # the vitals went too

        window = (stats.event_start - timedelta(minutes=1), stats.event_end + timedelta(minutes=1))
        deadline = time.monotonic() + 60
        with psycopg.connect(database_url) as conn:
            while True:
                chunks = devices.load_waveform(
                    conn, with_accel.device_id, WaveformKind.ACCEL, *window
                )
                conn.commit()
                if len(chunks) >= stats.accel_messages or time.monotonic() > deadline:
                    break
                time.sleep(0.25)
            while svc.source.depth() > 0 and time.monotonic() < deadline:
                time.sleep(0.1)
            quarantined = conn.execute("select reason, detail from quarantine").fetchall()
            stored_readings = conn.execute(
                "select count(*) from readings where patient_id = %s", (with_accel.patient_id,)
            ).fetchone()
            other = devices.load_waveform(conn, without.device_id, WaveformKind.ACCEL, *window)

    assert quarantined == []
    assert len(chunks) == stats.accel_messages
    assert sum(c.n_samples for c in chunks) == stats.accel_samples
    assert {c.n_samples for c in chunks} == {ACCEL_CHUNK_S * 25}
    assert all(c.fs_hz == 25.0 and c.unit == "g" for c in chunks)
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    (segment,) = join_chunks(chunks).segments  # one continuous recording
    norm = np.linalg.norm(segment.values.astype(np.float64), axis=1)
    assert 0.9 < float(np.median(norm)) < 1.1  # gravity, give or take calibration and movement
    assert chunks[0].start_us >= stats.event_start.timestamp() * 1e6
    assert chunks[-1].end_us <= stats.event_end.timestamp() * 1e6 + 1
    assert stored_readings is not None
    assert stored_readings[0] > 0  # the same device's vitals were stored beside it
    assert other == []  # only the first patient's device sends its accelerometer
