"""Live alert changes: PostgreSQL trigger → LISTEN → bounded queues → ``GET /api/stream``.

Against the suite's real PostgreSQL and a real uvicorn; the stream is read with httpx on a
thread, as a browser's EventSource would read it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import prometheus_client
import psycopg
import pytest
from psycopg_pool import ConnectionPool

from alerts.escalation import EscalationPolicy
from alerts.lifecycle import Fire
from alerts.model import Condition, Rule, Severity
from dashboard.app import create_app
from dashboard.server import ServerHandle, serve_in_thread
from storage import alerts as alert_store
from storage.live import AlertChange, LiveAlerts, changes_since
from storage.ward import PostgresWard

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
Pool = ConnectionPool[psycopg.Connection[tuple[object, ...]]]


@dataclass
class Event:
    event: str
    data: str
    id: str | None

    def json(self) -> dict[str, object]:
        loaded: dict[str, object] = orjson.loads(self.data)
        return loaded


@dataclass
class StreamReader:
    """Reads one SSE response on a thread; events (and comments, as ``comment``) go to a queue."""

    client: httpx.Client
    response: httpx.Response
    events: queue.Queue[Event | None] = field(default_factory=queue.Queue)
    ended: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        fields: dict[str, str] = {}
        try:
            for line in self.response.iter_lines():
                if line.startswith(":"):
                    self.events.put(Event("comment", line[1:].strip(), None))
                elif line:
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
                elif "event" in fields or "data" in fields:
                    self.events.put(
                        Event(fields.get("event", "message"), fields.get("data", ""),
                              fields.get("id"))
                    )  # fmt: skip
                    fields = {}
                else:
                    fields = {}
        except httpx.HTTPError:
            pass  # the test closed the response, or the server went away
        finally:
            self.ended.set()
            self.events.put(None)

    def close(self) -> None:
        self.response.close()
        self.client.close()

    def next(self, kind: str, timeout_s: float = 1.0) -> Event:
        """The next event named ``kind`` within ``timeout_s``, skipping others; fail otherwise."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no {kind!r} event within {timeout_s} s")
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if event is None:
                pytest.fail(f"the stream ended before a {kind!r} event")
            if event.event == kind:
                return event


@pytest.fixture
def pool(database_url: str) -> Iterator[Pool]:
    with ConnectionPool(database_url, min_size=1, max_size=4, open=True) as p:
        yield p


