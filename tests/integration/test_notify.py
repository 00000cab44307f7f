"""Notifications leave through the outbox: grouped, inhibited, retried with backoff, dead-lettered.

The clock is injected: ``dispatch`` at ``now`` sends only what is due by ``now``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import psycopg
import pytest
from prometheus_client import CollectorRegistry
from psycopg import conninfo

from alerts.escalation import EscalationPolicy
from alerts.grouping import RetryPolicy
from alerts.lifecycle import Fire
from alerts.model import Condition, Rule, Severity
from alerts.notify import Channel, LogChannel, Notice, WebhookChannel
from ingest import pipeline as pipe
from storage import alerts as alert_store
from storage import assignments
from wardwatch import jobs

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
#: These tests run with a group wait, to show it working; the service's default is 0
#: (alerts.grouping.DEFAULT_GROUP_WAIT: a wave is what is pending together).
GROUP_WAIT = timedelta(seconds=10)
DUE = T0 + GROUP_WAIT
PUBLIC_URL = "https://ward.example"


def _enrol(url: str, uid: str, patient: str, *, bed: str | None = None) -> None:
    with psycopg.connect(url) as conn:
        assignments.enrol(
            conn,
            device_id=f"dev-{patient}",
            patient_id=patient,
            ward=f"w-{uid}",
            valid_from=T0 - timedelta(hours=1),
        )
        if bed is not None:
            conn.execute("update patients set bed = %s where patient_id = %s", (bed, patient))


def _pipeline(url: str, channels: tuple[str, ...]) -> pipe.Pipeline:
    return pipe.Pipeline(
        url,
        settings=pipe.Settings(channels=channels),
        metrics=pipe.PipelineMetrics.create(CollectorRegistry()),
        clock=lambda: T0,
    )


def _vitals(patient: str, at: datetime, **values: float) -> tuple[str, bytes, int]:
    payload = orjson.dumps({"ts": at.isoformat(), **values})
    return (f"wardwatch/v1/devices/dev-{patient}/vitals", payload, int(at.timestamp() * 1e6))


def _fire(url: str, uid: str, channels: tuple[str, ...] = ("log", "webhook")) -> int:
    """A NEWS2 emergency through the real pipeline, so the body carries measured values."""
    _enrol(url, uid, f"pt-{uid}", bed="4B")
    p = _pipeline(url, channels)
    try:
        result = p.process([_vitals(f"pt-{uid}", T0, heart_rate=140, resp_rate=29, spo2=89)])
    finally:
        p.close()
    (outcome,) = result.alerts
    return outcome.alert_id


def _raise(
    conn: psycopg.Connection[tuple[object, ...]], patient: str, rule: Rule, s: Severity
) -> int:
    with conn.transaction():
        outcome = alert_store.apply(
            conn,
            Fire(Condition(patient, rule, s, f"{rule.value} {s.label}")),
            ward="w",
            now=T0,
            policy=EscalationPolicy(),
            channels=("webhook",),
        )
    return outcome.alert_id


def _gateway(
    answer: Callable[[dict[str, object]], int],
) -> tuple[WebhookChannel, list[dict[str, object]]]:
    posted: list[dict[str, object]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        body = orjson.loads(request.content)
        posted.append(body)
        return httpx.Response(answer(body))

    return WebhookChannel(
        "https://pager.example/hook", transport=httpx.MockTransport(handle)
    ), posted


class Counters:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.sent = jobs.make_sent_counter(self.registry)
        self.dead = jobs.make_dead_letter_counter(self.registry)

    def value(self, name: str, channel: str) -> float | None:
        return self.registry.get_sample_value(
            f"wardwatch_notifications_{name}_total", {"channel": channel}
        )


def _dispatch(
    conn: psycopg.Connection[tuple[object, ...]],
    at: datetime,
    channels: dict[str, Channel],
    counters: Counters,
    retry: RetryPolicy | None = None,
) -> int:
    return jobs.dispatch(
        conn,
        now=at,
        channels=channels,
        sent=counters.sent,
        dead_lettered=counters.dead,
        public_url=PUBLIC_URL,
        retry=retry,
        group_wait=GROUP_WAIT,
    )


def _events(conn: psycopg.Connection[tuple[object, ...]], alert_id: int) -> list[tuple[str, str]]:
    return [(e.kind, e.detail) for e in alert_store.events(conn, alert_id)]


# --- retries and dead letters ----------------------------------------------------------------


def test_a_failed_webhook_is_retried_after_its_backoff_and_audited(
    database_url: str, uid: str
) -> None:
    alert_id = _fire(database_url, uid)
    answers = iter([503, 200])
    webhook, posted = _gateway(lambda _body: next(answers))
    channels: dict[str, Channel] = {"log": LogChannel(), "webhook": webhook}
    counters = Counters()
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert _dispatch(conn, T0, channels, counters) == 0  # grouping: waits for the wave
        assert _dispatch(conn, DUE, channels, counters) == 1  # log; the webhook answers 503
        assert _dispatch(conn, DUE + timedelta(seconds=4), channels, counters) == 0  # backoff
        assert _dispatch(conn, DUE + timedelta(seconds=5), channels, counters) == 1  # retried
        assert _dispatch(conn, DUE + timedelta(hours=1), channels, counters) == 0  # all done
        events = _events(conn, alert_id)
    assert [k for k, _ in events] == ["fired", "notified", "notify_failed", "notified"]
    assert events[2][1] == "webhook to ward nurse: webhook answered 503; retrying at 09:00:15 UTC"
    assert len(posted) == 2
    assert posted[0]["message_id"] == posted[1]["message_id"]  # a receiver can drop a repeat
    assert counters.value("sent", "webhook") == 1
    assert counters.value("sent", "log") == 1


def test_the_message_carries_what_a_nurse_needs(database_url: str, uid: str) -> None:
    alert_id = _fire(database_url, uid)
    webhook, posted = _gateway(lambda _body: 200)
    with psycopg.connect(database_url, autocommit=True) as conn:
        _dispatch(conn, DUE, {"webhook": webhook, "log": LogChannel()}, Counters())
    (sent,) = posted
    text = str(sent["text"])
    assert text.startswith(f"Patient pt-{uid}, ward w-{uid}, bed 4B\n")
    assert "NEWS2" in text
    assert "HR 140/min" in text
    assert "SpO2 89 %" in text
    assert "RR 29/min" in text
    assert "(measured 09:00 UTC)" in text
    assert "emergency response" in text
    assert f"Open: {PUBLIC_URL}/?ward=w-{uid}&patient=pt-{uid}" in text
    assert sent["link"] == f"{PUBLIC_URL}/?ward=w-{uid}&patient=pt-{uid}"
    assert sent["alert_ids"] == [alert_id]
    assert sent["severity"] == "emergency"
    assert sent["recipient"] == "ward nurse"


def test_after_the_last_attempt_the_notification_is_dead_lettered(
    database_url: str, uid: str
) -> None:
    alert_id = _fire(database_url, uid, channels=("webhook",))
    webhook, posted = _gateway(lambda _body: 503)
    counters = Counters()
    retry = RetryPolicy(max_attempts=3)
    with psycopg.connect(database_url, autocommit=True) as conn:
        for at in (DUE, DUE + timedelta(seconds=5), DUE + timedelta(seconds=15)):
            assert _dispatch(conn, at, {"webhook": webhook}, counters, retry) == 0
        _dispatch(conn, DUE + timedelta(hours=1), {"webhook": webhook}, counters, retry)
        events = _events(conn, alert_id)
        (state, dead_at), *_ = conn.execute("select state, dead_at from notifications").fetchall()
    assert len(posted) == 3
    assert [k for k, _ in events] == [
        "fired",
        "notify_failed",
        "notify_failed",
        "notify_dead_letter",
    ]
    assert events[-1][1] == "webhook to ward nurse: gave up after 3 attempts: webhook answered 503"
    assert (state, dead_at) == ("dead", DUE + timedelta(seconds=15))
    assert counters.value("dead_lettered", "webhook") == 1


def test_a_refusing_webhook_is_dead_lettered_at_once(database_url: str, uid: str) -> None:
    alert_id = _fire(database_url, uid)
    webhook, posted = _gateway(lambda _body: 404)
    counters = Counters()
    channels: dict[str, Channel] = {"webhook": webhook, "log": LogChannel()}
    with psycopg.connect(database_url, autocommit=True) as conn:
        _dispatch(conn, DUE, channels, counters)
        _dispatch(conn, DUE + timedelta(hours=1), channels, counters)
        kinds = [k for k, _ in _events(conn, alert_id)]
    assert len(posted) == 1
    assert kinds.count("notify_dead_letter") == 1
    assert "notify_failed" not in kinds
    assert counters.value("dead_lettered", "webhook") == 1


def test_a_channel_not_configured_here_is_dead_lettered(database_url: str, uid: str) -> None:
    alert_id = _fire(database_url, uid)
    counters = Counters()
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert _dispatch(conn, DUE, {"log": LogChannel()}, counters) == 1
        events = _events(conn, alert_id)
    assert ("notify_dead_letter", "webhook to ward nurse: gave up after 1 attempts: no channel"
            " 'webhook' configured") in events  # fmt: skip
    assert counters.value("dead_lettered", "webhook") == 1


def test_a_channel_that_is_down_costs_one_attempt_per_tick(database_url: str, uid: str) -> None:
    """After a recoverable failure the channel's other messages wait; they are not failed."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        first = _raise(conn, f"a-{uid}", Rule.NEWS2, Severity.URGENT)
        second = _raise(conn, f"b-{uid}", Rule.NEWS2, Severity.URGENT)
        webhook, posted = _gateway(lambda _body: 503)
        _dispatch(conn, DUE, {"webhook": webhook}, Counters())
        assert len(posted) == 1
        tried = [k for k, _ in _events(conn, first)] + [k for k, _ in _events(conn, second)]
        assert tried.count("notify_failed") == 1
        attempts = [a for (a,) in conn.execute("select attempts from notifications order by id")]
        assert sorted(attempts) == [0, 1]
        _dispatch(conn, DUE + timedelta(seconds=5), {"webhook": webhook}, Counters())
    assert len(posted) == 2  # the deferred one now, the failed one not yet due again (10 s)


