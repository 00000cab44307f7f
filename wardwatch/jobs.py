"""The periodic work APScheduler ticks: escalation, the "no data" rule, sending notifications.

Each job is a plain function of a connection and ``now``; the state lives in PostgreSQL, so a job
that runs twice, or after a restart, neither drops nor repeats anything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

import psycopg
from prometheus_client import CollectorRegistry, Counter

from alerts.escalation import EscalationPolicy
from alerts.lifecycle import decide
from alerts.model import Condition, Rule
from alerts.notify import Channel, Notice, NotifyError
from alerts.rules import gap_condition, no_data_condition
from storage import alerts as alert_store
from storage import assignments, devices

log = logging.getLogger(__name__)
_SILENCE_LOCK = 0x6E6F6461  # "noda": serialises the "no data" check across workers
_GAP_LOCK = 0x67617073  # "gaps"
Conn = psycopg.Connection[tuple[object, ...]]


def escalate(
    conn: Conn, *, now: datetime, policy: EscalationPolicy, channels: tuple[str, ...]
) -> int:
    with conn.transaction():
        return len(alert_store.escalate_due(conn, now=now, policy=policy, channels=channels))


def check_silence(
    conn: Conn,
    *,
    now: datetime,
    silent_after: timedelta,
    policy: EscalationPolicy,
    channels: tuple[str, ...],
    raised: Counter | None = None,
) -> int:
    """Open, or resolve, the "no data" alert of every currently assigned device."""

    def condition(c: assignments.Contact) -> Condition | None:
        return no_data_condition(
            c.patient_id,
            c.device_id,
            last_received=c.last_received_at,
            enrolled_at=c.valid_from,
            now=now,
            silent_after=silent_after,
        )

    return _device_rule(conn, Rule.NO_DATA, condition, _SILENCE_LOCK, now, policy, channels, raised)


def check_gaps(
    conn: Conn,
    *,
    now: datetime,
    window: timedelta,
    grace: timedelta,
    policy: EscalationPolicy,
    channels: tuple[str, ...],
    raised: Counter | None = None,
) -> int:
    """Raise, or resolve, the "message gap" alert of every assigned device from its seq numbers.

    A gap counts once the message after it has waited ``grace`` for reordered ones to arrive; it
    keeps the alert open while it lies within ``window``.
    """
    found: dict[str, list[tuple[str, int, int]]] = {}
    with conn.transaction():
        for device, stream, first, last in devices.find_gaps(
            conn, since=now - window, grace_until=now - grace
        ):
            found.setdefault(device, []).append((stream, first, last))

    def condition(c: assignments.Contact) -> Condition | None:
        return gap_condition(c.patient_id, c.device_id, found.get(c.device_id, []))

    return _device_rule(conn, Rule.MESSAGE_GAP, condition, _GAP_LOCK, now, policy, channels, raised)


def _device_rule(
    conn: Conn,
    rule: Rule,
    condition: Callable[[assignments.Contact], Condition | None],
    lock: int,
    now: datetime,
    policy: EscalationPolicy,
    channels: tuple[str, ...],
    raised: Counter | None,
) -> int:
    """Bring one technical rule's alerts in line for every currently assigned device.

    The cure of a device problem is the device working again: alerts resolve at once, no
    hold-down. One worker runs a rule at a time; another worker's tick simply skips.
    """
    changes = 0
    with conn.transaction():
        got = conn.execute("select pg_try_advisory_xact_lock(%s)", (lock,)).fetchone()
        if not (got and got[0]):
            return 0
        contacts = assignments.current_contacts(conn, now)
        current = alert_store.open_alerts(conn, {c.patient_id for c in contacts})
        for c in contacts:
            transition = decide(
                current.get((c.patient_id, rule)), condition(c), at=now, hold_down=timedelta(0)
            )
            if transition is None:
                continue
            outcome = alert_store.apply(
                conn, transition, ward=c.ward, now=now, policy=policy, channels=channels
            )
            if raised is not None and outcome.kind == "fired":
                raised.labels(severity=outcome.severity.label).inc()
            changes += 1
    return changes


def make_sent_counter(registry: CollectorRegistry) -> Counter:
    return Counter(
        "wardwatch_notifications_sent",
        "Notifications delivered, by channel.",
        ["channel"],
        registry=registry,
    )


def dispatch(conn: Conn, *, now: datetime, channels: Mapping[str, Channel], sent: Counter) -> int:
    """Send pending notifications from the outbox; record each outcome in the alert's history."""
    delivered = 0
    with conn.transaction():
        for n in alert_store.claim_pending(conn):
            channel = channels.get(n.channel)
            if channel is None:
                alert_store.record_delivery(
                    conn, n, now=now, ok=False, outcome=f"no channel {n.channel!r} configured"
                )
                continue
            try:
                outcome = channel.send(Notice(n.alert_id, n.recipient, n.body))
            except NotifyError as exc:
                log.warning("notification %d via %s failed: %s", n.id, n.channel, exc)
                alert_store.record_delivery(
                    conn, n, now=now, ok=False, outcome=str(exc), give_up=not exc.recoverable
                )
                continue
            alert_store.record_delivery(conn, n, now=now, ok=True, outcome=outcome)
            sent.labels(channel=n.channel).inc()
            delivered += 1
    return delivered
