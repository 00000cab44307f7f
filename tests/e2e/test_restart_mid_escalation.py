"""Killing the service (SIGKILL) mid-escalation and starting it again neither drops nor doubles a
page: every page owed is sent once per (alert, level, channel).

The service runs as a child process: ``wardwatch.service.running``, the composition root that
``wardwatch run`` uses, with its clock read from a file so that the test can move it from this
process. Whatever it knows lives in PostgreSQL. Two patients' NEWS2 alerts escalate while it is
killed twice:

1. between escalation steps, once every page owed so far has been sent;
2. in the middle of sending: the pager gateway has received patient B's page for the senior
   clinician and not answered it yet, and patient A's escalation has just written its outbox
   rows, which the stuck sender has not picked up.

Delivery to the gateway is at least once, with a dedup key: the page whose send the crash cut
short is sent again once its send lease (2 min) has run out, with the same ``message_id``, so
the gateway can drop the repeat. Every other page arrives once. The outbox holds one row per
(alert, level, channel), each sent once; the history has one "escalated" per level.

Run as ``python -m tests.e2e.test_restart_mid_escalation``, this module is that child process.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import psycopg
import pytest

from simulator import make_ward
from simulator.publish import Publisher
from tests.e2e.test_escalation_e2e import (
    SECRET,
    Wearable,
    WebhookReceiver,
    eventually,
    open_news2_alert,
    play,
)
from wardwatch.demo import enrol_ward
from wardwatch.service import Options, running
from wardwatch.settings import from_env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
CLOCK_FILE = "WARDWATCH_TEST_CLOCK_FILE"
READY_FILE = "WARDWATCH_TEST_READY_FILE"


class FileClock:
    """Wall time plus an offset kept in a file: the test moves the clock of another process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.exists():
            path.write_text("0")

    def __call__(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=float(self.path.read_text()))

    def advance(self, by: timedelta) -> None:
        offset = float(self.path.read_text()) + by.total_seconds()
        staged = self.path.with_suffix(".new")
        staged.write_text(repr(offset))
        staged.replace(self.path)  # atomic: a reader sees the old offset or the new one


