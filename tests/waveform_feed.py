"""Send a waveform through the real ingest pipeline as a device would, for the derive-job tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

import numpy as np
import numpy.typing as npt
import orjson
import psycopg
from prometheus_client import CollectorRegistry

from ingest import pipeline as pipe
from signals.vitals import Metric
from storage import assignments


def _us(t: datetime) -> int:
    return int(t.timestamp() * 1_000_000)


def enrol(url: str, device: str, patient: str, since: datetime) -> None:
    """Assign ``device`` to ``patient`` on ward "w" from ``since``."""
    with psycopg.connect(url) as conn:
        assignments.enrol(conn, device_id=device, patient_id=patient, ward="w", valid_from=since)


def send_waveform(
    url: str,
    device: str,
    *,
    kind: str,
    unit: str,
    samples: npt.NDArray[np.float64],
    fs: int,
    start: datetime,
    chunk_s: int = 30,
    vitals: list[dict[str, object]] | None = None,
) -> datetime:
    """Stream ``samples`` (n or (n, 3)) from ``start`` in ``chunk_s`` chunks on the waveform
    topic, numbered from 0, plus ``vitals`` if given, through ``ingest.pipeline`` into the
    database; the pipeline's clock stands a minute after the last sample. Returns the end."""
    end = start + timedelta(seconds=samples.shape[0] / fs)
    p = pipe.Pipeline(
        url, settings=pipe.Settings(), metrics=pipe.PipelineMetrics.create(CollectorRegistry()),
        clock=lambda: end + timedelta(minutes=1),
    )  # fmt: skip
    try:
        items = []
        for k, first in enumerate(range(0, samples.shape[0], chunk_s * fs)):
            at = start + timedelta(seconds=first / fs)
            chunk = {"ts": at.isoformat(), "kind": kind, "fs_hz": fs, "unit": unit, "seq": k,
                     "samples": samples[first : first + chunk_s * fs].tolist()}  # fmt: skip
            items.append((f"wardwatch/v1/devices/{device}/waveform", orjson.dumps(chunk), _us(at)))
        if vitals:
            items.append(
                (f"wardwatch/v1/devices/{device}/vitals", orjson.dumps(vitals), _us(start))
            )
        p.process(items)
    finally:
        p.close()
    return end


def send_vitals(url: str, device: str, vitals: dict[str, object], *, clock: datetime) -> None:
    """Send one vitals sample from ``device`` through ``ingest.pipeline`` (received at its
    ``ts``), the pipeline's clock standing at ``clock``; NEWS2 scores the patient then."""
    at = datetime.fromisoformat(str(vitals["ts"]))
    p = pipe.Pipeline(
        url, settings=pipe.Settings(), metrics=pipe.PipelineMetrics.create(CollectorRegistry()),
        clock=lambda: clock,
    )  # fmt: skip
    try:
        p.process([(f"wardwatch/v1/devices/{device}/vitals", orjson.dumps([vitals]), _us(at))])
    finally:
        p.close()


def latest_missing(url: str, patient: str) -> list[str]:
    """The NEWS2 parameters the patient's latest score had no value for."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select missing from scores where patient_id = %s order by ts desc limit 1",
            (patient,),
        ).fetchone()
    assert row is not None, f"{patient} has no score"
    return list(row[0])  # type: ignore[call-overload]


def stored_readings(url: str, patient: str, metric: Metric) -> list[tuple[int, float, str]]:
    """The patient's readings of ``metric``: (event time µs, value, device), in time order."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select (extract(epoch from ts) * 1000000)::int8, value, device_id from readings"
            " where patient_id = %s and metric = %s order by ts",
            (patient, int(metric)),
        ).fetchall()
    return [(cast(int, t), cast(float, v), cast(str, d)) for t, v, d in rows]


def same_readings(stored: list[tuple[int, float, str]], pure: list[tuple[int, float]]) -> None:
    """The same readings: times exactly, values to float32's precision."""
    assert [t for t, *_ in stored] == [t for t, _ in pure]
    np.testing.assert_allclose([v for _, v, _ in stored], [v for _, v in pure], rtol=1e-9)
