"""A deteriorating patient pages the ward nurse; nobody answers and the senior clinician is paged;
a nurse acknowledges and the paging stops; the vitals recover and the alert resolves by itself.

The real service (``wardwatch.service.running``) with its webhook channel pointed at a pager
gateway on a local port, the suite's Mosquitto and PostgreSQL, and simulated wearables publishing
through the broker. Event time (the readings' timestamps) drives the rules and the hold-down;
only escalation runs on the test's clock, which the test moves on instead of waiting.

``WebhookReceiver`` and ``Wearable`` are used by ``test_restart_mid_escalation`` too.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
import psycopg
import pytest

from alerts.content import NEWS2_RESPONSE
from alerts.model import Severity
from alerts.notify import SIGNATURE_HEADER, TIMESTAMP_HEADER
from simulator import SimPatient, make_ward
from simulator.publish import Publisher
from simulator.stream import encode, local_zone, model_for, topic_for
from tests.e2e.test_end_to_end import Clock
from wardwatch.demo import enrol_ward
from wardwatch.service import Options, running
from wardwatch.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SECRET = b"pager-gateway-shared-secret"
REPLAY_WINDOW_S = 300  # what docs/notifications.md asks a receiver to allow


def eventually(what: str, check: Callable[[], Any], timeout_s: float = 30) -> Any:
    """Poll ``check`` until it returns something truthy, and return that; fail after a while."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout_s:g} s waiting for {what}")


# --- the pager gateway -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page:
    """One request the gateway got (a redelivery is a second ``Page``)."""

    message_id: str
    alert_id: int
    recipient: str
    severity: str
    text: str
    signed: bool  # the HMAC verified with the shared secret, the timestamp within 5 min
    stalled: bool = False  # held unanswered (see ``WebhookReceiver.stall``)


class WebhookReceiver:
    """A pager gateway on a local port: checks each signature as a receiver should, logs every
    request it gets, redeliveries included, and answers 204.

    ``clock`` is the service's clock, which the signature's timestamp comes from.
    """

    def __init__(self, clock: Callable[[], datetime], secret: bytes = SECRET) -> None:
        self._clock = clock
        self._secret = secret
        self._lock = threading.Lock()
        self._pages: list[Page] = []
        self._stall_for: str | None = None
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if not receiver._take(self.headers, body):
                    return  # a stalled request: its sender was killed meanwhile
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_port}/page"

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> WebhookReceiver:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def pages(self) -> list[Page]:
        with self._lock:
            return list(self._pages)

    def pages_for(self, alert_id: int) -> list[Page]:
        return [p for p in self.pages if p.alert_id == alert_id]

    def stall(self, recipient: str) -> None:
        """Hold the next page for ``recipient`` unanswered (logged) until ``release``."""
        with self._lock:
            self._stall_for = recipient
            self._release.clear()

    def release(self) -> None:
        self._release.set()

    def _verified(self, timestamp: str, signature: str, body: bytes) -> bool:
        now = self._clock().timestamp()
        if not timestamp.isdigit() or abs(now - int(timestamp)) > REPLAY_WINDOW_S:
            return False
        mac = hmac.new(self._secret, timestamp.encode() + b"." + body, hashlib.sha256)
        return hmac.compare_digest(signature, "sha256=" + mac.hexdigest())

    def _take(self, headers: Any, body: bytes) -> bool:
        """Log the request; False if it was stalled and never answered."""
        sent = orjson.loads(body)
        signed = self._verified(
            headers.get(TIMESTAMP_HEADER, ""), headers.get(SIGNATURE_HEADER, ""), body
        )
        with self._lock:
            stalled = self._stall_for == sent["recipient"]
            if stalled:
                self._stall_for = None
            self._pages.append(
                Page(
                    sent["message_id"],
                    sent["alert_id"],
                    sent["recipient"],
                    sent["severity"],
                    sent["text"],
                    signed,
                    stalled,
                )
            )
        if not stalled:
            return True
        self._release.wait(60)
        return False


# --- a simulated wearable ----------------------------------------------------------------------


