"""Reading back what ingest set aside, so that a person can see why and put it through again."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row

Conn = psycopg.Connection[tuple[object, ...]]


@dataclass(frozen=True, slots=True)
class Quarantined:
    id: int
    received_at: datetime
    topic: str
    device_id: str | None
    reason: str
    detail: str
    payload: bytes
    retried_at: datetime | None


@dataclass(frozen=True, slots=True)
class Selection:
    """Which quarantined messages: by reason, device or id; by default those not yet retried."""

    reason: str | None = None
    device_id: str | None = None
    ids: tuple[int, ...] = ()
    include_retried: bool = False
    limit: int = 1000


def select(conn: Conn, sel: Selection) -> list[Quarantined]:
    with conn.cursor(row_factory=class_row(Quarantined)) as cur:
        return cur.execute(
            "select id, received_at, topic, device_id, reason, detail, payload, retried_at"
            " from quarantine where (%(reason)s::text is null or reason = %(reason)s)"
            " and (%(device)s::text is null or device_id = %(device)s)"
            " and (cardinality(%(ids)s::int8[]) = 0 or id = any(%(ids)s::int8[]))"
            " and (%(all)s or retried_at is null) order by id limit %(limit)s",
            {
                "reason": sel.reason,
                "device": sel.device_id,
                "ids": list(sel.ids),
                "all": sel.include_retried,
                "limit": sel.limit,
            },
        ).fetchall()


def mark_retried(conn: Conn, ids: Sequence[int], at: datetime) -> None:
    conn.execute("update quarantine set retried_at = %s where id = any(%s)", (at, list(ids)))


def counts_by_reason(conn: Conn) -> dict[str, int]:
    rows = conn.execute(
        "select reason, count(*) from quarantine where retried_at is null group by reason"
    ).fetchall()
    return {str(r): int(n) for r, n in rows}  # type: ignore[call-overload]
