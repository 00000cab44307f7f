"""Bulk writes of readings and quarantine (COPY), and the latest values a score needs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

import psycopg
from psycopg.rows import args_row

from signals.vitals import Metric, Readings

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class QuarantineRow:
    received_at: datetime
    topic: str
    device_id: str | None
    reason: str
    detail: str
    payload: bytes


Conn = psycopg.Connection[tuple[object, ...]]


def _staging(conn: Conn) -> None:
    # A temporary table per connection with times as integer µs: COPY into it needs no Python
    # datetime per row and no index; one set-based INSERT ... ON CONFLICT DO NOTHING then makes
    # duplicate deliveries harmless.
    conn.execute(
        "create temp table if not exists readings_in (device_id text, metric int2, ts_us int8,"
        " patient_id text, value float8, utc_offset_min int2, received_us int8)"
        " on commit delete rows"
    )


_US = "(timestamptz 'epoch' + {} * interval '1 microsecond')"  # exact, unlike to_timestamp(float)


@dataclass(frozen=True, slots=True)
class Inserted:
    stored: int  # new rows (the rest were already there: duplicates)
    late: int  # of the new rows, how many were received long after they were measured


def insert_readings(conn: Conn, batch: Readings, *, late_after_us: int = 600_000_000) -> Inserted:
    """Store a batch inside the caller's transaction.

    Also records each device's last contact, which the "no data" rule reads.
    """
    if len(batch) == 0:
        return Inserted(0, 0)
    _staging(conn)
    with conn.cursor() as cur:
        with cur.copy("copy readings_in from stdin (format binary)") as copy:
            copy.set_types(["text", "int2", "int8", "text", "float8", "int2", "int8"])
            for row in zip(
                batch.device_id.tolist(),
                batch.metric.tolist(),
                batch.ts_us.tolist(),
                batch.patient_id.tolist(),
                batch.value.tolist(),
                batch.utc_offset_min.tolist(),
                batch.received_us.tolist(),
                strict=True,
            ):
                copy.write_row(row)
        counted = cur.execute(
            "with new as (insert into readings (device_id, metric, ts, patient_id, value,"
            f" utc_offset_min, received_at, late) select device_id, metric, {_US.format('ts_us')},"
            f" patient_id, value, utc_offset_min, {_US.format('received_us')},"
            " received_us - ts_us > %s from readings_in on conflict do nothing returning late)"
            " select count(*), count(*) filter (where late) from new",
            (late_after_us,),
        ).fetchone()
        stored, late = cast(tuple[int, int], counted or (0, 0))
        # Last contact per device, for the "no data" rule: one row per device, not per reading.
        cur.execute(
            "insert into device_contact (device_id, last_received_at, last_ts)"
            f" select device_id, {_US.format('max(received_us)')}, {_US.format('max(ts_us)')}"
            " from readings_in group by device_id"
            " on conflict (device_id) do update set last_received_at ="
            " greatest(device_contact.last_received_at, excluded.last_received_at),"
            " last_ts = greatest(device_contact.last_ts, excluded.last_ts)"
        )
        cur.execute("truncate readings_in")
    return Inserted(stored, late)


def insert_quarantine(conn: Conn, rows: Sequence[QuarantineRow]) -> None:
    if not rows:
        return
    with (
        conn.cursor() as cur,
        cur.copy(
            "copy quarantine (received_at, topic, device_id, reason, detail, payload) from stdin"
            " (format binary)"
        ) as copy,
    ):
        copy.set_types(["timestamptz", "text", "text", "text", "text", "bytea"])
        for r in rows:
            copy.write_row((r.received_at, r.topic, r.device_id, r.reason, r.detail, r.payload))


def latest_values(
    conn: Conn, patient_ids: Iterable[str], metrics: Iterable[Metric]
) -> dict[str, dict[Metric, tuple[int, float]]]:
    """Each patient's latest (event time µs, value) per metric, by event time: late data that
    arrives after a newer reading never replaces it."""
    pids = list(patient_ids)
    codes = [int(m) for m in metrics]
    out: dict[str, dict[Metric, tuple[int, float]]] = {p: {} for p in pids}
    if not pids:
        return out
    with conn.cursor(row_factory=args_row(_latest_row)) as cur:
        rows = cur.execute(
            "select p.pid, m.code,"
            " (extract(epoch from r.ts) * 1000000)::int8, r.value"
            " from unnest(%s::text[]) p(pid) cross join unnest(%s::int2[]) m(code)"
            " cross join lateral (select ts, value from readings"
            "   where patient_id = p.pid and metric = m.code order by ts desc limit 1) r",
            (pids, codes),
        ).fetchall()
    for pid, metric, ts_us, value in rows:
        out[pid][metric] = (ts_us, value)
    return out


def _latest_row(pid: str, code: int, ts_us: int, value: float) -> tuple[str, Metric, int, float]:
    return pid, Metric(code), ts_us, value
