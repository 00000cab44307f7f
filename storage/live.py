"""Alert changes pushed from PostgreSQL to this process's dashboard streams, as they commit.

Every row written to ``alert_events`` is announced by a trigger (migration 006) on the
``wardwatch_alerts`` channel, whichever worker wrote it. ``LiveAlerts`` keeps one LISTEN
connection per dashboard process and fans each change out to its subscribers (one per open
browser stream) through bounded queues: the listener never waits for a subscriber. A subscriber
whose queue is full is closed instead; its browser reconnects and catches up from
``alert_events`` by id (``changes_since``), so closing it loses nothing. The same catch-up covers
a restart of PostgreSQL: after the listener reconnects it closes every subscriber, because what
was committed while it was away was announced to nobody.

Ids order events by insertion, not by commit: two transactions committing a few milliseconds
apart can expose a lower id after a higher one. A subscriber receives both live, but a browser
that reconnects exactly between them may miss the lower one in its catch-up; the page re-reads
the whole ward whenever its stream (re)opens, so nothing is lost on screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psycopg
from psycopg import conninfo as pg_conninfo
from psycopg_pool import ConnectionPool

from alerts.model import Severity

log = logging.getLogger(__name__)

#: The channel migration 006's trigger notifies on.
CHANNEL = "wardwatch_alerts"

Conn = psycopg.Connection[tuple[object, ...]]


class FeedUnavailableError(RuntimeError):
    """No stream can start: the feed is closed, or the catch-up read failed."""


class SubscriptionClosed(Exception):  # noqa: N818 - an end of stream, not a fault
    """The subscription has ended; ``reason`` is ``full``, ``resync`` or ``closed``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class AlertChange:
    """One ``alert_events`` row as announced: ids and codes, never names or free text."""

    id: int  # alert_events.id: the stream's cursor (SSE event id)
    alert_id: int
    kind: str  # fired, worsened, acknowledged, escalated, resolved, notified, ...
    severity: Severity
    ward: str

    @classmethod
    def from_payload(cls, payload: str) -> AlertChange:
        """Decode the trigger's JSON; ``ValueError`` if it is not one."""
        try:
            d = json.loads(payload)
            return cls(
                int(d["id"]),
                int(d["alert_id"]),
                str(d["kind"]),
                Severity(int(d["severity"])),
                str(d["ward"]),
            )
        except (TypeError, KeyError, json.JSONDecodeError) as exc:
            raise ValueError(f"not an alert change: {type(exc).__name__}") from None


@dataclass(frozen=True, slots=True)
class ListenerStatus:
    """Whether this process is hearing alert changes from PostgreSQL right now."""

    listening: bool


@dataclass(frozen=True, slots=True)
class CatchUp:
    """Changes after a cursor, oldest first, and the newest id at the time they were read."""

    changes: tuple[AlertChange, ...]
    head: int  # the cursor to resume from once these are delivered
    complete: bool  # False: more were missed than the limit; the reader must reload instead


def changes_since(conn: Conn, after: int | None, *, ward: str | None, limit: int) -> CatchUp:
    """Read the changes with id above ``after`` (one ward or all), at most ``limit`` of them.

    ``after`` None: a new reader, who needs only the head to resume from later.
    """
    if after is None:
        row = conn.execute("select coalesce(max(id), 0) from alert_events").fetchone()
        return CatchUp((), int(row[0]) if row else 0, complete=True)  # type: ignore[call-overload]
    with conn.transaction():
        # One snapshot for both reads, so that ``head`` is exactly what the rows were read under.
        conn.execute("set transaction isolation level repeatable read, read only")
        row = conn.execute("select coalesce(max(id), 0) from alert_events").fetchone()
        head = int(row[0]) if row else 0  # type: ignore[call-overload]
        rows = conn.execute(
            "select e.id, e.alert_id, e.kind, e.severity, a.ward from alert_events e"
            " join alerts a on a.id = e.alert_id"
            " where e.id > %(after)s and (%(ward)s::text is null or a.ward = %(ward)s)"
            " order by e.id limit %(limit)s",
            {"after": after, "ward": ward, "limit": limit + 1},
        ).fetchall()
    changes = tuple(
        AlertChange(int(i), int(a), str(k), Severity(int(s)), str(w))  # type: ignore[call-overload]
        for i, a, k, s, w in rows
    )
    if len(changes) > limit:
        return CatchUp((), head, complete=False)
    return CatchUp(changes, max(head, after), complete=True)