def serve() -> None:
    """The child: the service with the file clock, until SIGTERM (or SIGKILL)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    options = Options(
        escalation_tick_s=0.2,
        dispatch_tick_s=0.2,
        # The clock jumps 15 min while the devices are quiet: the "no data" and device rules
        # would rightly page the device team, which is another story (tests/integration).
        silence_tick_s=3600,
    )
    clock = FileClock(Path(os.environ[CLOCK_FILE]))
    with running(from_env(os.environ), options, clock=clock) as svc:
        Path(os.environ[READY_FILE]).write_text(svc.dashboard_url)
        stop.wait()


class ServiceProcess:
    """``serve`` in a child process that the test can kill -9 and start again; always stopped."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self._ready = workdir / "ready"
        self._log = workdir / "service.log"
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("WARDWATCH_")}
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        self._env = {**inherited, **env, "PYTHONPATH": path, READY_FILE: str(self._ready)}
        self._proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> str:
        self._ready.unlink(missing_ok=True)
        with self._log.open("ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "tests.e2e.test_restart_mid_escalation"],
                cwd=ROOT,
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.url = eventually("the service to start", self._started, timeout_s=60)
        eventually("the service to subscribe", self._subscribed)
        return self.url

    def kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait(10)

    def stop(self) -> int | None:
        """SIGTERM and wait for a clean exit; the exit code."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        return self._proc.returncode

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> ServiceProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()
        if exc_type is not None:
            sys.stderr.write(f"--- service log ---\n{self.log_tail()}\n")

    def _started(self) -> str | None:
        assert self._proc is not None
        if self._proc.poll() is not None:
            pytest.fail(f"the service exited with {self._proc.returncode}:\n{self.log_tail()}")
        return self._ready.read_text() if self._ready.exists() else None

    def _subscribed(self) -> bool:
        metrics = httpx.get(f"{self.url}/metrics", timeout=5).text
        return "wardwatch_mqtt_subscribed 1.0" in metrics


def outbox(conn: psycopg.Connection[Any], alert_id: int) -> dict[str, dict[str, Any]]:
    """The alert's notifications by dedup key."""
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        rows = cur.execute(
            "select id, dedup_key, channel, recipient, state, attempts, sent_at, next_attempt_at"
            " from notifications where alert_id = %s order by id",
            (alert_id,),
        ).fetchall()
    return {r["dedup_key"]: r for r in rows}


def history(conn: psycopg.Connection[Any], alert_id: int) -> list[tuple[str, str]]:
    rows = conn.execute(
        "select kind, detail from alert_events where alert_id = %s order by id", (alert_id,)
    ).fetchall()
    return [(str(kind), str(detail)) for kind, detail in rows]


def nothing_pending(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("select count(*) from notifications where state = 'pending'").fetchone()
    return row is not None and row[0] == 0


def test_a_restart_mid_escalation_neither_drops_nor_doubles_a_page(
    mqtt_url: str, database_url: str, uid: str, tmp_path: Path
) -> None:
    b, a = make_ward(2, seed=5, scenario="deteriorating", ward="ward-restart")
    start_s = int(time.time()) - 12 * 3600
    enrol_ward(database_url, [a, b], datetime.fromtimestamp(start_s, UTC))
    clock = FileClock(tmp_path / "clock")
    with (
        WebhookReceiver(clock) as gateway,
        ServiceProcess(
            {
                "WARDWATCH_MQTT_URL": mqtt_url,
                "WARDWATCH_DATABASE_URL": database_url,
                "WARDWATCH_HTTP_ADDR": "127.0.0.1:0",
                "WARDWATCH_MQTT_CLIENT_ID": f"ingest-{uid}",
                "WARDWATCH_WEBHOOK_URL": gateway.url,
                "WARDWATCH_WEBHOOK_SECRET": SECRET.decode(),
                CLOCK_FILE: str(clock.path),
            },
            tmp_path,
        ) as service,
        Publisher(mqtt_url) as pub,
        psycopg.connect(database_url, autocommit=True) as db,
    ):
        service.start()
        # Each device uploads the last half hour at the worst of the illness: an emergency.
        # B's alert fires first; A's three minutes later, so their deadlines fall apart.
        wb, wa = Wearable(b, pub, start_s=start_s), Wearable(a, pub, start_s=start_s)
        for w in (wb, wa):
            w.cursor_s = int(w.worst_s) - 30 * 60
        play(database_url, {wb: wb.worst_s})
        with httpx.Client(base_url=service.url, timeout=10) as api:
            b_alert = open_news2_alert(api, b.patient_id)["id"]
            clock.advance(timedelta(minutes=3))
            play(database_url, {wa: wa.worst_s})
            a_alert = open_news2_alert(api, a.patient_id)["id"]
        eventually(
            "both nurses' pages",
            lambda: gateway.pages_for(a_alert) and gateway.pages_for(b_alert),
        )
        eventually("the outbox to be sent", lambda: nothing_pending(db))

        # Kill 1, between escalation steps: every page owed so far is sent, none is due yet.
        service.kill()
        service.start()

        # B is not acknowledged within 5 min: its senior clinician is paged. The gateway takes
        # the request and does not answer.
        gateway.stall("senior clinician")
        clock.advance(timedelta(minutes=3))
        eventually(
            "B's page to the senior clinician",
            lambda: [p for p in gateway.pages_for(b_alert) if p.stalled],
        )
        assert [p.recipient for p in gateway.pages_for(a_alert)] == ["ward nurse"]
        assert [p.recipient for p in gateway.pages_for(b_alert)] == [
            "ward nurse",
            "senior clinician",
        ]  # the restart sent nothing again
        # A's deadline passes while the sender is stuck: its outbox rows are written, not sent.
        clock.advance(timedelta(minutes=3))
        eventually(
            f"{a_alert}:esc:1:webhook in the outbox",
            lambda: f"{a_alert}:esc:1:webhook" in outbox(db, a_alert),
        )

        # Kill 2, mid-send.
        service.kill()
        gateway.release()
        cut_short = outbox(db, b_alert)[f"{b_alert}:esc:1:webhook"]
        assert (cut_short["state"], cut_short["sent_at"]) == ("pending", None)
        assert cut_short["next_attempt_at"] is not None  # leased by the sender that died
        never_sent = outbox(db, a_alert)[f"{a_alert}:esc:1:webhook"]
        assert (never_sent["state"], never_sent["next_attempt_at"]) == ("pending", None)

        service.start()
        # The lease has run out (the clock is 3 min past the send): B's page goes again, A's once.
        eventually(
            "B's page again and A's first",
            lambda: (
                len([p for p in gateway.pages_for(b_alert) if not p.stalled]) == 2
                and len(gateway.pages_for(a_alert)) == 2
            ),
        )
        eventually("the outbox to be sent", lambda: nothing_pending(db))

        # The escalation carries on from where it was, a level at a time, for each alert.
        clock.advance(timedelta(minutes=3))
        eventually(
            "B's page to the on-call doctor",
            lambda: [p for p in gateway.pages_for(b_alert) if p.recipient == "on-call doctor"],
        )
        clock.advance(timedelta(minutes=3))
        eventually(
            "A's page to the on-call doctor",
            lambda: [p for p in gateway.pages_for(a_alert) if p.recipient == "on-call doctor"],
        )
        eventually("the outbox to be sent", lambda: nothing_pending(db))
        assert service.stop() == 0

        tiers = ["ward nurse", "senior clinician", "on-call doctor"]
        keys = ["fired", "esc:1", "esc:2"]
        for alert_id in (a_alert, b_alert):
            # The outbox: one row per (alert, level, channel), each sent once.
            rows = outbox(db, alert_id)
            assert sorted(rows) == sorted(
                f"{alert_id}:{key}:{channel}" for key in keys for channel in ("log", "webhook")
            )
            assert {(r["state"], r["attempts"]) for r in rows.values()} == {("sent", 1)}
            # The history: one "escalated" per level, one "notified" per row, no failure.
            events = history(db, alert_id)
            escalated = [d for k, d in events if k == "escalated"]
            assert [d.split(":")[0] for d in escalated] == [
                "escalated to senior clinician",
                "escalated to on-call doctor",
            ]
            notified = Counter(d for k, d in events if k == "notified")
            assert sorted(notified) == sorted(
                [f"webhook to {t}: delivered (204)" for t in tiers]
                + [f"log to {t}: logged" for t in tiers]
            )
            assert set(notified.values()) == {1}
            assert not [k for k, _ in events if k.startswith("notify_")]
            # The gateway: one message id per page owed, and it is the outbox row's.
            pages = gateway.pages_for(alert_id)
            assert all(p.signed for p in pages)
            by_tier = {t: {p.message_id for p in pages if p.recipient == t} for t in tiers}
            assert by_tier == {
                t: {f"wardwatch-n{rows[f'{alert_id}:{key}:webhook']['id']}"}
                for t, key in zip(tiers, keys, strict=True)
            }
        # Received twice, and only that: B's page whose send the crash cut short; the repeat
        # carries the same message id.
        received = Counter(p.message_id for p in gateway.pages)
        (twice,) = [m for m, n in received.items() if n > 1]
        assert received[twice] == 2
        assert [
            (p.alert_id, p.recipient, p.stalled) for p in gateway.pages if p.message_id == twice
        ] == [
            (b_alert, "senior clinician", True),
            (b_alert, "senior clinician", False),
        ]


if __name__ == "__main__":
    serve()
