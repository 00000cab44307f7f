"""Where the behaviour-based risk of each patient's days is kept, with the model state behind it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from psycopg.rows import args_row
from psycopg.types.json import Jsonb

from signals.risk import Assessment, Feature
from signals.vitals import Metric, Readings

Conn = psycopg.Connection[tuple[object, ...]]


@dataclass(frozen=True, slots=True)
class RiskDay:
    patient_id: str
    day: date
    score: float
    cusum: float
    alarm: bool
    features: dict[str, float | None]
    contributions: list[dict[str, Any]]
    missing: list[str]
    learning: list[str]


def last_state(conn: Conn, patient_id: str) -> tuple[date, dict[str, Any]] | None:
    """The last day scored for the patient and the model state after it."""
    row = conn.execute(
        "select day, state from risk_days where patient_id = %s order by day desc limit 1",
        (patient_id,),
    ).fetchone()
    return None if row is None else (row[0], row[1])  # type: ignore[return-value]


def save_day(
    conn: Conn,
    patient_id: str,
    day: date,
    features: dict[Feature, float],
    assessment: Assessment,
    state: dict[str, Any],
    *,
    now: datetime,
) -> None:
    risk = assessment.risk
    conn.execute(
        "insert into risk_days (patient_id, day, features, score, deviation_sd, cusum, alarm,"
        " contributions, missing, learning, state, computed_at)"
        " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            patient_id,
            day,
            Jsonb({f.value: (v if math.isfinite(v) else None) for f, v in features.items()}),
            risk.score,
            risk.deviation_sd,
            assessment.cusum,
            assessment.alarm,
            Jsonb(
                [
                    {
                        "feature": c.feature.value,
                        "value": c.value,
                        "usual": c.usual,
                        "z": c.z,
                        "points": c.points,
                    }
                    for c in risk.contributions
                ]
            ),
            [f.value for f in risk.missing],
            [f.value for f in risk.learning],
            Jsonb(state),
            now,
        ),
    )


def days(conn: Conn, patient_id: str, *, limit: int = 30) -> list[RiskDay]:
    """The patient's most recent scored days, newest first (for the dashboard and reports)."""
    with conn.cursor(row_factory=args_row(RiskDay)) as cur:
        return cur.execute(
            "select patient_id, day, score, cusum, alarm, features, contributions, missing,"
            " learning from risk_days where patient_id = %s order by day desc limit %s",
            (patient_id, limit),
        ).fetchall()


def event_span(conn: Conn, patient_id: str) -> tuple[int, int, int] | None:
    """First and last event time (µs) of the patient's readings, and the latest UTC offset.

    Two index probes per metric (the ``readings_patient`` index is (patient, metric, ts)), not a
    scan of the whole stay: the risk job asks on every tick for every patient, and a plain
    min/max over a fortnight of readings cost more than scoring the day (bench.jobs).
    """
    row = conn.execute(
        "select (extract(epoch from min(f.ts)) * 1000000)::int8,"
        " (extract(epoch from max(l.ts)) * 1000000)::int8,"
        " (array_agg(l.utc_offset_min order by l.ts desc nulls last))[1]"
        " from unnest(%(m)s::int2[]) m(code)"
        " left join lateral (select ts from readings where patient_id = %(p)s"
        "   and metric = m.code order by ts limit 1) f on true"
        " left join lateral (select ts, utc_offset_min from readings where patient_id = %(p)s"
        "   and metric = m.code order by ts desc limit 1) l on true",
        {"p": patient_id, "m": _ALL_METRICS},
    ).fetchone()
    if row is None or row[0] is None:
        return None
    return int(row[0]), int(row[1]), int(row[2])  # type: ignore[call-overload]


_ALL_METRICS = [int(m) for m in Metric]


_DAY_METRICS = [
    int(m)
    for m in (
        Metric.HEART_RATE, Metric.STEPS, Metric.WORN, Metric.RESP_RATE, Metric.SPO2,
        Metric.TEMPERATURE, Metric.RR_INTERVAL, Metric.SLEEP_MINUTES, Metric.ACTIVITY_MG,
        Metric.INACTIVE,
    )
]  # fmt: skip


def readings_between(conn: Conn, patient_id: str, lo_us: int, hi_us: int) -> Readings:
    """The patient's readings of the metrics the daily features use, in ``[lo, hi)`` event time.

    Binary COPY straight into numpy: a day with beat-to-beat intervals is ~100k rows.
    """
    ts: list[int] = []
    metric: list[int] = []
    value: list[float] = []
    query = (
        "copy (select (extract(epoch from ts) * 1000000)::int8, metric, value from readings"
        " where patient_id = {p} and metric = any({m})"
        " and ts >= 'epoch'::timestamptz + {lo} * interval '1 microsecond'"
        " and ts < 'epoch'::timestamptz + {hi} * interval '1 microsecond')"
        " to stdout (format binary)"
    )
    stmt = sql.SQL(query).format(
        p=sql.Literal(patient_id), m=sql.Literal(_DAY_METRICS), lo=sql.Literal(lo_us),
        hi=sql.Literal(hi_us),
    )  # fmt: skip
    with conn.cursor() as cur, cur.copy(stmt) as copy:
        copy.set_types(["int8", "int2", "float8"])
        for t, m, v in copy.rows():
            ts.append(t)
            metric.append(m)
            value.append(v)
    n = len(ts)
    ts_us = np.asarray(ts, dtype=np.int64)
    return Readings(
        device_id=np.full(n, "", dtype=object),
        patient_id=np.full(n, patient_id, dtype=object),
        metric=np.asarray(metric, dtype=np.int16),
        ts_us=ts_us,
        value=np.asarray(value, dtype=np.float64),
        utc_offset_min=np.zeros(n, np.int16),
        received_us=ts_us,
    )