class Wearable:
    """A simulated patient's device, publishing its samples through the broker (see ``play``)."""

    def __init__(self, patient: SimPatient, publisher: Publisher, *, start_s: int) -> None:
        self.patient = patient
        self.model = model_for(patient, seed=3, start_s=start_s, tz=local_zone())
        self.cursor_s = start_s  # every sample before this has been published
        self._publisher = publisher

    @property
    def worst_s(self) -> float:
        """Event time the scenario reaches its targets (the end of the ramp)."""
        assert self.model.onset_s is not None
        return self.model.onset_s + self.model.profile.ramp_s

    @property
    def recovered_s(self) -> float:
        """Event time a recovering scenario is back to normal."""
        recovery_s = self.model.profile.recovery_s
        assert recovery_s is not None
        return self.worst_s + self.model.profile.hold_s + recovery_s

    def publish(self, until_s: float) -> datetime | None:
        """Publish the samples up to ``until_s`` as one message; the time of the last, if any."""
        samples = self.model.samples(self.cursor_s, math.ceil(until_s))
        self.cursor_s = max(self.cursor_s, math.ceil(until_s))
        if len(samples) == 0:
            return None
        self._publisher.publish(topic_for(self.patient.device_id), encode(samples, local_zone()))
        return datetime.fromtimestamp(int(samples.ts_s[-1]), UTC)


def play(
    database_url: str, until: Mapping[Wearable, float], every: timedelta = timedelta(minutes=15)
) -> None:
    """Publish each wearable's samples up to its own event time, one message per ``every`` each.

    Each round is stored before the next is sent, so ingest scores NEWS2 at the end of every
    message, as it does a live device's readings.
    """
    step_s = int(every.total_seconds())
    with psycopg.connect(database_url, autocommit=True) as conn:

        def stored(device_id: str, ts: datetime) -> bool:
            row = conn.execute(
                "select max(ts) >= %s from readings where device_id = %s", (ts, device_id)
            ).fetchone()
            return bool(row and row[0])

        while any(w.cursor_s < end_s for w, end_s in until.items()):
            sent = {
                w.patient.device_id: last
                for w, end_s in until.items()
                if w.cursor_s < end_s and (last := w.publish(min(w.cursor_s + step_s, end_s)))
            }
            for device_id, last in sent.items():
                eventually(
                    f"{device_id}'s readings to {last:%H:%M}", partial(stored, device_id, last)
                )


# --- the story ---------------------------------------------------------------------------------


def open_news2_alert(api: httpx.Client, patient_id: str) -> dict[str, Any]:
    """The patient's open NEWS2 alert (an earlier one may have fired and resolved)."""
    alerts: list[dict[str, Any]] = api.get("/api/alerts", params={"state": "open"}).json()
    (alert,) = [a for a in alerts if a["patient_id"] == patient_id and a["rule"] == "news2"]
    return alert


def alert_by_id(api: httpx.Client, alert_id: int) -> dict[str, Any]:
    alerts: list[dict[str, Any]] = api.get("/api/alerts").json()
    (alert,) = [a for a in alerts if a["id"] == alert_id]
    return alert


def _story(kinds: list[str], keep: tuple[str, ...]) -> list[str]:
    """The kinds in ``keep``, in order, a run of the same kind counted once."""
    out: list[str] = []
    for kind in kinds:
        if kind in keep and (not out or out[-1] != kind):
            out.append(kind)
    return out


