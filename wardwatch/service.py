"""Composition root of ``wardwatch run``: builds the adapters, starts threads, owns teardown."""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client import CollectorRegistry, Gauge
from psycopg_pool import ConnectionPool

from alerts.escalation import EscalationPolicy
from alerts.grouping import DEFAULT_GROUP_WAIT
from alerts.notify import Channel, LogChannel, MqttChannel, SmtpChannel, WebhookChannel
from alerts.policy import Policy, Thresholds, WardPolicy
from dashboard.app import create_app
from dashboard.server import serve_in_thread
from ingest import pipeline as pipe
from ingest.loop import run as run_loop
from ingest.mqtt import DEVICE_TOPICS, Message, MqttSource, make_client, subscription
from storage import assignments, migrate
from storage import policy as policy_store
from storage.live import LiveAlerts
from storage.policy import PostgresPolicy
from storage.ward import PostgresWard
from wardwatch import derive as derive_jobs
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
    notify_group_wait: timedelta = DEFAULT_GROUP_WAIT  # a patient's alerts in one message
    derive_tick_s: float = 60.0  # breathing rate from PPG, a minute at a time
    # Motion minutes settle an hour behind the data (derive.MOTION_LAG: a non-wear window is an
    # hour long), and each run re-reads that hour: every 15 minutes costs a twelfth of every
    # minute (docs/benchmarks.md) and delays activity, wear and sleep by at most 15 more minutes.
    motion_tick_s: float = 900.0
    sensor_tick_s: float = 300.0  # stuck or noisy sensors, judged over the last hour
    risk_tick_s: float = 300.0  # days complete once a day; a tick catches them within minutes
    # Raw waveforms are kept a week once derived (a clinician may want to see an ECG from the
    # days before an alert); message numbers a day, far beyond the gap check's hour.
    waveform_retention: timedelta = timedelta(days=7)
    seq_retention: timedelta = timedelta(days=1)
    retention_tick_s: float = 3600.0
    freshness: timedelta = timedelta(minutes=60)
    client_id: str | None = None  # overrides Settings.client_id (tests)
    max_batch: int = 2000
    # WARDWATCH_POLICY_FILE's text: stored at start as the next policy version (unless it is the
    # version in force). Until a policy is stored, the timings above are the policy.
    policy_text: str | None = None
    policy_source: str = "policy.yaml"  # names the text in error messages


def available_channels(settings: Settings) -> frozenset[str]:
    """The channels this service can deliver through; a policy naming another is refused."""
    return frozenset(
        {"log"}
        | ({"webhook"} if settings.webhook_url else set())
        | ({"email"} if settings.smtp else set())
        | ({"mqtt"} if settings.alert_topic else set())
    )


def build_channels(
    settings: Settings, options: Options, clock: Callable[[], datetime] = utc_now
) -> dict[str, Channel]:
    """The channels the settings switch on (``log`` always); ``start_channels`` connects them."""
    channels: dict[str, Channel] = {"log": LogChannel()}
    if settings.webhook_url:
        channels["webhook"] = WebhookChannel(
            settings.webhook_url, secret=settings.webhook_secret, clock=clock
        )
    if settings.smtp is not None:
        smtp = settings.smtp
        # By severity, whatever a ward's policy calls its tiers: technical notices go to the
        # device team's mailbox, never to clinicians'.
        login = None if smtp.username is None else (smtp.username, smtp.password or "")
        channels["email"] = SmtpChannel(
            smtp.host, smtp.port, sender=smtp.sender, to={}, clinical_to=smtp.to,
            technical_to=smtp.device_team_to, starttls=smtp.starttls, login=login,
            tls=ssl.create_default_context(cafile=smtp.ca_file), clock=clock,
        )  # fmt: skip
    if settings.alert_topic is not None:
        endpoint = settings.mqtt
        client_id = f"{options.client_id or settings.client_id}-alerts"
        channels["mqtt"] = MqttChannel(
            make_client(endpoint, client_id),
            endpoint.host,
            endpoint.port,
            topic=settings.alert_topic,
        )
    return channels