class Broken:
    name = "log"

    def send(self, notice: Notice) -> str:
        raise RuntimeError(notice.body)  # a bug, not a NotifyError


def test_a_channel_with_a_bug_fails_recoverably_and_others_still_deliver(
    database_url: str, uid: str
) -> None:
    alert_id = _fire(database_url, uid)
    webhook, posted = _gateway(lambda _body: 200)
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert _dispatch(conn, DUE, {"log": Broken(), "webhook": webhook}, Counters()) == 1
        events = _events(conn, alert_id)
    assert len(posted) == 1
    assert (
        "notify_failed",
        "log to ward nurse: log failed: RuntimeError; retrying at 09:00:15 UTC",
    ) in events
    assert [k for k, _ in events].count("notified") == 1


# --- grouping and inhibition -----------------------------------------------------------------


def test_one_wave_makes_one_message_per_patient_and_recipient(database_url: str, uid: str) -> None:
    a, b = f"a-{uid}", f"b-{uid}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        news2_a = _raise(conn, a, Rule.NEWS2, Severity.EMERGENCY)
        risk_a = _raise(conn, a, Rule.RISK, Severity.REVIEW)  # muted by the emergency
        silent_a = _raise(conn, a, Rule.NO_DATA, Severity.TECHNICAL)
        battery_a = _raise(conn, a, Rule.BATTERY, Severity.TECHNICAL)
        news2_b = _raise(conn, b, Rule.NEWS2, Severity.REVIEW)
        risk_b = _raise(conn, b, Rule.RISK, Severity.REVIEW)
        webhook, posted = _gateway(lambda _body: 200)
        counters = Counters()
        assert _dispatch(conn, DUE, {"webhook": webhook}, counters) == 3
        risk_a_events = _events(conn, risk_a)
        news2_b_events = _events(conn, news2_b)
        states = dict(conn.execute("select alert_id, state from notifications").fetchall())
    messages = {(m["patient_id"], m["recipient"]): m for m in posted}
    assert sorted(messages) == [(a, "device team"), (a, "ward nurse"), (b, "ward nurse")]
    assert messages[a, "ward nurse"]["alert_ids"] == [news2_a]
    assert sorted(messages[a, "device team"]["alert_ids"]) == sorted([silent_a, battery_a])
    assert messages[b, "ward nurse"]["alert_ids"] == [news2_b, risk_b]
    assert "2 alerts" in str(messages[b, "ward nurse"]["subject"])
    assert risk_a_events[-1] == (
        "notify_inhibited",
        f"webhook to ward nurse: not sent, the patient has a more severe open alert"
        f" ({news2_a}, emergency)",
    )
    assert states[risk_a] == "inhibited"
    assert news2_b_events[-1][0] == "notified"
    assert "one message for notifications" in news2_b_events[-1][1]
    assert counters.value("sent", "webhook") == 3