def wait_listening(live: LiveAlerts, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not live.listening:
        assert time.monotonic() < deadline, "the listener did not start listening"
        time.sleep(0.02)


@pytest.fixture
def live(database_url: str, pool: Pool) -> Iterator[LiveAlerts]:
    feed = LiveAlerts(database_url, pool, queue_size=4, retry_s=(0.1, 0.2))
    feed.start()
    wait_listening(feed)
    yield feed
    feed.close()


@pytest.fixture
def server(pool: Pool, live: LiveAlerts) -> Iterator[ServerHandle]:
    app = create_app(
        PostgresWard(pool),
        registry=prometheus_client.CollectorRegistry(),
        clock=lambda: NOW,
        live=live,
        keepalive=timedelta(milliseconds=200),
    )
    handle = serve_in_thread(app, "127.0.0.1", 0)
    yield handle
    live.close()  # ends the open streams first: the server waits for open responses
    handle.stop(timeout_s=5)


@pytest.fixture
def streams(server: ServerHandle) -> Iterator[list[StreamReader]]:
    """Readers opened by ``connect``; all closed at the end of the test."""
    opened: list[StreamReader] = []
    yield opened
    for reader in opened:
        reader.close()


def connect(
    server: ServerHandle,
    streams: list[StreamReader],
    *,
    ward: str | None = None,
    last_event_id: int | None = None,
) -> StreamReader:
    client = httpx.Client(base_url=server.url, timeout=httpx.Timeout(5.0, read=10.0))
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    request = client.build_request(
        "GET", "/api/stream", params={"ward": ward} if ward else None, headers=headers
    )
    response = client.send(request, stream=True)
    assert response.status_code == 200, response.read()
    assert response.headers["content-type"].startswith("text/event-stream")
    reader = StreamReader(client, response)
    threading.Thread(target=reader.run, daemon=True).start()
    streams.append(reader)
    return reader


def fire(database_url: str, patient_id: str, ward: str, severity: Severity) -> int:
    with psycopg.connect(database_url) as conn, conn.transaction():
        outcome = alert_store.apply(
            conn,
            Fire(Condition(patient_id, Rule.NEWS2, severity, "NEWS2 7 (high)")),
            ward=ward,
            now=NOW,
            policy=EscalationPolicy(),
            channels=("log",),
        )
    return outcome.alert_id


def test_an_alert_change_reaches_the_stream_within_a_second(
    server: ServerHandle, streams: list[StreamReader], database_url: str, uid: str
) -> None:
    reader = connect(server, streams, ward="east")
    ready = reader.next("ready")
    assert ready.json() == {"listening": True}
    assert ready.id is not None

    fire(database_url, f"pt-{uid}-w", "west", Severity.EMERGENCY)  # another ward: not sent
    started = time.monotonic()
    alert_id = fire(database_url, f"pt-{uid}-e", "east", Severity.URGENT)
    fired = reader.next("alert", timeout_s=1.0)
    assert time.monotonic() - started < 1.0
    body = fired.json()
    assert body == {
        "id": body["id"],
        "alert_id": alert_id,
        "kind": "fired",
        "severity": "urgent",
        "ward": "east",
    }
    assert fired.id == str(body["id"])  # the SSE id is the change's id: Last-Event-ID resumes

    with psycopg.connect(database_url) as conn:
        alert_store.acknowledge(conn, alert_id, user="Nurse Patel", note=None, now=NOW)
    acked = reader.next("alert").json()
    assert (acked["alert_id"], acked["kind"]) == (alert_id, "acknowledged")
    assert int(str(acked["id"])) > int(str(body["id"]))
    # Ids and codes only: the nurse's name never travels on the stream.
    assert "Patel" not in str(acked)
    assert reader.next("comment").data == "keep-alive"


def test_a_reconnecting_client_catches_up_from_its_last_event_id(
    server: ServerHandle, streams: list[StreamReader], database_url: str, uid: str
) -> None:
    first = connect(server, streams, ward="east")
    cursor = int(str(first.next("ready").id))
    first.close()

    missed = [fire(database_url, f"pt-{uid}-{n}", "east", Severity.REVIEW) for n in range(3)]
    fire(database_url, f"pt-{uid}-w", "west", Severity.REVIEW)

    again = connect(server, streams, ward="east", last_event_id=cursor)
    caught = [again.next("alert").json() for _ in missed]
    assert [(c["alert_id"], c["kind"]) for c in caught] == [(a, "fired") for a in missed]
    ready = again.next("ready")  # caught up, then live
    assert int(str(ready.id)) > int(str(caught[-1]["id"]))  # the west change moved the head
    later = fire(database_url, f"pt-{uid}-late", "east", Severity.URGENT)
    assert again.next("alert").json()["alert_id"] == later

    bad = httpx.get(f"{server.url}/api/stream", headers={"Last-Event-ID": "x"}, timeout=5)
    assert bad.status_code == 422


def test_a_full_client_queue_closes_that_client_and_blocks_nobody(
    server: ServerHandle,
    streams: list[StreamReader],
    live: LiveAlerts,
    database_url: str,
    uid: str,
) -> None:
    stuck = live.subscribe(ward=None, after=None)  # never read: a browser that stopped reading
    reader = connect(server, streams)
    reader.next("ready")

    started = time.monotonic()
    fired = [fire(database_url, f"pt-{uid}-{n}", "east", Severity.REVIEW) for n in range(8)]
    got = [reader.next("alert").json()["alert_id"] for _ in fired]
    assert got == fired
    assert time.monotonic() - started < 2.0
    assert stuck.closed == "full"  # queue_size=4: closed at the fifth, the rest not queued
    assert live.subscribers == 1  # only the reading stream is left


def test_the_listener_reconnects_and_open_streams_resync(
    server: ServerHandle,
    streams: list[StreamReader],
    live: LiveAlerts,
    database_url: str,
    uid: str,
) -> None:
    reader = connect(server, streams)
    cursor = int(str(reader.next("ready").id))
    with psycopg.connect(database_url, autocommit=True) as conn:
        # What a PostgreSQL restart does to the listener's connection.
        conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity"
            " where application_name = 'wardwatch-live' and datname = current_database()"
        )
    during = fire(database_url, f"pt-{uid}-during", "east", Severity.URGENT)
    assert reader.ended.wait(5.0), "the stream was not ended for a resync"
    wait_listening(live)

    again = connect(server, streams, last_event_id=cursor)
    seen = again.next("alert").json()
    assert seen["alert_id"] == during  # announced to nobody, or live: either way, delivered once
    again.next("ready")
    after = fire(database_url, f"pt-{uid}-after", "east", Severity.URGENT)
    assert again.next("alert").json()["alert_id"] == after


def test_closing_the_feed_ends_open_streams_so_the_server_stops(
    pool: Pool, database_url: str
) -> None:
    feed = LiveAlerts(database_url, pool)
    feed.start()
    wait_listening(feed)
    app = create_app(
        PostgresWard(pool),
        registry=prometheus_client.CollectorRegistry(),
        clock=lambda: NOW,
        live=feed,
    )
    handle = serve_in_thread(app, "127.0.0.1", 0)
    opened: list[StreamReader] = []
    reader = connect(handle, opened)
    reader.next("ready")
    started = time.monotonic()
    feed.close()
    handle.stop(timeout_s=5)
    assert time.monotonic() - started < 3.0
    assert reader.ended.wait(1.0)
    reader.close()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{handle.url}/api/stream", timeout=1)


def test_catch_up_reads_one_ward_after_a_cursor(database_url: str, uid: str) -> None:
    a = fire(database_url, f"pt-{uid}-a", "east", Severity.REVIEW)
    fire(database_url, f"pt-{uid}-b", "west", Severity.REVIEW)
    c = fire(database_url, f"pt-{uid}-c", "east", Severity.EMERGENCY)
    with psycopg.connect(database_url) as conn:
        everything = changes_since(conn, 0, ward=None, limit=100)
        east = changes_since(conn, 0, ward="east", limit=100)
        too_many = changes_since(conn, 0, ward=None, limit=2)
        fresh = changes_since(conn, None, ward=None, limit=100)
    assert [ch.alert_id for ch in east.changes] == [a, c]
    assert east.changes[1] == AlertChange(
        east.changes[1].id, c, "fired", Severity.EMERGENCY, "east"
    )
    assert east.head == everything.head == everything.changes[-1].id == fresh.head
    assert not too_many.complete
    assert too_many.changes == ()
    assert fresh.changes == ()
