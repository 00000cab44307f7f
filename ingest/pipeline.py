"""The run loop's unit of work: one micro-batch of messages → stored, scored, alerted, committed.

Everything a batch causes (readings, quarantine, scores, alert changes, the notifications they
owe) commits in one transaction; only then are the messages acknowledged to the broker. A crash
anywhere before the commit means the broker redelivers and the idempotent key absorbs repeats.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import psycopg
from prometheus_client import CollectorRegistry, Counter, Gauge

from alerts.escalation import EscalationPolicy
from alerts.lifecycle import DEFAULT_HOLD_DOWN
from alerts.model import Rule
from alerts.policy import RuleSettings, WardPolicy
from alerts.rules import news2_condition
from ingest.codec import DecodeError, Rejected, decode_batch, newest_ts_us
from ingest.ratelimit import Limit, RateLimiter
from ingest.resolve import Resolver
from ingest.status import decode_statuses, status_readings
from ingest.waveform import decode_waveforms, topic_kind
from signals.news2 import News2, news2_from_latest
from signals.vitals import Metric, Readings
from signals.waveforms import DeviceStatus, WaveformChunk
from storage import alerts as alert_store
from storage import assignments, devices, readings, scores
from storage import policy as policy_store
from storage.readings import QuarantineRow

log = logging.getLogger(__name__)

NEWS2_METRICS = (
    Metric.RESP_RATE,
    Metric.SPO2,
    Metric.ON_OXYGEN,
    Metric.TEMPERATURE,
    Metric.SYSTOLIC_BP,
    Metric.HEART_RATE,
    Metric.CONSCIOUSNESS,
)
_NEWS2_CODES = np.array([int(m) for m in NEWS2_METRICS], dtype=np.int16)

Conn = psycopg.Connection[tuple[object, ...]]
Item = tuple[str, bytes, int]  # topic, payload, received µs


@dataclass(frozen=True, slots=True)
class PipelineMetrics:
    """The counters operators and outside checks read: these names are a contract."""

    stored: Counter
    late: Counter
    duplicates: Counter
    quarantined: Counter
    alerts_raised: Counter
    lag: Gauge
    batches: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> PipelineMetrics:
        return cls(
            stored=Counter(
                "wardwatch_readings_stored", "Readings stored (new rows).", registry=registry
            ),
            late=Counter(
                "wardwatch_readings_late",
                "Readings stored that were received long after they were measured.",
                registry=registry,
            ),
            duplicates=Counter(
                "wardwatch_readings_duplicate",
                "Readings received again and stored once.",
                registry=registry,
            ),
            quarantined=Counter(
                "wardwatch_readings_quarantined",
                "Readings or payloads quarantined, by reason.",
                ["reason"],
                registry=registry,
            ),
            alerts_raised=Counter(
                "wardwatch_alerts_raised",
                "Alerts fired, by severity.",
                ["severity"],
                registry=registry,
            ),
            lag=Gauge(
                "wardwatch_ingest_lag_seconds",
                "Age of the oldest message of the last committed batch at commit "
                "(receipt to commit).",
                registry=registry,
            ),
            batches=Counter("wardwatch_ingest_batches", "Batches committed.", registry=registry),
        )


@dataclass(frozen=True, slots=True)
class Settings:
    freshness: timedelta = timedelta(minutes=60)  # a value older than this is "not measured"
    max_future: timedelta = timedelta(minutes=5)  # clock-skew tolerance
    late_after: timedelta = timedelta(minutes=10)  # received this long after measuring: "late"
    rate_limit: Limit = field(default_factory=Limit)
    hold_down: timedelta = DEFAULT_HOLD_DOWN  # event time a condition stays clear before resolving
    escalation: EscalationPolicy = field(default_factory=EscalationPolicy)
    channels: tuple[str, ...] = ("log",)
    assignments_refresh_s: float = 5.0


@dataclass(slots=True)
class BatchResult:
    messages: int = 0
    stored: int = 0
    late: int = 0
    duplicates: int = 0
    quarantined: int = 0
    alerts: list[alert_store.Outcome] = field(default_factory=list)

    def add(self, other: BatchResult) -> None:
        self.messages += other.messages
        self.stored += other.stored
        self.late += other.late
        self.duplicates += other.duplicates
        self.quarantined += other.quarantined
        self.alerts += other.alerts


class Pipeline:
    """Holds the per-patient scoring state between batches; one instance per ingest worker."""

    def __init__(
        self,
        database_url: str,
        *,
        settings: Settings,
        metrics: PipelineMetrics,
        clock: Callable[[], datetime],
    ) -> None:
        self._url = database_url
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self._conn: Conn | None = None
        self._resolver = Resolver(())
        self._resolver_loaded = -1e9
        self._limiter = RateLimiter(settings.rate_limit)
        self._policies = policy_store.PolicyCache()
        # Used while no policy is stored: the service's own settings.
        self._unstored = WardPolicy(escalation=settings.escalation, channels=settings.channels)
        self._unstored_news2 = RuleSettings(hold_down=settings.hold_down)

    # --- connection ----------------------------------------------------------------------------

    def _connection(self) -> Conn:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._url, connect_timeout=5)
            self._resolver_loaded = -1e9  # reload assignments after a reconnect
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _refresh_assignments(self, conn: Conn, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._resolver_loaded > self._settings.assignments_refresh_s:
            self._resolver = Resolver(assignments.load(conn))
            conn.commit()
            self._resolver_loaded = now

    # --- the unit of work ----------------------------------------------------------------------

    def process(self, items: list[Item], *, limit_rate: bool = True) -> BatchResult:
        """Store, score and alert one batch in one transaction. Raises psycopg errors to retry.

        ``limit_rate=False`` is for an operator re-ingesting quarantined messages on purpose.
        """
        tokens = self._limiter.snapshot()
        try:
            return self._process(items, limit_rate=limit_rate)
        except BaseException:
            # A batch that did not commit will come again: it must not have spent its tokens,
            # or a database outage would turn into "rate limited" quarantine on the retry.
            self._limiter.restore(tokens)
            raise

    def _process(self, items: list[Item], *, limit_rate: bool) -> BatchResult:
        conn = self._connection()
        self._refresh_assignments(conn)
        known, unknown, flooded = self._split_by_device(conn, items, limit_rate=limit_rate)
        routed = _route(known)
        max_future_us = int(self._settings.max_future.total_seconds() * 1e6)
        decoded = decode_batch(routed["vitals"], max_future_us=max_future_us)
        chunks, waveform_rejects = decode_waveforms(routed["waveform"], max_future_us=max_future_us)
        statuses, status_rejects = decode_statuses(routed["status"], max_future_us=max_future_us)
        # Battery and worn from status messages are readings like any other.
        combined = Readings.concat([decoded.readings, status_readings(statuses)])
        batch, unassigned = self._resolver.resolve(combined)
        quarantine = self._quarantine_rows(
            [*decoded.rejected, *waveform_rejects, *status_rejects],
            unknown,
            flooded,
            batch.take(unassigned),
        )
        batch = batch.take(~unassigned)
        result = BatchResult(messages=len(items), quarantined=len(quarantine))
        now = self._clock()
        with conn.transaction():
            devices.insert_waveforms(conn, chunks)
            devices.insert_statuses(conn, statuses)
            devices.record_seqs(conn, _seqs(decoded.seqs, chunks, statuses))
            inserted = readings.insert_readings(
                conn, batch, late_after_us=int(self._settings.late_after.total_seconds() * 1e6)
            )
            result.stored, result.late = inserted.stored, inserted.late
            result.duplicates = len(batch) - result.stored + decoded.duplicates
            readings.insert_quarantine(conn, quarantine)
            pending_scores = self._score(conn, batch)
            result.alerts = self._alert(conn, pending_scores, now)
        self._count(result, quarantine, items)
        return result

    def quarantine_failed(self, item: Item, exc: Exception) -> None:
        """Quarantine a message whose processing raised; the reason names the error, not data."""
        topic, payload, received_us = item
        try:
            device: str | None = topic_kind(topic)[0]
        except DecodeError:
            device = None
        detail = f"processing failed with {type(exc).__name__}; kept for `quarantine retry`"
        conn = self._connection()
        with conn.transaction():
            readings.insert_quarantine(
                conn,
                [
                    QuarantineRow(
                        _dt(received_us), topic, device, "processing error", detail, payload[:4096]
                    )
                ],
            )
        self._metrics.quarantined.labels(reason="processing error").inc()

    def _split_by_device(
        self, conn: Conn, items: list[Item], *, limit_rate: bool
    ) -> tuple[list[Item], list[Item], list[Item]]:
        """Split off messages from devices nobody is enrolled on, and floods past the rate limit.

        Unknown devices are checked first so that random device ids cannot grow the limiter.
        """
        known: list[Item] = []
        unknown: list[Item] = []
        flooded: list[Item] = []
        max_future_us = int(self._settings.max_future.total_seconds() * 1e6)
        refreshed = False
        for item in items:
            try:
                device, _kind = topic_kind(item[0])
            except DecodeError:
                known.append(item)  # the codec quarantines a bad topic with its own reason
                continue
            if not self._resolver.knows(device) and not refreshed:
                self._refresh_assignments(conn, force=True)  # enrolled a moment ago?
                refreshed = True
            if not self._resolver.knows(device):
                unknown.append(item)
            elif not limit_rate or self._limiter.allow(
                device, item[2], newest_ts_us(item[1], cap_us=item[2] + max_future_us)
            ):
                known.append(item)
            else:
                flooded.append(item)
        return known, unknown, flooded

    def _quarantine_rows(
        self,
        rejected: list[Rejected],
        unknown: list[Item],
        flooded: list[Item],
        unassigned: Readings,
    ) -> list[QuarantineRow]:
        rows = [
            QuarantineRow(_dt(r.received_us), r.topic, r.device_id, r.reason, r.detail, r.raw)
            for r in rejected
        ]
        for topic, payload, received_us in unknown:
            device, _kind = topic_kind(topic)
            rows.append(
                QuarantineRow(
                    _dt(received_us),
                    topic,
                    device,
                    "unknown device",
                    f"device {device} is not enrolled on any patient (wardwatch enrol)",
                    payload[:4096],
                )
            )
        limit = self._settings.rate_limit.describe()
        for topic, payload, received_us in flooded:
            device, _kind = topic_kind(topic)
            rows.append(
                QuarantineRow(
                    _dt(received_us), topic, device, "rate limited",
                    f"device {device} sent more than {limit}", payload[:4096],
                )
            )  # fmt: skip
        for i in range(len(unassigned)):
            device = str(unassigned.device_id[i])
            metric = Metric(int(unassigned.metric[i]))
            ts = _dt(int(unassigned.ts_us[i]))
            rows.append(
                QuarantineRow(
                    _dt(int(unassigned.received_us[i])),
                    f"wardwatch/v1/devices/{device}/vitals",
                    device,
                    "unknown device",
                    f"device {device} was not assigned to a patient at {ts.isoformat()}",
                    orjson.dumps(
                        {"ts": ts.isoformat(), metric.wire_name: float(unassigned.value[i])}
                    ),
                )
            )
        return rows

    def _score(
        self, conn: Conn, batch: Readings
    ) -> dict[str, tuple[datetime, News2, dict[str, str]]]:
        """NEWS2 for each patient whose NEWS2 inputs arrived, at the event time of their latest.

        The inputs are read back from the database, not kept in this worker's memory: with
        several workers sharing a subscription, one patient's readings arrive at different
        workers in any order. A transaction-scoped advisory lock per patient (taken in sorted
        order, so two workers cannot deadlock) makes the second worker wait for the first to
        commit; under READ COMMITTED its next query then sees both workers' readings.
        """
        relevant = batch.take(np.isin(batch.metric, _NEWS2_CODES))
        if len(relevant) == 0:
            return {}
        patients: list[str] = np.unique(relevant.patient_id.astype(str)).tolist()
        conn.execute(
            "select pg_advisory_xact_lock(hashtextextended(p, 0))"
            " from unnest(%s::text[]) as p order by p",
            (patients,),
        )
        latest = readings.latest_values(conn, patients, NEWS2_METRICS)
        # A sensor found stuck or noisy (jobs.check_sensors) is scored as not measured, and
        # the alert says why, never as the frozen value it keeps sending.
        faults = devices.sensor_faults(conn, patients)
        freshness_us = int(self._settings.freshness.total_seconds() * 1e6)
        out: dict[str, tuple[datetime, News2, dict[str, str]]] = {}
        for pid in patients:
            bad = faults.get(pid, {})
            values = {m: v for m, v in latest[pid].items() if m not in bad}
            if not values:
                continue
            at_us = max(t for t, _ in values.values())
            info = self._resolver.patients.get(pid)
            score = news2_from_latest(
                values,
                at_us=at_us,
                freshness_us=freshness_us,
                spo2_scale=info.spo2_scale if info else 1,
            )
            out[pid] = (_dt(at_us), score, {m.wire_name: label for m, label in bad.items()})
        scores.save_news2_many(conn, [(pid, at, score) for pid, (at, score, _) in out.items()])
        return out

    def _alert(
        self, conn: Conn, scored: dict[str, tuple[datetime, News2, dict[str, str]]], now: datetime
    ) -> list[alert_store.Outcome]:
        if not scored:
            return []
        current = alert_store.open_alerts(conn, scored)
        waiting = alert_store.pending(conn, scored)
        policy = self._policies.get(conn)  # None while no policy is stored: self._settings
        paused = policy_store.pauses(conn, scored)
        outcomes = []
        for pid, (at, score, faulty) in scored.items():
            pause = paused.get(pid)
            if pause is not None and pause.covers(at):
                # A clinician paused monitoring: the score is stored and shown, but no alert
                # fires, worsens, clears or resolves for a reading taken during the pause.
                continue
            info = self._resolver.patients.get(pid)
            ward = info.ward if info else "unknown"
            outcome = alert_store.evaluate(
                conn,
                patient_id=pid,
                ward=ward,
                rule=Rule.NEWS2,
                condition=news2_condition(pid, score, faulty),
                current=current.get((pid, Rule.NEWS2)),
                pending_since=waiting.get((pid, Rule.NEWS2)),
                at=at,
                now=now,
                policy=policy.for_ward(ward) if policy else self._unstored,
                settings=None if policy else self._unstored_news2,
            )
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes

    def _count(
        self, result: BatchResult, quarantine: list[QuarantineRow], items: list[Item]
    ) -> None:
        m = self._metrics
        m.stored.inc(result.stored)
        m.late.inc(result.late)
        m.duplicates.inc(result.duplicates)
        for row in quarantine:
            m.quarantined.labels(reason=row.reason).inc()
        for outcome in result.alerts:
            if outcome.kind == "fired":
                m.alerts_raised.labels(severity=outcome.severity.label).inc()
        if items:
            oldest = min(i[2] for i in items)
            m.lag.set(max(0.0, time.time() - oldest / 1e6))
        m.batches.inc()


def _route(items: list[Item]) -> dict[str, list[Item]]:
    """Messages by stream; a bad topic goes to the vitals codec, which quarantines it."""
    routed: dict[str, list[Item]] = {"vitals": [], "waveform": [], "status": []}
    for item in items:
        try:
            _device, kind = topic_kind(item[0])
        except DecodeError:
            kind = "vitals"
        routed[kind].append(item)
    return routed


def _seqs(
    vitals: tuple[tuple[str, int, int], ...],
    chunks: list[WaveformChunk],
    statuses: list[DeviceStatus],
) -> list[tuple[str, str, int, datetime]]:
    """Message sequence numbers, for finding messages lost upstream (devices.find_gaps)."""
    out = [(device, "vitals", seq, _dt(received)) for device, seq, received in vitals]
    out += [
        (c.device_id, "waveform", c.seq, _dt(c.received_us or 0))
        for c in chunks
        if c.seq is not None
    ]
    out += [
        (s.device_id, "status", s.seq, _dt(s.received_us)) for s in statuses if s.seq is not None
    ]
    return out


def _dt(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1e6, UTC)


__all__ = ["BatchResult", "Pipeline", "PipelineMetrics", "Settings"]