# --- a channel that hangs holds up nothing ---------------------------------------------------


class Recorder:
    name = "log"

    def __init__(self) -> None:
        self.notices: list[Notice] = []

    def send(self, notice: Notice) -> str:
        self.notices.append(notice)
        return "recorded"


def test_a_hanging_channel_blocks_neither_other_channels_nor_ingest_nor_acks(
    database_url: str, uid: str
) -> None:
    alert_id = _fire(database_url, uid)
    entered, release = threading.Event(), threading.Event()

    def hang(_body: dict[str, object]) -> int:
        entered.set()
        release.wait(20)
        return 200

    webhook, posted = _gateway(hang)
    recorder = Recorder()
    channels: dict[str, Channel] = {"webhook": webhook, "log": recorder}
    delivered: list[int] = []

    def dispatcher() -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            delivered.append(_dispatch(conn, DUE, channels, Counters()))

    worker = threading.Thread(target=dispatcher)
    worker.start()
    try:
        assert entered.wait(10)
        assert [n.alert_ids for n in recorder.notices] == [(alert_id,)]  # not behind the webhook
        impatient = conninfo.make_conninfo(database_url, options="-c lock_timeout=2000")
        with psycopg.connect(impatient, autocommit=True) as conn:
            # A second sender finds everything leased: nothing is sent twice.
            assert _dispatch(conn, DUE, channels, Counters()) == 0
            alert_store.acknowledge(conn, alert_id, user="nurse", note=None, now=DUE)
        p = _pipeline(impatient, ("log", "webhook"))
        try:
            later = DUE + timedelta(minutes=1)
            p.process([_vitals(f"pt-{uid}", later, heart_rate=150, resp_rate=30, spo2=88)])
        finally:
            p.close()
    finally:
        release.set()
        worker.join(20)
    assert delivered == [2]
    assert len(posted) == 1
    assert len(recorder.notices) == 1


