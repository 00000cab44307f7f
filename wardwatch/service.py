"""Composition root of ``wardwatch run``: builds the adapters, starts threads, owns teardown."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client import CollectorRegistry, Gauge
from psycopg_pool import ConnectionPool

from alerts.escalation import EscalationPolicy
from alerts.notify import Channel, LogChannel, WebhookChannel
from dashboard.app import create_app
from dashboard.server import serve_in_thread
from ingest import pipeline as pipe
from ingest.loop import run as run_loop
from ingest.mqtt import DEVICE_TOPICS, Message, MqttSource, subscription
from storage import assignments, migrate
from storage.ward import PostgresWard
from wardwatch import jobs
from wardwatch.settings import Settings

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Options:
    """Timings a ward (or a test) tunes; defaults suit a real virtual ward."""

    silent_after: timedelta = timedelta(minutes=15)
    escalation: EscalationPolicy = field(default_factory=EscalationPolicy)
    escalation_tick_s: float = 5.0
    silence_tick_s: float = 30.0
    gap_window: timedelta = timedelta(hours=1)  # a gap keeps its alert open this long
    gap_grace: timedelta = timedelta(minutes=2)  # time for reordered messages to arrive
    dispatch_tick_s: float = 1.0
    risk_tick_s: float = 300.0  # days complete once a day; a tick catches them within minutes
    freshness: timedelta = timedelta(minutes=60)
    client_id: str | None = None  # overrides Settings.client_id (tests)
    max_batch: int = 2000


@dataclass(slots=True)
class Running:
    """A started service: where the dashboard is, what it has done, how to stop it."""

    dashboard_url: str
    registry: CollectorRegistry
    stop: Callable[[], None]
    source: MqttSource


@contextlib.contextmanager
def running(  # noqa: PLR0915 - the composition root wires every part in one place
    settings: Settings,
    options: Options = Options(),
    *,
    clock: Callable[[], datetime] = utc_now,
) -> Iterator[Running]:
    """Run ingest, scoring, alerting, escalation and the dashboard until the context exits."""
    migrate.upgrade(settings.database_url)
    registry = CollectorRegistry()
    metrics = pipe.PipelineMetrics.create(registry)
    sent = jobs.make_sent_counter(registry)
    channels: dict[str, Channel] = {"log": LogChannel()}
    if settings.webhook_url:
        channels["webhook"] = WebhookChannel(settings.webhook_url)
    channel_names = tuple(channels)
    stop = threading.Event()

    with contextlib.ExitStack() as stack:
        pool: ConnectionPool[psycopg.Connection[tuple[object, ...]]] = ConnectionPool(
            settings.database_url, min_size=1, max_size=4, open=True, name="wardwatch"
        )
        stack.callback(pool.close)

        source = MqttSource(
            settings.mqtt,
            client_id=options.client_id or settings.client_id,
            topics=tuple(subscription(t, settings.share_group) for t in DEVICE_TOPICS),
        )
        depth = Gauge(
            "wardwatch_ingest_queue_depth",
            "Messages received, not yet committed.",
            registry=registry,
        )
        depth.set_function(source.depth)
        subscribed = Gauge(
            "wardwatch_mqtt_subscribed",
            "1 while connected to the broker with the subscription granted.",
            registry=registry,
        )
        subscribed.set_function(lambda: float(source.subscribed.is_set()))
        # Read by `wardwatch watchdog` (a separate process) to tell when this service stalls.
        last_batch = Gauge(
            "wardwatch_last_batch_timestamp_seconds",
            "When ingest last committed a batch (Unix time).",
            registry=registry,
        )
        database_up = Gauge(
            "wardwatch_database_up",
            "1 while PostgreSQL answers a trivial query within 2 s.",
            registry=registry,
        )
        ward = PostgresWard(pool)
        database_up.set_function(lambda: float(ward.healthy()))
        enrolled = Gauge(
            "wardwatch_devices_enrolled",
            "Devices assigned to a patient now (as of the last \"no data\" check).",
            registry=registry,
        )
        pipeline = pipe.Pipeline(
            settings.database_url,
            settings=pipe.Settings(
                freshness=options.freshness,
                escalation=options.escalation,
                channels=channel_names,
            ),
            metrics=metrics,
            clock=clock,
        )

        def loop() -> None:
            pending: list[list[Message]] = []  # batches handed to the pipeline, not yet acked

            def batches() -> Iterator[list[tuple[str, bytes, int]]]:
                for batch in source.batches(max_batch=options.max_batch, stop=stop):
                    pending.append(batch)
                    yield [(m.topic, m.payload, m.received_us) for m in batch]

            def committed(_index: int) -> None:
                source.ack(pending.pop(0))
                last_batch.set_to_current_time()

            try:
                run_loop(pipeline, batches(), on_committed=committed, stop=stop)
            finally:
                pipeline.close()

        source.start()
        stack.callback(source.stop)
        worker = threading.Thread(target=loop, name="ingest", daemon=True)
        worker.start()
        stack.callback(worker.join, 30)
        stack.callback(stop.set)  # runs first: tell the loop to finish its batch

        scheduler = BackgroundScheduler(timezone=UTC)

        def job(
            fn: Callable[[psycopg.Connection[tuple[object, ...]]], object],
        ) -> Callable[[], None]:
            def run_job() -> None:
                try:
                    with pool.connection() as conn:
                        fn(conn)
                except (psycopg.Error, TimeoutError) as exc:
                    log.warning(
                        "%s skipped: database unavailable (%s)", fn.__name__, type(exc).__name__
                    )

            return run_job

        def escalation(conn: psycopg.Connection[tuple[object, ...]]) -> None:
            jobs.escalate(conn, now=clock(), policy=options.escalation, channels=channel_names)

        def silence(conn: psycopg.Connection[tuple[object, ...]]) -> None:
            enrolled.set(len(assignments.current_contacts(conn, clock())))
            jobs.check_silence(
                conn,
                now=clock(),
                silent_after=options.silent_after,
                policy=options.escalation,
                channels=channel_names,
                raised=metrics.alerts_raised,
            )

        def gaps(conn: psycopg.Connection[tuple[object, ...]]) -> None:
            jobs.check_gaps(
                conn,
                now=clock(),
                window=options.gap_window,
                grace=options.gap_grace,
                policy=options.escalation,
                channels=channel_names,
                raised=metrics.alerts_raised,
            )

        def send(conn: psycopg.Connection[tuple[object, ...]]) -> None:
            jobs.dispatch(conn, now=clock(), channels=channels, sent=sent)

        def device_health(conn: psycopg.Connection[tuple[object, ...]]) -> None:
            jobs.check_devices(
                conn,
                now=clock(),
                policy=options.escalation,
                channels=channel_names,
                raised=metrics.alerts_raised,
            )

        def risk(conn: psycopg.Connection[tuple[object, ...]]) -> None:
            jobs.assess_risk(
                conn,
                now=clock(),
                policy=options.escalation,
                channels=channel_names,
                raised=metrics.alerts_raised,
            )

        for fn, every in (
            (escalation, options.escalation_tick_s),
            (silence, options.silence_tick_s),
            (gaps, options.silence_tick_s),
            (device_health, options.silence_tick_s),
            (send, options.dispatch_tick_s),
            (risk, options.risk_tick_s),
        ):
            scheduler.add_job(
                job(fn), "interval", seconds=every, id=fn.__name__, max_instances=1, coalesce=True
            )
        scheduler.start()
        stack.callback(scheduler.shutdown, wait=True)

        app = create_app(ward, registry=registry, clock=clock)
        server = serve_in_thread(app, settings.http_host, settings.http_port)
        stack.callback(server.stop)
        log.info("dashboard at %s", server.url)
        yield Running(server.url, registry, stop.set, source)
