"""The periodic work APScheduler ticks: escalation, the "no data" rule, sending notifications.

Each job is a plain function of a connection and ``now``; the state lives in PostgreSQL, so a job
that runs twice, or after a restart, neither drops nor repeats anything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import psycopg
from prometheus_client import CollectorRegistry, Counter

from alerts import content, grouping
from alerts.grouping import DEFAULT_GROUP_WAIT, RetryPolicy
from alerts.model import Condition, Rule
from alerts.notify import Channel, Notice, NotifyError
from alerts.policy import Policy, WardPolicy
from alerts.rules import (
    SENSOR_FAULTS,
    SENSOR_METRICS,
    battery_condition,
    battery_critical_condition,
    clock_skew_condition,
    gap_condition,
    no_data_condition,
    not_worn_condition,
    risk_condition,
    sensor_condition,
)
from signals.daily import daily_features, day_of, day_window
from signals.quality import Quality, label_windows
from signals.risk import PatientRisk
from signals.vitals import Metric
from storage import alerts as alert_store
from storage import assignments, devices, retention
from storage import policy as policy_store
from storage import risk as risk_store

log = logging.getLogger(__name__)
_SILENCE_LOCK = 0x6E6F6461  # "noda": serialises the "no data" check across workers
_GAP_LOCK = 0x67617073  # "gaps"
_DEVICE_LOCK = 0x64657663  # "devc"
_SENSOR_LOCK = 0x73656E73  # "sens"
#: How much of each vital sign a sensor check looks at: an hour, the stuck-run length for HR.
SENSOR_SPAN = timedelta(hours=1)
_RISK_LOCK = 0x7269736B  # "risk": with the patient's hash, one worker scores a patient at a time
#: A day is scored once the patient's readings have reached this far past its end (event time),
#: so that a watch syncing its buffer an hour late still lands in the right day.
RISK_DAY_GRACE = timedelta(hours=2)
#: Days scored per patient per tick: a patient enrolled with weeks of history catches up over a
#: few ticks instead of holding one transaction for minutes.
RISK_DAYS_PER_TICK = 7
Conn = psycopg.Connection[tuple[object, ...]]


def escalate(conn: Conn, *, now: datetime, policy: Policy) -> int:
    with conn.transaction():
        return len(alert_store.escalate_due(conn, now=now, policy=policy))


def check_silence(
    conn: Conn, *, now: datetime, policy: Policy, raised: Counter | None = None
) -> int:
    """Open, or resolve, the "no data" alert of every currently assigned device."""

    def condition(c: assignments.Contact) -> Condition | None:
        return no_data_condition(
            c.patient_id,
            c.device_id,
            last_received=c.last_received_at,
            enrolled_at=c.valid_from,
            now=now,
            silent_after=policy.for_ward(c.ward).thresholds.no_data_silent_after,
        )

    return _device_rules(conn, [(Rule.NO_DATA, condition)], _SILENCE_LOCK, now, policy, raised)


def check_gaps(conn: Conn, *, now: datetime, policy: Policy, raised: Counter | None = None) -> int:
    """Raise, or resolve, the "message gap" alert of every assigned device from its seq numbers.

    A gap counts once the message after it has waited the grace for reordered ones to arrive;
    it keeps the alert open while it lies within the window (the default ward's thresholds:
    one query finds every device's gaps).
    """
    limits = policy.default.thresholds
    found: dict[str, list[tuple[str, int, int]]] = {}
    with conn.transaction():
        for device, stream, first, last in devices.find_gaps(
            conn,
            since=now - limits.message_gap_window,
            grace_until=now - limits.message_gap_grace,
        ):
            found.setdefault(device, []).append((stream, first, last))

    def condition(c: assignments.Contact) -> Condition | None:
        return gap_condition(c.patient_id, c.device_id, found.get(c.device_id, []))

    return _device_rules(conn, [(Rule.MESSAGE_GAP, condition)], _GAP_LOCK, now, policy, raised)


def check_devices(
    conn: Conn, *, now: datetime, policy: Policy, raised: Counter | None = None
) -> int:
    """Battery low and critical, not worn, clock skew: what each assigned device says of itself.

    Each device is judged by its patient's ward's thresholds.
    """
    with conn.transaction():
        contacts = assignments.current_contacts(conn, now)
        health = devices.health(conn, [c.device_id for c in contacts], now=now)

    def judge(c: assignments.Contact, rule: Rule) -> Condition | None:
        h = health.get(c.device_id)
        if h is None:
            return None
        t = policy.for_ward(c.ward).thresholds
        pid, dev = c.patient_id, c.device_id
        match rule:
            case Rule.BATTERY:
                return battery_condition(pid, dev, h, low_pct=t.battery_low_pct,
                                         critical_pct=t.battery_critical_pct)  # fmt: skip
            case Rule.BATTERY_CRITICAL:
                return battery_critical_condition(pid, dev, h, critical_pct=t.battery_critical_pct)
            case Rule.NOT_WORN:
                return not_worn_condition(pid, dev, h, after=t.not_worn_after)
            case _:
                return clock_skew_condition(
                    pid, dev, h, tolerance_s=t.clock_skew_tolerance.total_seconds()
                )

    rules = (Rule.BATTERY, Rule.BATTERY_CRITICAL, Rule.NOT_WORN, Rule.CLOCK_SKEW)
    return _device_rules(
        conn,
        [(r, lambda c, r=r: judge(c, r)) for r in rules],  # type: ignore[misc]
        _DEVICE_LOCK,
        now,
        policy,
        raised,
    )


def check_sensors(
    conn: Conn, *, now: datetime, policy: Policy, raised: Counter | None = None
) -> int:
    """Label each assigned device's last hour of each vital sign (signals.quality); a stuck or
    noisy sensor is recorded (ingest then scores it as not measured) and raises the technical
    "sensor" alert, resolved when the sensor recovers. So does a streamed ECG or PPG in which
    the derive jobs found no heartbeat for an hour (``devices.unusable_heart_signal``).

    One query reads every assigned device's last hour (``devices.recent_series_many``, the same
    rows as ``recent_series`` per device); each device is then labelled here, one at a time.
    """
    found: dict[str, dict[Metric, Quality]] = {}
    with conn.transaction():
        contacts = assignments.current_contacts(conn, now)
        recent = devices.recent_series_many(
            conn, [c.device_id for c in contacts], SENSOR_METRICS, span=SENSOR_SPAN
        )
        for c in contacts:
            labels: dict[Metric, Quality] = {}
            for metric, (ts, values) in recent[c.device_id].items():
                if ts.size == 0:
                    continue
                start = int(ts.max()) + 1 - int(SENSOR_SPAN.total_seconds() * 1e6)
                window = label_windows(
                    ts, values, metric=metric, start_us=start,
                    window_s=SENSOR_SPAN.total_seconds(), n_windows=1,
                )  # fmt: skip
                labels[metric] = Quality(int(window[0]))
            found[c.device_id] = labels
            bad = {m: q.label for m, q in labels.items() if q in SENSOR_FAULTS}
            devices.set_sensor_faults(conn, c.patient_id, c.device_id, bad, now=now)
        devices.clear_sensor_faults_except(conn, [(c.patient_id, c.device_id) for c in contacts])
        no_beats = devices.unusable_heart_signal(
            conn, [c.device_id for c in contacts], now=now, span=SENSOR_SPAN
        )

    def condition(c: assignments.Contact) -> Condition | None:
        kind = no_beats.get(c.device_id)
        return sensor_condition(c.patient_id, c.device_id, found.get(c.device_id, {}),
                                no_beats_in=None if kind is None else kind.value)  # fmt: skip

    return _device_rules(conn, [(Rule.SENSOR, condition)], _SENSOR_LOCK, now, policy, raised)


def _device_rules(
    conn: Conn,
    rules: Sequence[tuple[Rule, Callable[[assignments.Contact], Condition | None]]],
    lock: int,
    now: datetime,
    policy: Policy,
    raised: Counter | None,
) -> int:
    """Bring technical rules' alerts in line for every currently assigned device.

    The ward's policy says whether each rule is on and how long a condition must last; by
    default a device problem resolves as soon as the device works again (no hold-down). One
    worker runs a set of rules at a time; another worker's tick simply skips.
    """
    changes = 0
    with conn.transaction():
        got = conn.execute("select pg_try_advisory_xact_lock(%s)", (lock,)).fetchone()
        if not (got and got[0]):
            return 0
        contacts = assignments.current_contacts(conn, now)
        patients = {c.patient_id for c in contacts}
        current = alert_store.open_alerts(conn, patients)
        waiting = alert_store.pending(conn, patients)
        for c in contacts:
            for rule, condition in rules:
                outcome = alert_store.evaluate(
                    conn,
                    patient_id=c.patient_id,
                    ward=c.ward,
                    rule=rule,
                    condition=condition(c),
                    current=current.get((c.patient_id, rule)),
                    pending_since=waiting.get((c.patient_id, rule)),
                    at=now,
                    now=now,
                    policy=policy.for_ward(c.ward),
                )
                if outcome is None:
                    continue
                if raised is not None and outcome.kind == "fired":
                    raised.labels(severity=outcome.severity.label).inc()
                changes += 1
    return changes


def assess_risk(conn: Conn, *, now: datetime, policy: Policy, raised: Counter | None = None) -> int:
    """Score each monitored patient's completed days and raise, or resolve, the "risk" alert.

    Days are taken in order from where the patient's stored model state left off, in event time
    (a day is complete when the readings have passed its end by ``RISK_DAY_GRACE``), so a replay
    at any speed scores the same days the same way. One transaction per patient: a patient whose
    day fails to score does not hold back the others. Returns the number of days scored.
    """
    scored = 0
    patients = {c.patient_id: c.ward for c in assignments.current_contacts(conn, now)}
    for patient_id, ward in sorted(patients.items()):
        try:
            with conn.transaction():
                got = conn.execute(
                    "select pg_try_advisory_xact_lock(%s, hashtext(%s))", (_RISK_LOCK, patient_id)
                ).fetchone()
                if not (got and got[0]):
                    continue
                scored += _assess_patient(
                    conn, patient_id, ward, now, policy.for_ward(ward), raised
                )
        except psycopg.Error:
            raise  # the database: the tick is retried
        except Exception:
            log.exception("patient %s: risk not assessed; the other patients go on", patient_id)
    return scored


def _assess_patient(
    conn: Conn,
    patient_id: str,
    ward: str,
    now: datetime,
    policy: WardPolicy,
    raised: Counter | None,
) -> int:
    span = risk_store.event_span(conn, patient_id)
    if span is None:
        return 0
    first_us, last_us, offset_min = span
    last = risk_store.last_state(conn, patient_id)
    if last is None:
        model, day = PatientRisk(), day_of(first_us, offset_min)
    else:
        model, day = PatientRisk.restore(last[1]), last[0] + timedelta(days=1)
    grace_us = int(RISK_DAY_GRACE.total_seconds()) * 1_000_000
    # The CUSUM is the hysteresis (it falls a little a day): no hold-down unless a ward sets one.
    settings = replace(policy.rule(Rule.RISK), hold_down=timedelta(0))
    done = 0
    while done < RISK_DAYS_PER_TICK:
        window = day_window(day, offset_min)
        if window.end_us + grace_us > last_us:
            break
        features = daily_features(
            risk_store.readings_between(conn, patient_id, window.start_us, window.end_us), window
        )
        assessment = model.step(features)
        risk_store.save_day(conn, patient_id, day, features, assessment, model.snapshot(), now=now)
        scored, day, done = day, day + timedelta(days=1), done + 1
        pause = policy_store.pauses(conn, [patient_id]).get(patient_id)
        if pause is not None and pause.covers(_utc(window.end_us)):
            continue  # paused by a clinician: the day is scored and kept, no alert changes
        outcome = alert_store.evaluate(
            conn,
            patient_id=patient_id,
            ward=ward,
            rule=Rule.RISK,
            condition=risk_condition(patient_id, scored, assessment),
            current=alert_store.open_alerts(conn, [patient_id]).get((patient_id, Rule.RISK)),
            pending_since=alert_store.pending(conn, [patient_id]).get((patient_id, Rule.RISK)),
            at=now,
            now=now,
            policy=policy,
            settings=settings,
        )
        if raised is not None and outcome is not None and outcome.kind == "fired":
            raised.labels(severity=outcome.severity.label).inc()
    return done


def _utc(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, UTC)


def make_pruned_counter(registry: CollectorRegistry) -> Counter:
    return Counter(
        "wardwatch_rows_pruned",
        "Raw rows deleted by retention (waveform chunks, message numbers); readings never",
        ["table"],
        registry=registry,
    )


def prune_raw(
    conn: Conn,
    *,
    now: datetime,
    waveforms_for: timedelta,
    seq_for: timedelta,
    pruned: Counter | None = None,
) -> retention.Pruned:
    """Delete raw waveforms older than ``waveforms_for`` once derived, and message numbers older
    than ``seq_for`` (storage.retention); the clinical record is never pruned."""
    done = retention.prune(conn, waveforms_before=now - waveforms_for, seq_before=now - seq_for)
    if pruned is not None:
        pruned.labels(table="waveforms").inc(done.waveforms)
        pruned.labels(table="message_seq").inc(done.message_seq)
    if done.waveforms or done.message_seq:
        log.info("retention: %d waveform chunks, %d message numbers deleted",
                 done.waveforms, done.message_seq)  # fmt: skip
    return done


def make_sent_counter(registry: CollectorRegistry) -> Counter:
    return Counter(
        "wardwatch_notifications_sent",
        "Notification messages delivered, by channel (a grouped message counts once).",
        ["channel"],
        registry=registry,
    )


def make_dead_letter_counter(registry: CollectorRegistry) -> Counter:
    return Counter(
        "wardwatch_notifications_dead_lettered",
        "Notifications given up on (refused for good, or out of attempts), by channel.",
        ["channel"],
        registry=registry,
    )


#: How long a sender holds the notifications it is sending. Sends happen outside any transaction
#: (a slow channel must hold no lock that ingest or an acknowledgement needs); this lease keeps
#: other workers off those rows meanwhile, and after a crash they fall due again.
SEND_LEASE = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class _Sent:
    outcome: str


@dataclass(frozen=True, slots=True)
class _Deferred:
    """Not tried: the channel failed on an earlier message of this tick."""


_Result = _Sent | NotifyError | _Deferred


def dispatch(
    conn: Conn,
    *,
    now: datetime,
    channels: Mapping[str, Channel],
    sent: Counter,
    public_url: str,
    dead_lettered: Counter | None = None,
    group_wait: timedelta = DEFAULT_GROUP_WAIT,
    retry: RetryPolicy | None = None,
) -> int:
    """Send what the outbox owes by ``now``, grouped and inhibited; return messages delivered.

    Three short transactions, none open while a channel is talked to: claim (deciding groups and
    inhibitions, leasing what is sent), then the sends, each channel in its own thread, then one
    transaction per message recording its outcome in each alert's history.
    """
    retry = retry or RetryPolicy()
    with conn.transaction():
        due = alert_store.claim_pending(conn, now=now)
        if not due:
            return 0
        current = alert_store.open_alerts(conn, {p.patient_id for p in due}).values()
        decided = grouping.plan(due, current, now=now, group_wait=group_wait)
        for muted in decided.inhibited:
            alert_store.record_inhibited(conn, muted, now=now)
            log.info("notification %d inhibited by alert %d", muted.pending.id, muted.by.id)
        for group in decided.send:
            alert_store.postpone(conn, group.ids, now + SEND_LEASE, message_id=group.message_id)
    delivered = 0
    for group, result in _send_all(decided.send, channels, public_url):
        with conn.transaction():
            delivered += _record(conn, group, result, now, retry, sent, dead_lettered)
    return delivered


def _notice(group: grouping.Group, public_url: str) -> Notice:
    message = content.render(group, public_url=public_url)
    first = group.items[0]
    return Notice(
        first.alert_id,
        group.recipient,
        message.text,
        subject=message.subject,
        patient_id=group.patient_id,
        ward=first.ward,
        severity=group.severity,
        alert_ids=tuple(dict.fromkeys(p.alert_id for p in group.items)),
        link=message.link,
        message_id=group.message_id,
    )


def _send_channel(
    channel: Channel | None, name: str, groups: Sequence[grouping.Group], public_url: str
) -> list[tuple[grouping.Group, _Result]]:
    """Send one channel's messages in order; after a recoverable failure, defer the rest.

    A channel that is down then costs one timeout per tick, not one per message.
    """
    results: list[tuple[grouping.Group, _Result]] = []
    down = False
    for group in groups:
        if channel is None:
            results.append(
                (group, NotifyError(f"no channel {name!r} configured", recoverable=False))
            )
            continue
        if down:
            results.append((group, _Deferred()))
            continue
        try:
            results.append((group, _Sent(channel.send(_notice(group, public_url)))))
        except NotifyError as exc:
            log.warning("notifications %s via %s failed: %s", list(group.ids), name, exc)
            results.append((group, exc))
            down = exc.recoverable
        except Exception as exc:  # a channel's bug must not lose the other channels' outcomes
            # The type only: an exception's message may quote the notice (patient data).
            log.error("notifications %s via %s: %s", list(group.ids), name, type(exc).__name__)
            results.append(
                (group, NotifyError(f"{name} failed: {type(exc).__name__}", recoverable=True))
            )
            down = True
    return results


def _send_all(
    groups: Sequence[grouping.Group], channels: Mapping[str, Channel], public_url: str
) -> list[tuple[grouping.Group, _Result]]:
    """Send every group, each channel in its own thread: a channel that hangs delays no other."""
    by_channel: dict[str, list[grouping.Group]] = {}
    for group in groups:
        by_channel.setdefault(group.channel, []).append(group)
    if len(by_channel) <= 1:
        return [
            r
            for name, gs in by_channel.items()
            for r in _send_channel(channels.get(name), name, gs, public_url)
        ]
    with ThreadPoolExecutor(len(by_channel), thread_name_prefix="notify") as pool:
        futures = [
            pool.submit(_send_channel, channels.get(name), name, gs, public_url)
            for name, gs in by_channel.items()
        ]
        return [r for f in futures for r in f.result()]


def _record(
    conn: Conn,
    group: grouping.Group,
    result: _Result,
    now: datetime,
    retry: RetryPolicy,
    sent: Counter,
    dead_lettered: Counter | None,
) -> int:
    """Record one message's outcome for each notification it carried; 1 if it was delivered."""
    if isinstance(result, _Deferred):
        alert_store.postpone(conn, group.ids, now + retry.first_delay)
        return 0
    together = ""
    if len(group.items) > 1:
        others = ", ".join(str(p.id) for p in group.items)
        together = f" (one message for notifications {others})"
    for n in group.items:
        if isinstance(result, _Sent):
            alert_store.record_delivery(
                conn, n, now=now, ok=True, outcome=result.outcome + together
            )
            continue
        retry_at = retry.next_attempt(n.attempts + 1, now) if result.recoverable else None
        kind = alert_store.record_delivery(
            conn, n, now=now, ok=False, outcome=str(result), retry_at=retry_at
        )
        if kind == "notify_dead_letter":
            log.error(
                "notification %d (alert %d) via %s dead-lettered", n.id, n.alert_id, n.channel
            )
            if dead_lettered is not None:
                dead_lettered.labels(channel=n.channel).inc()
    if isinstance(result, _Sent):
        sent.labels(channel=group.channel).inc()
        return 1
    return 0