def test_a_page_cut_short_is_resent_alone_under_its_first_message_id(
    database_url: str, uid: str
) -> None:
    """A sender dies after leasing a page (it may have reached the pager); a newer page for
    the same nurse is owed meanwhile. After the lease the old one goes out again alone, with
    the id it first had, so the pager can drop the repeat; the new one goes out on its own."""
    patient = f"pt-{uid}"
    webhook, posted = _gateway(lambda _body: 200)
    with psycopg.connect(database_url, autocommit=True) as conn:
        first = _raise(conn, patient, Rule.NEWS2, Severity.URGENT)
        with conn.transaction():  # what dispatch does before it talks to the channel, then dies
            (row,) = alert_store.claim_pending(conn, now=T0 + GROUP_WAIT)
            alert_store.postpone(conn, [row.id], T0 + timedelta(minutes=2), message_id="m-first")
        second = _raise(conn, patient, Rule.NO_DATA, Severity.TECHNICAL)
        conn.execute(
            "update notifications set recipient = 'ward nurse' where alert_id = %s", (second,)
        )
        # Both are due together now; merged, the repeat would hide under a new id.
        assert _dispatch(conn, T0 + timedelta(minutes=3), {"webhook": webhook}, Counters()) == 2
    by_alerts = {tuple(p["alert_ids"]): p["message_id"] for p in posted}  # type: ignore[arg-type]
    assert set(by_alerts) == {(first,), (second,)}
    assert by_alerts[(first,)] == "m-first"
    assert by_alerts[(second,)] != "m-first"
