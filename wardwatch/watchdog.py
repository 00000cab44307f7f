"""``wardwatch watchdog``: a separate process that raises the alarm when wardwatch stalls.

It reads the service's ``/metrics`` (Prometheus text) every few seconds and, through channels
built from its own settings, tells the people who run wardwatch when the service stops answering,
loses its broker or database, or stops processing while devices are enrolled. It needs neither
the broker nor the database, and it runs as its own process (its own systemd unit or container),
so a service that has hung or died cannot take its alarm down with it. The decisions are pure
(``alerts.watchdog``); this module only looks and sends.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import httpx
from prometheus_client.parser import text_string_to_metric_families

from alerts.notify import Channel, Notice, NotifyError
from alerts.watchdog import Observation, Watch, stall_reasons

log = logging.getLogger("wardwatch.watchdog")

#: The metric names the service exports for its watchdog (wardwatch/service.py): a contract.
LAST_BATCH = "wardwatch_last_batch_timestamp_seconds"
SUBSCRIBED = "wardwatch_mqtt_subscribed"
DATABASE_UP = "wardwatch_database_up"
ENROLLED = "wardwatch_devices_enrolled"
RECIPIENT = "wardwatch operators"


def observe(client: httpx.Client, url: str, now: datetime) -> Observation:
    """One look at the service's metrics; never raises (an unreachable service is a finding)."""
    try:
        response = client.get(url)
        response.raise_for_status()
        values = {
            sample.name: sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
        }
    except (httpx.HTTPError, ValueError) as exc:
        return Observation(now, reachable=False, error=type(exc).__name__)

    def flag(name: str) -> bool | None:
        return None if name not in values else values[name] >= 1.0

    last = values.get(LAST_BATCH)
    return Observation(
        now,
        reachable=True,
        last_batch_at=datetime.fromtimestamp(last, UTC) if last else None,
        broker_connected=flag(SUBSCRIBED),
        database_up=flag(DATABASE_UP),
        devices_enrolled=int(values[ENROLLED]) if ENROLLED in values else None,
    )


def send(channels: Sequence[Channel], text: str) -> int:
    """Send through every channel; one that fails does not stop the others. Returns successes."""
    delivered = 0
    for channel in channels:
        try:
            channel.send(Notice(0, RECIPIENT, text))
        except NotifyError as exc:
            log.error("watchdog notice via %s failed: %s", channel.name, exc)
            continue
        delivered += 1
    return delivered


def run(
    url: str,
    channels: Sequence[Channel],
    *,
    interval: timedelta = timedelta(seconds=15),
    no_batch_after: timedelta = timedelta(minutes=5),
    watch: Watch | None = None,
    stop: threading.Event,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    client: httpx.Client | None = None,
) -> None:
    """Look every ``interval`` until ``stop`` is set, sending what ``Watch.step`` decides."""
    state = watch or Watch()
    http = client or httpx.Client(timeout=5.0)
    try:
        while not stop.is_set():
            now = clock()
            observation = observe(http, url, now)
            state, notice = state.step(
                stall_reasons(observation, no_batch_after=no_batch_after), now
            )
            if notice is not None:
                log.warning("watchdog: %s", notice.kind)
                send(channels, notice.text)
            stop.wait(interval.total_seconds())
    finally:
        if client is None:
            http.close()
