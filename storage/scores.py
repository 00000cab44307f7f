"""Scores as computed: one row per patient, kind and event time."""

from __future__ import annotations

from datetime import datetime

import orjson
import psycopg

from signals.news2 import News2


def save_news2(
    conn: psycopg.Connection[tuple[object, ...]], patient_id: str, ts: datetime, score: News2
) -> None:
    conn.execute(
        "insert into scores (patient_id, kind, ts, total, risk, points, missing)"
        " values (%s, 'news2', %s, %s, %s, %s::jsonb, %s)"
        " on conflict (patient_id, kind, ts) do update set total = excluded.total,"
        " risk = excluded.risk, points = excluded.points, missing = excluded.missing",
        (
            patient_id,
            ts,
            score.total,
            score.risk,
            orjson.dumps(dict(score.scores)).decode(),
            list(score.missing),
        ),
    )
