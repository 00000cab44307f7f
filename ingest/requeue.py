"""``wardwatch quarantine retry``: put quarantined messages through the pipeline again.

For when the cause is fixed: the device has been enrolled, its clock corrected, the flood
understood. The messages go through exactly as they first arrived (topic, payload, receipt
time), so the idempotent key stores nothing twice; what still fails is quarantined anew, with
its reason, and the old rows are marked retried.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from ingest.pipeline import Pipeline
from storage import quarantine


@dataclass(frozen=True, slots=True)
class Retried:
    messages: int
    stored: int
    quarantined_again: int


def retry(
    pipeline: Pipeline, database_url: str, sel: quarantine.Selection, *, now: datetime
) -> Retried:
    with psycopg.connect(database_url) as conn:
        rows = quarantine.select(conn, sel)
    if not rows:
        return Retried(0, 0, 0)
    items = [(r.topic, bytes(r.payload), int(r.received_at.timestamp() * 1_000_000)) for r in rows]
    result = pipeline.process(items, limit_rate=False)
    # Marked only after the re-ingest committed: a crash in between retries them again, harmlessly.
    with psycopg.connect(database_url) as conn:
        quarantine.mark_retried(conn, [r.id for r in rows], now)
    return Retried(len(rows), result.stored, result.quarantined)
