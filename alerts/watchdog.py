"""Who watches wardwatch: when the alarm path itself fails, that must raise an alarm.

IEC 60601-1-8 asks of a distributed alarm system that a failure of the path that carries alarms
is itself signalled. wardwatch's path is broker → ingest → PostgreSQL → outbox → channels; if any
part stalls, patient alerts silently stop. The watchdog observes the service from outside (its
``/metrics``), decides here, purely, whether it has stalled, and tells people through a channel
that needs neither the broker nor the database (``wardwatch watchdog``, docs/alerts.md).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Observation:
    """What one look at the service showed. ``None`` fields were not reported."""

    at: datetime
    reachable: bool  # the metrics endpoint answered
    error: str | None = None  # why not, if it did not
    last_batch_at: datetime | None = None  # the last batch ingest committed
    broker_connected: bool | None = None
    database_up: bool | None = None
    devices_enrolled: int | None = None


def stall_reasons(o: Observation, *, no_batch_after: timedelta) -> tuple[str, ...]:
    """Why the service cannot be trusted to raise patient alerts right now (empty: it can).

    "No batch for a while" only counts while devices are enrolled: an empty ward is quiet.
    """
    if not o.reachable:
        return (f"wardwatch not answering ({o.error or 'no response'})",)
    reasons = []
    if o.database_up is False:
        reasons.append("database unreachable")
    if o.broker_connected is False:
        reasons.append("not connected to the MQTT broker")
    if o.devices_enrolled and o.last_batch_at is not None:
        idle = o.at - o.last_batch_at
        if idle >= no_batch_after:
            reasons.append(
                f"no batch processed for {int(idle.total_seconds() // 60)} min while "
                f"{o.devices_enrolled} devices are enrolled"
            )
    elif o.devices_enrolled and o.last_batch_at is None and o.broker_connected is not None:
        reasons.append(
            f"no batch processed since start while {o.devices_enrolled} devices are enrolled"
        )
    return tuple(reasons)


@dataclass(frozen=True, slots=True)
class Notice:
    """Something to send: the first alarm, a reminder, or the all-clear."""

    kind: str  # "stalled", "still stalled", "recovered"
    text: str


@dataclass(frozen=True, slots=True)
class Watch:
    """The watchdog's memory between looks: since when it has seen trouble, and what it said.

    ``step`` is a pure function of this state, the reasons and the time: an alarm is sent only
    after the trouble has lasted ``for_`` (one failed scrape is not a stall), repeated every
    ``repeat_every`` while it lasts, and followed by an all-clear when it ends.
    """

    for_: timedelta = timedelta(minutes=2)
    repeat_every: timedelta = timedelta(minutes=15)
    trouble_since: datetime | None = None
    alarmed_at: datetime | None = None
    last_sent_at: datetime | None = None

    def step(self, reasons: tuple[str, ...], now: datetime) -> tuple[Watch, Notice | None]:
        if not reasons:
            if self.alarmed_at is not None:
                lasted = int((now - self.alarmed_at).total_seconds() // 60)
                cleared = replace(self, trouble_since=None, alarmed_at=None, last_sent_at=None)
                return cleared, Notice("recovered", f"wardwatch recovered after {lasted} min")
            return replace(self, trouble_since=None), None
        since = self.trouble_since or now
        text = "wardwatch stalled: " + "; ".join(reasons)
        if self.alarmed_at is None:
            if now - since < self.for_:
                return replace(self, trouble_since=since), None
            return replace(self, trouble_since=since, alarmed_at=now, last_sent_at=now), Notice(
                "stalled", text + " (patient alerts may not be reaching anyone)"
            )
        if self.last_sent_at is not None and now - self.last_sent_at >= self.repeat_every:
            return replace(self, last_sent_at=now), Notice("still stalled", text)
        return self, None
