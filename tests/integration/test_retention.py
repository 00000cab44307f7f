"""Retention against real PostgreSQL: old raw data goes, underived data and the record stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest
from prometheus_client import CollectorRegistry

from signals.waveforms import WaveformChunk, WaveformKind
from storage import devices, retention
from wardwatch import jobs

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)


def _us(t: datetime) -> int:
    return int(t.timestamp() * 1_000_000)


def _chunk(device: str, kind: WaveformKind, start: datetime) -> WaveformChunk:
    shape = (250, 3) if kind is WaveformKind.ACCEL else (250,)
    return WaveformChunk(device, kind, _us(start), 25.0, np.zeros(shape, np.float32),
                         kind.unit, None, _us(start))  # fmt: skip


def _left(conn: psycopg.Connection[tuple[object, ...]]) -> set[tuple[object, ...]]:
    return set(conn.execute("select device_id, kind, start_ts from waveforms").fetchall())


def test_prunes_what_is_old_and_derived_and_keeps_the_rest(database_url: str) -> None:
    old, recent = NOW - timedelta(days=9), NOW - timedelta(days=2)
    with psycopg.connect(database_url) as conn:
        with conn.transaction():
            devices.insert_waveforms(conn, [
                _chunk("acc-done", WaveformKind.ACCEL, old),  # derived long ago: goes
                _chunk("acc-done", WaveformKind.ACCEL, recent),  # within retention: stays
                _chunk("acc-stuck", WaveformKind.ACCEL, old),  # its job stopped before it
                _chunk("ppg-own", WaveformKind.PPG, old),  # no progress row at all: age decides
                _chunk("ppg-both", WaveformKind.PPG, old),  # both PPG jobs passed it: goes
                _chunk("ppg-half", WaveformKind.PPG, old),  # breathing done, pulse stuck: stays
                _chunk("ecg-done", WaveformKind.ECG, old),  # beats derived: goes
                _chunk("ecg-stuck", WaveformKind.ECG, old),  # beats stopped before it: stays
            ])  # fmt: skip
            done, stuck = NOW - timedelta(hours=1), old - timedelta(minutes=1)
            for device, what, until in [
                ("acc-done", "motion", done), ("acc-stuck", "motion", stuck),
                ("ppg-both", "resp_rate", done), ("ppg-both", "pulse", done),
                ("ppg-half", "resp_rate", done), ("ppg-half", "pulse", stuck),
                ("ecg-done", "beats", done), ("ecg-stuck", "beats", stuck),
            ]:  # fmt: skip
                devices.set_derived_until(conn, device, what, until)
            devices.record_seqs(conn, [
                ("acc-done", "waveform", k, NOW - timedelta(days=3, minutes=k)) for k in range(7)
            ] + [("acc-done", "waveform", 100, NOW - timedelta(minutes=5))])  # fmt: skip
        pruned = retention.prune(
            conn, waveforms_before=NOW - timedelta(days=7), seq_before=NOW - timedelta(days=1),
            batch=2,  # several batches, to see them continue
        )  # fmt: skip
        assert pruned == retention.Pruned(waveforms=4, message_seq=7)
        assert _left(conn) == {
            ("acc-done", "accel", recent), ("acc-stuck", "accel", old),
            ("ppg-half", "ppg", old), ("ecg-stuck", "ecg", old),
        }  # fmt: skip
        seqs = conn.execute("select seq from message_seq").fetchall()
        assert seqs == [(100,)]
        # A second run finds nothing more.
        again = retention.prune(
            conn, waveforms_before=NOW - timedelta(days=7), seq_before=NOW - timedelta(days=1)
        )
        assert again == retention.Pruned(0, 0)


def test_the_job_counts_what_it_deleted(database_url: str) -> None:
    registry = CollectorRegistry()
    pruned = jobs.make_pruned_counter(registry)
    with psycopg.connect(database_url) as conn:
        with conn.transaction():
            devices.insert_waveforms(
                conn, [_chunk("ecg-2", WaveformKind.ECG, NOW - timedelta(days=8))]
            )
            devices.record_seqs(conn, [("ecg-2", "waveform", 0, NOW - timedelta(days=2))])
        jobs.prune_raw(conn, now=NOW, waveforms_for=timedelta(days=7), seq_for=timedelta(days=1),
                       pruned=pruned)  # fmt: skip
    for table in ("waveforms", "message_seq"):
        assert registry.get_sample_value("wardwatch_rows_pruned_total", {"table": table}) == 1
