"""Per-device flood control: a token bucket per device, refilled by the clock that moved most.

A device (or a compromised credential) publishing far faster than any wearable does must not
crowd out the rest of the ward. Messages over the limit are quarantined, not dropped, so that
`wardwatch quarantine retry` can still ingest them once the flood is understood.

Receipt time alone would mistake a backlog for a flood: while ingest or the database is down the
broker queues each device's messages at the pace the device sent them, then delivers them all
within seconds. So the bucket refills by whichever advanced more since its last message: the
receipt time, or the newest event time the device has stamped. A live flood stamped "now" is still
held to the limit; forged future stamps cannot go past the clock-skew tolerance, which the caller
caps them to.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limit:
    """Sustained messages per second per device, and how many may come at once."""

    per_second: float = 50.0
    burst: float = 500.0  # a phone app flushing its buffer after a day offline

    def describe(self) -> str:
        return f"{self.per_second:g} messages/s (bursts of {self.burst:g})"


class RateLimiter:
    """Token buckets keyed by device; time is the caller's (receipt µs), so this stays pure."""

    def __init__(self, limit: Limit) -> None:
        self.limit = limit
        # device → (tokens, last receipt µs, newest event µs)
        self._buckets: dict[str, tuple[float, int, int | None]] = {}

    def snapshot(self) -> dict[str, tuple[float, int, int | None]]:
        """The buckets as they are, to restore if the batch that spent tokens is rolled back."""
        return dict(self._buckets)

    def restore(self, snapshot: dict[str, tuple[float, int, int | None]]) -> None:
        self._buckets = dict(snapshot)

    def allow(self, device_id: str, at_us: int, event_us: int | None = None) -> bool:
        """Spend a token for a message received at ``at_us`` whose newest sample is ``event_us``."""
        tokens, last, last_event = self._buckets.get(device_id, (self.limit.burst, at_us, event_us))
        elapsed_us = at_us - last
        if event_us is not None and last_event is not None:
            elapsed_us = max(elapsed_us, event_us - last_event)
        tokens = min(self.limit.burst, tokens + max(0, elapsed_us) / 1e6 * self.limit.per_second)
        allowed = tokens >= 1.0
        newest = last_event if event_us is None else max(event_us, last_event or event_us)
        self._buckets[device_id] = (tokens - 1.0 if allowed else tokens, max(last, at_us), newest)
        return allowed
