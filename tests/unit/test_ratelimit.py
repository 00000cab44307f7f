"""The per-device token bucket: bursts pass, floods do not, devices do not share a bucket."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ingest.ratelimit import Limit, RateLimiter


def test_a_burst_passes_then_the_rate_holds() -> None:
    limiter = RateLimiter(Limit(per_second=2, burst=5))
    t = 1_000_000_000
    assert [limiter.allow("a", t) for _ in range(7)] == [True] * 5 + [False] * 2
    assert limiter.allow("b", t)  # another device has its own bucket
    assert limiter.allow("a", t + 500_000)  # half a second later: one more token
    assert not limiter.allow("a", t + 500_000)


def test_out_of_order_receipt_times_do_not_mint_tokens() -> None:
    limiter = RateLimiter(Limit(per_second=1, burst=1))
    assert limiter.allow("a", 10_000_000)
    assert not limiter.allow("a", 5_000_000)  # earlier than the last: no time has passed
    assert not limiter.allow("a", 10_000_000)


@given(
    per_second=st.floats(0.5, 100),
    burst=st.integers(1, 50),
    gaps_us=st.lists(st.integers(0, 2_000_000), min_size=1, max_size=300),
)
def test_never_more_than_burst_plus_rate_times_elapsed(
    per_second: float, burst: int, gaps_us: list[int]
) -> None:
    limiter = RateLimiter(Limit(per_second=per_second, burst=burst))
    t = 0
    allowed = 0
    for gap in gaps_us:
        t += gap
        allowed += limiter.allow("dev", t)
    assert allowed <= burst + per_second * t / 1e6 + 1e-9


def test_restoring_a_snapshot_gives_back_the_tokens_of_a_rolled_back_batch() -> None:
    limiter = RateLimiter(Limit(per_second=1, burst=2))
    saved = limiter.snapshot()
    assert limiter.allow("a", 0)
    assert limiter.allow("a", 0)
    assert not limiter.allow("a", 0)
    limiter.restore(saved)  # the batch was rolled back: it comes again
    assert limiter.allow("a", 0)
    assert limiter.allow("a", 0)


def test_a_backlog_delivered_at_once_is_metered_on_its_event_times() -> None:
    # One message a minute for an hour, queued by the broker during an outage and delivered
    # 1 ms apart: receipt time says flood, event time says a normal device.
    limiter = RateLimiter(Limit(per_second=1, burst=3))
    t0, minute = 1_000_000_000_000, 60_000_000
    allowed = [limiter.allow("a", t0 + i * 1000, t0 + i * minute) for i in range(60)]
    assert all(allowed)
    # The same burst stamped with one event time is a flood.
    flood = RateLimiter(Limit(per_second=1, burst=3))
    assert [flood.allow("a", t0 + i * 1000, t0) for i in range(5)] == [True] * 3 + [False] * 2
