"""Run simulated waveform devices through the real service on a simulated afternoon (tests)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

import psycopg

from signals.waveforms import WaveformChunk, WaveformKind
from simulator import SimPatient, SimulationStats, simulate
from simulator.stream import local_zone
from storage import devices
from wardwatch.demo import enrol_ward
from wardwatch.service import Options, running
from wardwatch.settings import Settings


@dataclass(frozen=True, slots=True)
class Afternoon:
    stats: SimulationStats
    chunks: list[WaveformChunk]  # the first patient's stored chunks of the kind asked for
    zone: tzinfo


def simulated_afternoon(
    mqtt_url: str,
    database_url: str,
    uid: str,
    ward: list[SimPatient],
    kind: WaveformKind,
    *,
    wall_s: float,
    **waveforms: Any,
) -> Afternoon:
    """``wall_s`` seconds at 600× of the afternoon of two days ago, whenever the test runs (the
    wearer's day, asleep, walking or washing, follows the local clock, and what a waveform gives
    depends on it), through Mosquitto and ingest into PostgreSQL; returns once the first
    patient's ``kind`` chunks are all stored and ingest has drained. Derive jobs do not run."""
    zone = local_zone()
    afternoon = (datetime.now(zone) - timedelta(days=2)).replace(hour=15, minute=0, second=0)
    shift = afternoon.timestamp() - time.time()
    enrol_ward(database_url, ward, afternoon - timedelta(hours=2))
    settings = Settings(mqtt_url, database_url, "127.0.0.1", 0)
    with running(settings, Options(client_id=f"ingest-{uid}", derive_tick_s=3600)) as svc:
        stats = simulate(ward, mqtt_url=mqtt_url, speed=600, minutes=wall_s / 60, seed=2,
                         stop=threading.Event(), clock=lambda: time.time() + shift,
                         **waveforms)  # fmt: skip
        sent = {WaveformKind.PPG: stats.ppg_messages, WaveformKind.ECG: stats.ecg_messages,
                WaveformKind.ACCEL: stats.accel_messages}[kind]  # fmt: skip
        window = (stats.event_start - timedelta(minutes=1), stats.event_end + timedelta(minutes=1))
        deadline = time.monotonic() + 60
        with psycopg.connect(database_url) as conn:
            while True:
                chunks = devices.load_waveform(conn, ward[0].device_id, kind, *window)
                conn.commit()
                if len(chunks) >= sent or time.monotonic() > deadline:
                    break
                time.sleep(0.25)
            while svc.source.depth() > 0 and time.monotonic() < deadline:
                time.sleep(0.1)
    return Afternoon(stats, chunks, zone)