def start_channels(channels: dict[str, Channel], stack: contextlib.ExitStack) -> None:
    """Connect the channels that hold a connection; close them when the stack unwinds."""
    for channel in channels.values():
        if isinstance(channel, MqttChannel):
            channel.start()
        if isinstance(channel, MqttChannel | WebhookChannel):
            stack.callback(channel.close)


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
    """Run ingest, scoring, alerting, escalation and the dashboard until the context exits.

    Raises ``PolicyError`` (naming the line) if ``options.policy_text`` is not a valid policy.
    """
    migrate.upgrade(settings.database_url)
    if options.policy_text is not None:
        with psycopg.connect(settings.database_url) as conn:
            stored = policy_store.save(
                conn,
                options.policy_text,
                set_by=f"policy file {options.policy_source}",
                at=clock(),
                source=options.policy_source,
                channels=available_channels(settings),
            )
        log.info("alerting policy version %d in force", stored.version)
    registry = CollectorRegistry()
    metrics = pipe.PipelineMetrics.create(registry)
    sent = jobs.make_sent_counter(registry)
    dead_lettered = jobs.make_dead_letter_counter(registry)
    pruned = jobs.make_pruned_counter(registry)
    channels = build_channels(settings, options, clock)
    channel_names = tuple(channels)
    stop = threading.Event()
    wake_dispatch = threading.Event()

    with contextlib.ExitStack() as stack:
        pool: ConnectionPool[psycopg.Connection[tuple[object, ...]]] = ConnectionPool(
            settings.database_url, min_size=1, max_size=4, open=True, name="wardwatch"
        )
        stack.callback(pool.close)
        start_channels(channels, stack)

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
            'Devices assigned to a patient now (as of the last "no data" check).',
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
                wake_dispatch.set()

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

        policies = policy_store.PolicyCache()
        unstored = WardPolicy(
            escalation=options.escalation,
            channels=channel_names,
            thresholds=Thresholds(
                no_data_silent_after=options.silent_after,
                message_gap_window=options.gap_window,
                message_gap_grace=options.gap_grace,
            ),
        )

        def in_force(conn: psycopg.Connection[tuple[object, ...]]) -> Policy:
            """The stored policy (each ward its own), else one built from Options."""
            return policies.get(conn) or Policy(default=unstored)

        def escalation(conn: psycopg.Connection[tuple[object, ...]]) -> None:
            jobs.escalate(conn, now=clock(), policy=in_force(conn))

        def silence(conn: psycopg.Connection[tuple[object, ...]]) -> None:
            enrolled.set(len(assignments.current_contacts(conn, clock())))
            jobs.check_silence(
                conn, now=clock(), policy=in_force(conn), raised=metrics.alerts_raised
            )

        def gaps(conn: psycopg.Connection[tuple[object, ...]]) -> None:
            jobs.check_gaps(conn, now=clock(), policy=in_force(conn), raised=metrics.alerts_raised)

        # Where notifications link to; with port 0 the real address is known once the server is
        # up, so it is filled in then (until then the configured one).
        links = [settings.dashboard_url]

        def send(conn: psycopg.Connection[tuple[object, ...]]) -> None:
            jobs.dispatch(
                conn,
                now=clock(),
                channels=channels,
                sent=sent,
                dead_lettered=dead_lettered,
                public_url=links[0],
                group_wait=options.notify_group_wait,
            )

        def device_health(conn: psycopg.Connection[tuple[object, ...]]) -> None:
            jobs.check_devices(
                conn, now=clock(), policy=in_force(conn), raised=metrics.alerts_raised
            )

        def sensors(conn: psycopg.Connection[tuple[object, ...]]) -> None:
            jobs.check_sensors(
                conn, now=clock(), policy=in_force(conn), raised=metrics.alerts_raised
            )

        def derive_each(
            conn: psycopg.Connection[tuple[object, ...]], fns: Sequence[Callable[..., int]]
        ) -> None:
            for fn in fns:
                try:
                    fn(conn, now=clock())
                except psycopg.Error:
                    raise  # the database: the scheduler's wrapper logs it and the tick is retried
                except Exception:
                    # A fault in one derivation must not starve the others (nor ingest): logged
                    # with its traceback, and the next tick tries again.
                    log.exception("%s failed; the other derive jobs go on", fn.__name__)
                    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                        conn.rollback()

        def derive(conn: psycopg.Connection[tuple[object, ...]]) -> None:
            derive_each(conn, (derive_jobs.derive_resp_rate, derive_jobs.derive_beats,
                               derive_jobs.derive_pulse))  # fmt: skip

        def motion(conn: psycopg.Connection[tuple[object, ...]]) -> None:
            derive_each(conn, (derive_jobs.derive_motion,))

        def retention(conn: psycopg.Connection[tuple[object, ...]]) -> None:
            jobs.prune_raw(
                conn, now=clock(), waveforms_for=options.waveform_retention,
                seq_for=options.seq_retention, pruned=pruned,
            )  # fmt: skip

        def risk(conn: psycopg.Connection[tuple[object, ...]]) -> None:
            jobs.assess_risk(conn, now=clock(), policy=in_force(conn), raised=metrics.alerts_raised)

        for fn, every in (
            (escalation, options.escalation_tick_s),
            (silence, options.silence_tick_s),
            (gaps, options.silence_tick_s),
            (device_health, options.silence_tick_s),
            (derive, options.derive_tick_s),
            (motion, options.motion_tick_s),
            (sensors, options.sensor_tick_s),
            (risk, options.risk_tick_s),
            (retention, options.retention_tick_s),
        ):
            scheduler.add_job(
                job(fn), "interval", seconds=every, id=fn.__name__, max_instances=1, coalesce=True
            )
        scheduler.start()
        stack.callback(scheduler.shutdown, wait=True)

        # Notifications leave as soon as the batch that owed them commits (ingest wakes the
        # dispatcher), not at the next tick: the tick alone cost up to a second per page
        # (docs/benchmarks.md, alert latency). The tick still catches what the jobs owe.
        def dispatcher() -> None:
            run_send = job(send)
            while not stop.is_set():
                wake_dispatch.wait(options.dispatch_tick_s)
                wake_dispatch.clear()
                if not stop.is_set():
                    run_send()

        sender = threading.Thread(target=dispatcher, name="dispatch", daemon=True)
        sender.start()
        stack.callback(sender.join, 30)

        def stop_dispatcher() -> None:  # runs before the join above: stop, then wake
            stop.set()
            wake_dispatch.set()

        stack.callback(stop_dispatcher)

        # Alert changes pushed to the page as they commit, from whichever worker (storage.live).
        live = LiveAlerts(settings.database_url, pool)
        live.start()
        stack.callback(live.close)
        Gauge(
            "wardwatch_live_listening",
            "1 while the dashboard hears alert changes from PostgreSQL (LISTEN).",
            registry=registry,
        ).set_function(lambda: float(live.listening))
        app = create_app(
            ward,
            registry=registry,
            clock=clock,
            policy=PostgresPolicy(pool, channels=available_channels(settings)),
            live=live,
        )
        server = serve_in_thread(app, settings.http_host, settings.http_port)
        if settings.public_url is None:
            links[0] = server.url
        stack.callback(server.stop)
        stack.callback(live.close)  # runs first: open streams end, so the server can stop
        log.info("dashboard at %s", server.url)
        yield Running(server.url, registry, stop.set, source)