Item = AlertChange | ListenerStatus


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Subscription:
    """One stream's bounded queue: filled by the listener thread, drained on the event loop.

    ``offer`` never blocks; a full queue closes the subscription (reason ``full``).
    """

    def __init__(
        self,
        number: int,
        ward: str | None,
        capacity: int,
        on_close: Callable[[Subscription], None],
    ) -> None:
        self.number = number  # for logs: a stream's number, nothing about who holds it
        self.ward = ward
        self.backlog: tuple[AlertChange, ...] = ()  # caught up at subscribe, delivered first
        self.head = 0
        self.complete = True
        self.listening = False
        self._skip: frozenset[int] = frozenset()
        self._capacity = capacity
        self._on_close = on_close
        self._items: deque[Item] = deque()
        self._lock = threading.Lock()
        self._closed: str | None = None
        self._waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None

    def wants(self, change: AlertChange) -> bool:
        return self.ward is None or change.ward == self.ward

    def caught_up(self, catch_up: CatchUp) -> None:
        """Record what was read at subscribe; those ids are not delivered again live."""
        self.backlog, self.head, self.complete = catch_up.changes, catch_up.head, catch_up.complete
        self._skip = frozenset(c.id for c in catch_up.changes)

    def offer(self, item: Item) -> bool:
        """Queue ``item`` without waiting; return False if closed (now, when full, or before)."""
        with self._lock:
            if self._closed is not None:
                return False
            if len(self._items) >= self._capacity:
                self._closed = "full"
                self._items.clear()
            else:
                self._items.append(item)
            waiter, self._waiter = self._waiter, None
            ok = self._closed is None
        if waiter is not None:
            self._wake(waiter)
        if not ok:
            self._on_close(self)
        return ok

    def close(self, reason: str = "closed") -> None:
        """End the subscription; its stream finishes at its next read. Idempotent."""
        with self._lock:
            if self._closed is None:
                self._closed = reason
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            self._wake(waiter)
        self._on_close(self)

    @property
    def closed(self) -> str | None:
        return self._closed

    async def get(self, timeout_s: float) -> Item | None:
        """Return the next item, or None after ``timeout_s`` without one.

        Raise ``SubscriptionClosed`` once the subscription has ended.
        """
        while True:
            item = await self._next(timeout_s)
            if not (isinstance(item, AlertChange) and item.id in self._skip):
                return item

    async def _next(self, timeout_s: float) -> Item | None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._closed is not None:
                raise SubscriptionClosed(self._closed)
            if self._items:
                return self._items.popleft()
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiter = (loop, waiter)
        try:
            await asyncio.wait_for(waiter, timeout_s)
        except TimeoutError:
            pass
        finally:
            with self._lock:
                if self._waiter is not None and self._waiter[1] is waiter:
                    self._waiter = None
        with self._lock:
            if self._closed is not None:
                raise SubscriptionClosed(self._closed)
            return self._items.popleft() if self._items else None

    @staticmethod
    def _wake(waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]) -> None:
        loop, future = waiter
        # A closed loop raises RuntimeError: nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_resolve, future)


#: libpq settings for the listening connection: a PostgreSQL that vanishes without closing the
#: socket (a host or network failure rather than a restart) is noticed within seconds.
_LISTEN_PARAMS: dict[str, str | int] = {
    "application_name": "wardwatch-live",
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
}


