"""Scores as computed: one row per patient, kind and event time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import orjson
import psycopg

from signals.news2 import News2


def save_news2_many(
    conn: psycopg.Connection[tuple[object, ...]],
    computed: Sequence[tuple[str, datetime, News2]],
) -> None:
    """Store each (patient, event time, score); a recomputation at the same time replaces it."""
    conn.cursor().executemany(
        "insert into scores (patient_id, kind, ts, total, risk, points, missing)"
        " values (%s, 'news2', %s, %s, %s, %s::jsonb, %s)"
        " on conflict (patient_id, kind, ts) do update set total = excluded.total,"
        " risk = excluded.risk, points = excluded.points, missing = excluded.missing",
        [
            (pid, ts, s.total, s.risk, orjson.dumps(dict(s.scores)).decode(), list(s.missing))
            for pid, ts, s in computed
        ],
    )
