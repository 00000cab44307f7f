"""Per-device flood control: a token bucket per device, on the messages' receipt times.

A device (or a compromised credential) publishing far faster than any wearable does must not
crowd out the rest of the ward. Messages over the limit are quarantined, not dropped, so that
`wardwatch quarantine retry` can still ingest them once the flood is understood.
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
        self._buckets: dict[str, tuple[float, int]] = {}  # device → (tokens, last µs)

    def snapshot(self) -> dict[str, tuple[float, int]]:
        """The buckets as they are, to restore if the batch that spent tokens is rolled back."""
        return dict(self._buckets)

    def restore(self, snapshot: dict[str, tuple[float, int]]) -> None:
        self._buckets = dict(snapshot)

    def allow(self, device_id: str, at_us: int) -> bool:
        tokens, last = self._buckets.get(device_id, (self.limit.burst, at_us))
        elapsed_s = max(0, at_us - last) / 1e6
        tokens = min(self.limit.burst, tokens + elapsed_s * self.limit.per_second)
        allowed = tokens >= 1.0
        self._buckets[device_id] = (tokens - 1.0 if allowed else tokens, max(last, at_us))
        return allowed
