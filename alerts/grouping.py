"""Which owed notifications go out now, together, and which are muted: pure functions of now.

Alertmanager's model, for nurses: notifications for one patient, recipient and channel that fall
due within ``group_wait`` of the first make one message, not one page per rule; a patient's more
severe open clinical alert inhibits the notifications of that patient's less severe ones (they
are recorded as inhibited, never silently dropped); technical alerts go to the device team and
neither inhibit nor are inhibited by clinical ones. A failed delivery is retried with
exponential backoff and dead-lettered after the last attempt.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.model import Alert, AlertState, Rule, Severity

#: How long the first of a patient's owed notifications waits for others of the same wave.
#: Zero: the rules one batch fires for a patient are owed together, at the same instant, so they
#: are already pending together when the dispatcher runs and go out as one message without any
#: wait. A wait only delays the first page: Alertmanager's 30 s (or 10 s) put the 99th percentile
#: of reading-to-page latency at 11 s against a 1 s target (docs/benchmarks.md). Raise it only
#: for a channel whose readers prefer fewer, later messages.
DEFAULT_GROUP_WAIT = timedelta(0)


@dataclass(frozen=True, slots=True)
class Pending:
    """One outbox row that is due, with what grouping, inhibition and the message need."""

    id: int
    alert_id: int
    channel: str
    recipient: str
    body: str  # one line about this alert, written when the notification was owed
    attempts: int
    created_at: datetime
    patient_id: str
    ward: str
    bed: str | None
    rule: Rule
    severity: Severity  # the alert's severity now (it may have worsened since)
    # Set once the row was handed to a channel: a resend (after a crash mid-send, or a retry)
    # goes out again under the same id and only with the rows it went with, so a receiver
    # can recognise the repeat (at-least-once delivery with a dedup key).
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class Group:
    """Notifications for one patient, recipient and channel, sent as one message."""

    patient_id: str
    recipient: str
    channel: str
    items: tuple[Pending, ...]  # most severe first, then oldest

    @property
    def severity(self) -> Severity:
        return self.items[0].severity

    @property
    def message_id(self) -> str:
        """The receiver's dedup key: kept from an earlier send, else made from the row ids."""
        kept = self.items[0].message_id
        return kept if kept is not None else "wardwatch-n" + "-".join(map(str, sorted(self.ids)))

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(p.id for p in self.items)

    @property
    def attempts(self) -> int:
        """Attempts so far: the most tried member decides when the group gives up."""
        return max(p.attempts for p in self.items)


@dataclass(frozen=True, slots=True)
class Inhibited:
    """``pending`` is muted because the same patient has the more severe alert ``by``."""

    pending: Pending
    by: Alert


@dataclass(frozen=True, slots=True)
class Plan:
    send: tuple[Group, ...]
    inhibited: tuple[Inhibited, ...]
    waiting: tuple[Pending, ...]  # their group's wait is not over yet


def inhibitor(pending: Pending, open_alerts: Iterable[Alert]) -> Alert | None:
    """The patient's most severe unresolved clinical alert that outranks ``pending``'s, if any.

    An acknowledged alert still inhibits: someone is already at the patient for something worse.
    """
    if pending.severity is Severity.TECHNICAL:
        return None
    stronger = [
        a
        for a in open_alerts
        if a.patient_id == pending.patient_id
        and a.id != pending.alert_id
        and a.state is not AlertState.RESOLVED
        and a.severity is not Severity.TECHNICAL
        and a.severity > pending.severity
    ]
    return max(stronger, key=lambda a: (a.severity, -a.id), default=None)


def plan(
    pending: Iterable[Pending],
    open_alerts: Iterable[Alert],
    *,
    now: datetime,
    group_wait: timedelta = DEFAULT_GROUP_WAIT,
) -> Plan:
    """Split due notifications into groups to send now, inhibited ones, and ones still waiting.

    A group is ready ``group_wait`` after its oldest member was owed (a retry, being older, goes
    at once). Inhibition is decided before grouping, so a muted alert never rides along in the
    message of the alert that mutes it.
    """
    alerts = tuple(open_alerts)
    inhibited: list[Inhibited] = []
    groups: dict[tuple[str, str, str, str | None], list[Pending]] = {}
    for p in pending:
        by = inhibitor(p, alerts)
        if by is not None:
            inhibited.append(Inhibited(p, by))
            continue
        key = (p.patient_id, p.recipient, p.channel, p.message_id)
        groups.setdefault(key, []).append(p)
    send: list[Group] = []
    waiting: list[Pending] = []
    for (patient_id, recipient, channel, _), members in groups.items():
        if now < min(p.created_at for p in members) + group_wait:
            waiting.extend(members)
            continue
        items = sorted(members, key=lambda p: (-p.severity, p.created_at, p.id))
        send.append(Group(patient_id, recipient, channel, tuple(items)))
    send.sort(key=lambda g: (-g.severity, g.items[0].created_at))
    return Plan(tuple(send), tuple(inhibited), tuple(waiting))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff for recoverable failures; a dead letter after the last attempt.

    The defaults (5 s doubling, capped at 5 min, 10 attempts) keep trying for about 20 minutes:
    long enough to ride out a gateway restart, short enough that the dead letter (an alert event
    and a metric) is seen while the alert still matters.
    """

    first_delay: timedelta = timedelta(seconds=5)
    max_delay: timedelta = timedelta(minutes=5)
    max_attempts: int = 10

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.first_delay <= timedelta(0) or self.max_delay < self.first_delay:
            raise ValueError("delays must be positive, max_delay at least first_delay")

    def next_attempt(self, attempts: int, now: datetime) -> datetime | None:
        """When to try again after ``attempts`` failed attempts; None: dead-letter it now."""
        if attempts >= self.max_attempts:
            return None
        # The exponent is bounded so a generous max_attempts cannot overflow timedelta.
        delay = self.first_delay * (1 << min(max(attempts - 1, 0), 30))
        return now + min(delay, self.max_delay)
