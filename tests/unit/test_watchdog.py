"""The watchdog's decisions: what counts as a stall, and when to say so (a pure timeline)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.watchdog import Observation, Watch, stall_reasons

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
FIVE_MIN = timedelta(minutes=5)


def healthy(at: datetime = T0, **kw: object) -> Observation:
    base: dict[str, object] = {
        "reachable": True,
        "last_batch_at": at - timedelta(seconds=10),
        "broker_connected": True,
        "database_up": True,
        "devices_enrolled": 40,
    }
    return Observation(at, **{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("observation", "reasons"),
    [
        (healthy(), ()),
        (Observation(T0, reachable=False, error="ConnectError"),
         ("wardwatch not answering (ConnectError)",)),
        (healthy(database_up=False), ("database unreachable",)),
        (healthy(broker_connected=False), ("not connected to the MQTT broker",)),
        (healthy(last_batch_at=T0 - timedelta(minutes=7)),
         ("no batch processed for 7 min while 40 devices are enrolled",)),
        (healthy(last_batch_at=T0 - timedelta(minutes=4)), ()),  # not yet N minutes
        # An empty ward is quiet, not stalled.
        (healthy(last_batch_at=T0 - timedelta(hours=3), devices_enrolled=0), ()),
        (healthy(last_batch_at=None), ("no batch processed since start while 40 devices are "
                                       "enrolled",)),
        (healthy(database_up=False, broker_connected=False),
         ("database unreachable", "not connected to the MQTT broker")),
    ],
    ids=["healthy", "unreachable", "database", "broker", "idle", "briefly-idle", "empty-ward",
         "never-processed", "both"],
)  # fmt: skip
def test_what_counts_as_a_stall(observation: Observation, reasons: tuple[str, ...]) -> None:
    assert stall_reasons(observation, no_batch_after=FIVE_MIN) == reasons


def test_one_failed_look_is_not_an_alarm_a_lasting_one_is_repeated_then_cleared() -> None:
    watch = Watch(for_=timedelta(minutes=2), repeat_every=timedelta(minutes=15))
    trouble = ("database unreachable",)
    sent = []
    for minute in range(40):
        reasons = trouble if 1 <= minute < 33 else ()
        watch, notice = watch.step(reasons, T0 + timedelta(minutes=minute))
        if notice is not None:
            sent.append((minute, notice.kind, notice.text))
    assert sent == [
        (3, "stalled", "wardwatch stalled: database unreachable (patient alerts may not be "
                       "reaching anyone)"),
        (18, "still stalled", "wardwatch stalled: database unreachable"),
        (33, "recovered", "wardwatch recovered after 30 min"),
    ]  # fmt: skip


def test_a_blip_shorter_than_the_for_duration_says_nothing() -> None:
    watch = Watch(for_=timedelta(minutes=2))
    watch, first = watch.step(("database unreachable",), T0)
    watch, second = watch.step((), T0 + timedelta(minutes=1))
    watch, third = watch.step(("database unreachable",), T0 + timedelta(minutes=2))
    assert (first, second, third) == (None, None, None)  # the clock restarted after the blip
    assert watch.trouble_since == T0 + timedelta(minutes=2)
