"""Notifications leave through the outbox: delivered once, retried when the channel may recover."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import orjson
import psycopg
import pytest
from prometheus_client import CollectorRegistry

from alerts.notify import LogChannel, WebhookChannel
from ingest import pipeline as pipe
from storage import alerts as alert_store
from storage import assignments
from wardwatch import jobs

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def _fire(url: str, uid: str) -> int:
    device = f"dev-{uid}"
    with psycopg.connect(url) as conn:
        assignments.enrol(
            conn,
            device_id=device,
            patient_id=f"pt-{uid}",
            ward="w",
            valid_from=T0 - timedelta(hours=1),
        )
    p = pipe.Pipeline(
        url,
        settings=pipe.Settings(channels=("log", "webhook")),
        metrics=pipe.PipelineMetrics.create(CollectorRegistry()),
        clock=lambda: T0,
    )
    sick = {"ts": T0.isoformat(), "heart_rate": 140, "resp_rate": 29, "spo2": 89}
    try:
        result = p.process(
            [
                (
                    f"wardwatch/v1/devices/{device}/vitals",
                    orjson.dumps(sick),
                    int(T0.timestamp() * 1e6),
                )
            ]
        )
    finally:
        p.close()
    (outcome,) = result.alerts
    return outcome.alert_id


def test_webhook_retried_until_delivered_and_audited(database_url: str, uid: str) -> None:
    alert_id = _fire(database_url, uid)
    answers = iter([503, 200])
    posted: list[dict[str, object]] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        posted.append(orjson.loads(request.content))
        return httpx.Response(next(answers))

    channels = {
        "log": LogChannel(),
        "webhook": WebhookChannel(
            "https://pager.example/hook", transport=httpx.MockTransport(gateway)
        ),
    }
    registry = CollectorRegistry()
    sent = jobs.make_sent_counter(registry)
    with psycopg.connect(database_url) as conn:
        assert jobs.dispatch(conn, now=T0, channels=channels, sent=sent) == 1  # log only
        assert jobs.dispatch(conn, now=T0, channels=channels, sent=sent) == 1  # webhook retry
        assert jobs.dispatch(conn, now=T0, channels=channels, sent=sent) == 0  # nothing left
        events = [(e.kind, e.detail) for e in alert_store.events(conn, alert_id)]
    assert [k for k, _ in events] == ["fired", "notified", "notify_failed", "notified"]
    assert "webhook answered 503" in events[2][1]
    assert posted[0]["recipient"] == "ward nurse"
    assert "NEWS2" in str(posted[0]["text"])
    assert (
        registry.get_sample_value("wardwatch_notifications_sent_total", {"channel": "webhook"}) == 1
    )


def test_a_refusing_webhook_is_not_retried(database_url: str, uid: str) -> None:
    alert_id = _fire(database_url, uid)
    calls: list[int] = []

    def refuse(_request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(404)

    channels = {
        "webhook": WebhookChannel(
            "https://pager.example/hook", transport=httpx.MockTransport(refuse)
        ),
        "log": LogChannel(),
    }
    sent = jobs.make_sent_counter(CollectorRegistry())
    with psycopg.connect(database_url) as conn:
        jobs.dispatch(conn, now=T0, channels=channels, sent=sent)
        jobs.dispatch(conn, now=T0, channels=channels, sent=sent)
        kinds = [e.kind for e in alert_store.events(conn, alert_id)]
    assert calls == [1]
    assert kinds.count("notify_failed") == 1