class LiveAlerts:
    """One LISTEN connection per process, fanned out to bounded per-stream queues.

    ``start`` begins listening on a daemon thread that reconnects with backoff; ``close`` stops
    it and ends every subscription, so that open streams finish and the server can stop.
    """

    def __init__(
        self,
        conninfo: str,
        pool: ConnectionPool[Conn],
        *,
        queue_size: int = 256,
        catch_up_limit: int = 500,
        retry_s: Sequence[float] = (0.5, 1.0, 2.0, 5.0, 10.0),
        poll_s: float = 0.5,
    ) -> None:
        self._conninfo = pg_conninfo.make_conninfo(conninfo, **_LISTEN_PARAMS)
        self._pool = pool
        self._queue_size = queue_size
        self._catch_up_limit = catch_up_limit
        self._retry_s = tuple(retry_s)
        self._poll_s = poll_s
        self._subs: set[Subscription] = set()
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def listening(self) -> bool:
        """True while the listener holds a LISTEN connection."""
        return self._listening.is_set()

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subs)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="live-alerts", daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop listening and end every subscription."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        for sub in self._snapshot():
            sub.close("closed")

    def subscribe(self, *, ward: str | None, after: int | None) -> Subscription:
        """Open a subscription for ``ward`` (None: every ward) that resumes after id ``after``.

        Blocks for one short read: call it from a worker thread, not the event loop. Raise
        ``FeedUnavailableError`` if the feed is closed or the database cannot be read.
        """
        if self._stop.is_set():
            raise FeedUnavailableError("the live feed is closed")
        sub = Subscription(next(self._numbers), ward, self._queue_size, self._forget)
        # Registered before the catch-up read, so nothing committed in between is missed; what
        # both see is delivered once (Subscription skips the backlog's ids).
        with self._lock:
            self._subs.add(sub)
        sub.listening = self.listening
        try:
            with self._pool.connection(timeout=5) as conn:
                caught = changes_since(conn, after, ward=ward, limit=self._catch_up_limit)
        except (psycopg.Error, TimeoutError) as exc:
            sub.close("closed")
            raise FeedUnavailableError(f"catch-up read failed: {type(exc).__name__}") from None
        sub.caught_up(caught)
        log.debug("stream %d opened after %s, head %d", sub.number, after, sub.head)
        return sub

    def publish(self, item: Item) -> None:
        """Hand ``item`` to every subscriber that wants it; close those that are full."""
        for sub in self._snapshot():
            if isinstance(item, AlertChange) and not sub.wants(item):
                continue
            if not sub.offer(item) and sub.closed == "full":
                log.warning("stream %d closed: its queue is full (a slow client)", sub.number)

    def _snapshot(self) -> list[Subscription]:
        with self._lock:
            return list(self._subs)

    def _forget(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f"listen {CHANNEL}")
                    self._set_listening(True)
                    failures = 0
                    # Whatever committed while nobody listened was announced to nobody: every
                    # open stream ends and its browser catches up from the table by id.
                    for sub in self._snapshot():
                        sub.close("resync")
                    self._listen(conn)
            # Any failure, not only the database's: a listener thread that died would leave the
            # streams open and silent while the page says alerts are instant.
            except Exception as exc:
                delay = self._retry_s[min(failures, len(self._retry_s) - 1)]
                log.warning(
                    "live alert listener stopped (%s); retrying in %.1f s",
                    type(exc).__name__,
                    delay,
                )
                failures += 1
                self._set_listening(False)
                self._stop.wait(delay)
        self._set_listening(False)

    def _listen(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        while not self._stop.is_set():
            heard = False
            for notify in conn.notifies(timeout=self._poll_s):
                heard = True
                try:
                    change = AlertChange.from_payload(notify.payload)
                except ValueError:
                    log.warning("live alert listener: unreadable notification skipped")
                    continue
                self.publish(change)
            if not heard:
                # Quiet: make sure the connection is still there (notifies() would not say).
                conn.execute("select 1")

    def _set_listening(self, listening: bool) -> None:
        if listening == self._listening.is_set():
            return
        if listening:
            self._listening.set()
        else:
            self._listening.clear()
        log.info("live alert listener %s", "listening" if listening else "not listening")
        self.publish(ListenerStatus(listening))