def test_an_unanswered_alert_escalates_stops_when_acknowledged_and_resolves_on_recovery(
    mqtt_url: str, database_url: str, uid: str
) -> None:
    (patient,) = make_ward(1, seed=7, scenario="deteriorating_recovering", ward="ward-e2e")
    # A second patient, who never recovers and whose alert nobody answers: their escalation
    # shows when the escalation job has run past the deadline that our patient's would have had.
    (other,) = make_ward(1, seed=7, scenario="deteriorating", ward="ward-e2e", first_number=2)
    start_s = int(time.time()) - 24 * 3600  # the whole story lies in the past: no future readings
    enrol_ward(database_url, [patient, other], datetime.fromtimestamp(start_s, UTC))
    clock = Clock()
    options = Options(client_id=f"ingest-{uid}", escalation_tick_s=0.2, dispatch_tick_s=0.2)
    with contextlib.ExitStack() as stack:
        gateway = stack.enter_context(WebhookReceiver(clock))
        settings = Settings(
            mqtt_url,
            database_url,
            "127.0.0.1",
            0,
            webhook_url=gateway.url,
            webhook_secret=SECRET,
        )
        svc = stack.enter_context(running(settings, options, clock=clock))
        api = stack.enter_context(httpx.Client(base_url=svc.dashboard_url, timeout=10))
        pub = stack.enter_context(Publisher(mqtt_url))
        eventually("the service to subscribe", svc.source.subscribed.is_set)
        wearable = Wearable(patient, pub, start_s=start_s)
        witness = Wearable(other, pub, start_s=start_s)

        # The patient deteriorates. We stop in the middle of the worst of it, before it turns.
        play(
            database_url,
            {
                wearable: wearable.worst_s + 0.5 * wearable.model.profile.hold_s,
                witness: witness.worst_s + 15 * 60,
            },
        )
        alert = open_news2_alert(api, patient.patient_id)
        assert alert["severity"] == "emergency"
        witness_alert = open_news2_alert(api, other.patient_id)
        assert witness_alert["severity"] == "emergency"  # due at the same tick as ours

        # The ward nurse is paged, through the webhook, with what to do.
        nurse_pages = eventually(
            "the ward nurse to be paged about the emergency",
            lambda: [p for p in gateway.pages_for(alert["id"]) if p.severity == "emergency"],
        )
        pages = gateway.pages_for(alert["id"])
        assert {p.recipient for p in pages} == {"ward nurse"}
        assert all(p.signed for p in pages)
        assert "NEWS2 response (" in pages[0].text
        assert f"Patient {patient.patient_id}, ward ward-e2e" in pages[0].text
        assert NEWS2_RESPONSE[Severity.EMERGENCY] in nurse_pages[-1].text

        # Nobody acknowledges: past the emergency tier's 5 min the senior clinician is paged.
        clock.advance(timedelta(minutes=6))
        (senior,) = eventually(
            "the senior clinician to be paged",
            lambda: [
                p for p in gateway.pages_for(alert["id"]) if p.recipient == "senior clinician"
            ],
        )
        assert senior.signed
        assert "UNACKNOWLEDGED" in senior.text

        # A nurse takes it on through the API.
        acked = api.post(
            f"/api/alerts/{alert['id']}/ack",
            json={"user": "Nurse Adeyemi", "note": "phoned the patient; GP visiting"},
        )
        assert acked.status_code == 200, acked.text
        assert acked.json()["state"] == "acknowledged"

        # Past the next tier's deadline the other, unanswered alert reaches the on-call doctor;
        # ours, acknowledged, stays quiet.
        paged_so_far = len(gateway.pages_for(alert["id"]))
        clock.advance(timedelta(minutes=6))
        eventually(
            "the unanswered alert to reach the on-call doctor",
            lambda: [
                p for p in gateway.pages_for(witness_alert["id"]) if p.recipient == "on-call doctor"
            ],
        )
        assert len(gateway.pages_for(alert["id"])) == paged_so_far
        assert alert_by_id(api, alert["id"])["escalation_level"] == 1

        # The patient recovers. The alert holds through 15 min of normal readings (event time),
        # then resolves by itself: no clock moved for that, and nobody is paged about it.
        play(database_url, {wearable: wearable.recovered_s + 30 * 60})
        eventually(
            "the alert to resolve",
            lambda: alert_by_id(api, alert["id"])["state"] == "resolved",
        )
        assert len(gateway.pages_for(alert["id"])) == paged_so_far

        events = api.get(f"/api/alerts/{alert['id']}/events").json()

    kinds = [e["kind"] for e in events]
    story = ("fired", "notified", "escalated", "acknowledged", "resolved")
    assert _story(kinds, story) == [
        "fired",
        "notified",
        "escalated",
        "notified",
        "acknowledged",
        "resolved",
    ], kinds
    escalated = next(e for e in events if e["kind"] == "escalated")
    assert "senior clinician" in escalated["detail"]
    after_escalation = events[events.index(escalated) + 1 :]
    notified = [e["detail"] for e in after_escalation if e["kind"] == "notified"]
    assert "webhook to senior clinician: delivered (204)" in notified
    acknowledged = next(e for e in events if e["kind"] == "acknowledged")
    assert acknowledged["actor"] == "Nurse Adeyemi"
    assert kinds.count("escalated") == 1
    assert "clearing" in kinds[kinds.index("acknowledged") :]
    assert events[-1]["kind"] == "resolved"
    assert events[-1]["detail"] == "condition clear for 15 min"
