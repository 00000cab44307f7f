"""A backlog the broker kept through an outage comes back fast: store it, do not call it a flood.

While ingest or PostgreSQL is down, the broker queues each device's messages at the rate the device
sent them. When ingest is back it receives the whole backlog within seconds, so *receipt* times say
"flood" although the device never sent faster than usual. An end-to-end reproduction:
``python -m bench.faults --readings 120000 --devices 4 --samples 10 --rate 80 --down 40``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import psycopg
import pytest
from prometheus_client import CollectorRegistry

from ingest import pipeline as pipe
from storage import assignments

pytestmark = pytest.mark.integration


def test_a_backlog_after_a_twelve_hour_outage_is_stored(database_url: str, uid: str) -> None:
    device = f"dev-{uid}"
    now = datetime.now(UTC)
    outage_began = now - timedelta(hours=12)
    with psycopg.connect(database_url) as conn:
        assignments.enrol(
            conn,
            device_id=device,
            patient_id=f"pt-{uid}",
            ward="w",
            valid_from=outage_began - timedelta(days=1),
        )
    # One message a minute for 12 hours, as a virtual-ward wearable sends; the broker redelivers
    # them 1 ms apart once ingest is back.
    received_us = int(now.timestamp() * 1e6)
    backlog = [
        (
            f"wardwatch/v1/devices/{device}/vitals",
            orjson.dumps(
                {"ts": (outage_began + timedelta(minutes=i)).isoformat(), "heart_rate": 70 + i % 9}
            ),
            received_us + i * 1000,
        )
        for i in range(720)
    ]
    pipeline = pipe.Pipeline(
        database_url,
        settings=pipe.Settings(),
        metrics=pipe.PipelineMetrics.create(CollectorRegistry()),
        clock=lambda: now,
    )
    try:
        results = [pipeline.process(backlog[i : i + 200]) for i in range(0, len(backlog), 200)]
    finally:
        pipeline.close()
    quarantined = sum(r.quarantined for r in results)
    stored = sum(r.stored for r in results)
    assert (stored, quarantined) == (720, 0), (
        f"of 720 messages sent one a minute, {stored} were stored and {quarantined} quarantined"
    )
