"""The ward as the dashboard reads it, over a connection pool (dashboard's ``WardReader``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from alerts.model import Alert, AlertEvent, AlertState
from alerts.report import Report
from signals.risk import Contribution, Feature, reasons
from signals.vitals import Metric
from storage import alerts as alert_store
from storage import devices, report
from storage import policy as policy_store
from storage.views import BehaviourRisk, PatientStatus

_SHOWN = (
    Metric.HEART_RATE,
    Metric.SPO2,
    Metric.RESP_RATE,
    Metric.TEMPERATURE,
    Metric.SYSTOLIC_BP,
    Metric.ON_OXYGEN,
)

_PATIENTS = """
select p.patient_id, p.ward, a.device_id, s.total, s.risk, s.missing, s.ts, dc.last_received_at,
       coalesce(l.latest, '{}'::jsonb), coalesce(l.derived, '{}'),
       (select count(*) from alerts al where al.patient_id = p.patient_id
          and al.state <> 'resolved') as open_alerts,
       p.spo2_scale,
       rd.day, rd.score, rd.alarm, rd.contributions, rd.learning
from patients p
left join lateral (select day, score, alarm, contributions, learning from risk_days
    where patient_id = p.patient_id order by day desc limit 1) rd on true
left join lateral (select device_id from assignments
    where patient_id = p.patient_id and valid_from <= now()
      and coalesce(valid_until, 'infinity'::timestamptz) > now()
    order by valid_from desc limit 1) a on true
left join lateral (select total, risk, missing, ts from scores
    where patient_id = p.patient_id and kind = 'news2' order by ts desc limit 1) s on true
left join device_contact dc on dc.device_id = a.device_id
left join lateral (select jsonb_object_agg(m.code::text, r.value) as latest,
    array_agg(m.code) filter (where r.device_id like %(derived)s) as derived
    from unnest(%(metrics)s::int2[]) m(code)
    cross join lateral (select value, device_id from readings
        where patient_id = p.patient_id and metric = m.code order by ts desc limit 1) r) l on true
where (%(ward)s::text is null or p.ward = %(ward)s)
"""


def _behaviour(
    day: date | None,
    score: float,
    alarm: bool,
    contributions: list[dict[str, Any]],
    learning: list[str] | None,
) -> BehaviourRisk | None:
    """The latest risk day as the nurse reads it: the largest reasons, in words."""
    if day is None:
        return None
    told = reasons(
        Contribution(Feature(c["feature"]), c["value"], c["usual"], c["z"], c["points"])
        for c in contributions
    )
    return BehaviourRisk(day, float(score), bool(alarm), told, tuple(learning or ()))


class PostgresWard:
    """Read side for the nurses' dashboard; each call takes a pooled connection briefly."""

    def __init__(self, pool: ConnectionPool[psycopg.Connection[tuple[object, ...]]]) -> None:
        self._pool = pool

    def patients(self, ward: str | None = None) -> list[PatientStatus]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                _PATIENTS,
                {
                    "ward": ward,
                    "metrics": [int(m) for m in _SHOWN],
                    "derived": "%" + devices.DERIVED_SUFFIX,
                },
            ).fetchall()
            paused = policy_store.pauses(conn, [str(r[0]) for r in rows])
        out = []
        for row in rows:
            pid, pward, dev, total, risk, missing, ts, seen, latest, derived, n_open, *rest = row
            scale, *rd = rest
            values = {
                Metric(int(k)).wire_name: float(v)
                for k, v in dict(latest).items()  # type: ignore[call-overload]
            }
            out.append(
                PatientStatus(
                    patient_id=str(pid),
                    ward=str(pward),
                    device_id=None if dev is None else str(dev),
                    news2_total=None if total is None else int(total),  # type: ignore[call-overload]
                    news2_risk=None if risk is None else str(risk),
                    news2_missing=tuple(missing or ()),  # type: ignore[arg-type]
                    scored_at=ts,  # type: ignore[arg-type]
                    last_seen_at=seen,  # type: ignore[arg-type]
                    latest=values,
                    derived=tuple(Metric(int(c)).wire_name for c in derived),  # type: ignore[attr-defined]
                    open_alerts=int(n_open),  # type: ignore[call-overload]
                    behaviour=_behaviour(*rd),  # type: ignore[arg-type]
                    spo2_scale=int(scale),  # type: ignore[call-overload]
                    pause=paused.get(str(pid)),
                )
            )
        return out

    def alerts(self, state: AlertState | None = None, ward: str | None = None) -> list[Alert]:
        with self._pool.connection() as conn:
            return alert_store.list_alerts(conn, state, ward)

    def alert_events(self, alert_id: int) -> list[AlertEvent]:
        with self._pool.connection() as conn:
            return alert_store.events(conn, alert_id)

    def acknowledge(self, alert_id: int, *, user: str, note: str | None, now: datetime) -> Alert:
        with self._pool.connection() as conn:
            return alert_store.acknowledge(conn, alert_id, user=user, note=note, now=now)

    def resolve(
        self, alert_id: int, *, user: str, outcome: str, note: str | None, now: datetime
    ) -> Alert:
        with self._pool.connection() as conn:
            return alert_store.resolve(
                conn, alert_id, user=user, outcome=outcome, note=note, now=now
            )

    def report(self, *, since: datetime, until: datetime, ward: str | None) -> Report:
        with self._pool.connection() as conn:
            return report.report(conn, since=since, until=until, ward=ward)

    def healthy(self) -> bool:
        try:
            with self._pool.connection(timeout=2) as conn:
                conn.execute("select 1")
        except (psycopg.Error, TimeoutError):
            return False
        return True
