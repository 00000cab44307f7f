"""The nurses' web page, its JSON API and the operators' health and metrics endpoints.

Everything the app knows comes from a ``WardReader`` (the PostgreSQL store in production, an
in-memory fake in tests) and the injected ``clock``; it holds no state of its own.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Protocol

import prometheus_client
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Response
from fastapi.responses import HTMLResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from alerts.model import Alert, AlertEvent, AlertState
from alerts.policy import OverrideError, Overrides, Pause, PolicyError
from alerts.report import Report
from alerts.report import as_dict as report_dict
from dashboard.schema import (
    AckIn,
    AlertChangeOut,
    AlertEventOut,
    AlertOut,
    HealthOut,
    OverridesIn,
    OverridesOut,
    PatientOut,
    PolicyIn,
    PolicyOut,
    PolicyRefusedOut,
    ResolveIn,
    alert_order,
    patient_order,
)
from storage.live import (
    AlertChange,
    FeedUnavailableError,
    ListenerStatus,
    Subscription,
    SubscriptionClosed,
)
from storage.policy import OverrideRecord, StoredPolicy
from storage.views import ConflictError, NotFoundError, PatientStatus

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"

#: Header carrying the app's clock on every API response, so the page shows ages ("last seen
#: 3 min ago") against the same clock the server uses, even when replaying at another speed.
NOW_HEADER = "X-Wardwatch-Now"

# The page loads only its own script and style sheet: no inline code, no third-party origin.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


WardQuery = Annotated[str | None, Query(description="Only this ward; omit for every ward.")]


class WardReader(Protocol):
    """What the dashboard needs from the store."""

    def patients(self, ward: str | None = None) -> list[PatientStatus]: ...

    def alerts(self, state: AlertState | None = None, ward: str | None = None) -> list[Alert]: ...

    def alert_events(self, alert_id: int) -> list[AlertEvent]:
        """Return the alert's history, oldest first; raise ``NotFoundError`` for no such alert."""
        ...

    def acknowledge(self, alert_id: int, *, user: str, note: str | None, now: datetime) -> Alert:
        """Mark an open alert acknowledged by ``user`` and return it.

        Raise ``NotFoundError`` for no such alert and ``ConflictError`` unless it is open.
        """
        ...

    def resolve(
        self, alert_id: int, *, user: str, outcome: str, note: str | None, now: datetime
    ) -> Alert:
        """Close an alert by hand with an outcome; ``NotFoundError`` / ``ConflictError`` as for
        ``acknowledge`` (a resolved alert cannot be resolved again)."""
        ...

    def report(self, *, since: datetime, until: datetime, ward: str | None) -> Report:
        """The alerting report for ``[since, until)`` (alerts.report); ValueError if empty."""
        ...

    def healthy(self) -> bool:
        """Return whether the database is reachable."""
        ...


class PolicyStore(Protocol):
    """What the policy and override endpoints need from the store (storage.policy)."""

    def current_policy(self) -> StoredPolicy: ...

    def set_policy(self, text: str, *, user: str, now: datetime) -> StoredPolicy:
        """Store ``text`` as the next version; raise ``PolicyError`` and store nothing."""
        ...

    def overrides(self, patient_id: str) -> OverrideRecord | None:
        """Return the overrides in force; raise ``NotFoundError`` for no such patient."""
        ...

    def set_overrides(
        self, patient_id: str, overrides: Overrides, *, user: str, reason: str, now: datetime
    ) -> OverrideRecord:
        """Record a change; raise ``OverrideError`` if refused, ``NotFoundError`` if no patient."""
        ...

    def override_history(self, patient_id: str) -> list[OverrideRecord]:
        """Return every change, newest first; raise ``NotFoundError`` for no such patient."""
        ...


class AlertFeed(Protocol):
    """Alert changes as they commit, for ``GET /api/stream`` (``storage.live.LiveAlerts``)."""

    def subscribe(self, *, ward: str | None, after: int | None) -> Subscription:
        """Open a subscription resuming after change id ``after`` (None: from now).

        May block briefly on the database; raise ``FeedUnavailableError`` if no stream can start.
        """
        ...


#: How long a browser waits before reconnecting a dropped stream (the SSE ``retry`` field).
STREAM_RETRY_MS = 3000


def create_app(
    reader: WardReader,
    *,
    registry: prometheus_client.CollectorRegistry,
    clock: Callable[[], datetime],
    stale_after: timedelta = timedelta(minutes=10),
    poll_interval: timedelta = timedelta(seconds=5),
    policy: PolicyStore | None = None,
    live: AlertFeed | None = None,
    keepalive: timedelta = timedelta(seconds=15),
) -> FastAPI:
    """Build the dashboard over ``reader``.

    ``stale_after``: how long without data before a patient's freshness is highlighted.
    ``poll_interval``: how often the page re-reads the API.
    ``policy``: the alerting policy and patient overrides; without it those endpoints are absent.
    ``live``: alert changes pushed to the page (``GET /api/stream``); without it the page polls
    only. Its owner closes it before stopping the server: an open stream ends only then.
    ``keepalive``: how often an idle stream sends a comment, so proxies keep it open.
    """
    app = FastAPI(
        title="wardwatch dashboard",
        summary="Virtual-ward patients, NEWS2 and nurse alerts.",
        version="1",
        # Swagger UI and ReDoc load their assets from a CDN, which ward networks cannot reach.
        docs_url=None,
        redoc_url=None,
    )
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    page = _render_page(poll_interval, stream=live is not None)

    def now() -> datetime:
        return clock().astimezone(UTC)

    def stamp_now(response: Response) -> None:
        response.headers[NOW_HEADER] = now().isoformat().replace("+00:00", "Z")

    api = APIRouter(prefix="/api", dependencies=[Depends(stamp_now)])

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(page, headers=_PAGE_HEADERS)

    @api.get("/patients", tags=["ward"])
    def list_patients(ward: WardQuery = None) -> list[PatientOut]:
        """List patients, highest NEWS2 risk band first, then highest score."""
        at = now()
        rows = [PatientOut.of(p, now=at, stale_after=stale_after) for p in reader.patients(ward)]
        return sorted(rows, key=patient_order)

    @api.get("/alerts", tags=["alerts"])
    def list_alerts(
        state: Annotated[
            AlertState | None, Query(description="open, acknowledged or resolved; omit for all.")
        ] = None,
        ward: WardQuery = None,
    ) -> list[AlertOut]:
        """List alerts, most severe first, then oldest first."""
        return [AlertOut.of(a) for a in sorted(reader.alerts(state, ward), key=alert_order)]

    @api.get(
        "/alerts/{alert_id}/events",
        tags=["alerts"],
        responses={404: {"description": "No such alert."}},
    )
    def list_alert_events(alert_id: int) -> list[AlertEventOut]:
        """Return an alert's history, oldest first."""
        try:
            events = reader.alert_events(alert_id)
        except NotFoundError:
            raise _not_found(alert_id) from None
        return [AlertEventOut.of(e) for e in sorted(events, key=lambda e: e.at)]

    @api.post(
        "/alerts/{alert_id}/ack",
        tags=["alerts"],
        responses={
            404: {"description": "No such alert."},
            409: {"description": "Already acknowledged (by whom) or already resolved."},
        },
    )
    def acknowledge(alert_id: int, body: AckIn) -> AlertOut:
        """Acknowledge an open alert: a named person has taken it on, escalation stops."""
        try:
            alert = reader.acknowledge(alert_id, user=body.user, note=body.note, now=now())
        except NotFoundError:
            raise _not_found(alert_id) from None
        except ConflictError as exc:
            raise HTTPException(409, detail=_conflict_detail(reader, alert_id, exc)) from None
        # Ids only: the user's name and note are personal data and stay out of the logs.
        logger.info("alert %d acknowledged", alert_id)
        return AlertOut.of(alert)

    _add_resolve_route(api, reader, now)

    _add_report_route(api, reader, now)

    if policy is not None:
        _add_policy_routes(api, policy, now)
    if live is not None:
        _add_stream_route(api, live, keepalive)
    app.include_router(api)

    @app.get(
        "/healthz",
        tags=["operations"],
        responses={503: {"model": HealthOut, "description": "Database unreachable."}},
    )
    def healthz(response: Response) -> HealthOut:
        """Report whether the dashboard can reach its database."""
        try:
            reachable = reader.healthy()
        except Exception as exc:  # any failure to answer means unreachable, whatever the cause
            logger.warning("health check failed: %s", type(exc).__name__)
            reachable = False
        if reachable:
            return HealthOut(status="ok", database="reachable")
        response.status_code = 503
        return HealthOut(status="degraded", database="unreachable")

    @app.get("/metrics", tags=["operations"], response_class=Response)
    def metrics() -> Response:
        """Expose the registry in the Prometheus text format."""
        return Response(
            prometheus_client.generate_latest(registry),
            media_type=prometheus_client.CONTENT_TYPE_LATEST,
        )

    return app


def _add_report_route(api: APIRouter, reader: WardReader, now: Callable[[], datetime]) -> None:
    @api.get("/report", tags=["alerts"])
    def get_report(
        since: datetime | None = None, until: datetime | None = None, ward: WardQuery = None
    ) -> dict[str, Any]:
        """Alerts per patient-day, time to acknowledge (median, p90), escalations, per ward.

        Default period: the 7 days up to now. Also ``wardwatch report`` (docs/report.md).
        """
        end = until or now()
        start = since or end - timedelta(days=7)
        if start.tzinfo is None or end.tzinfo is None:
            raise HTTPException(422, detail="since and until need a UTC offset, e.g. ...Z")
        try:
            return report_dict(reader.report(since=start, until=end, ward=ward))
        except ValueError as exc:
            raise HTTPException(422, detail=str(exc)) from None


def _add_resolve_route(api: APIRouter, reader: WardReader, now: Callable[[], datetime]) -> None:
    @api.post(
        "/alerts/{alert_id}/resolve",
        tags=["alerts"],
        responses={
            404: {"description": "No such alert."},
            409: {"description": "Already resolved."},
        },
    )
    def resolve(alert_id: int, body: ResolveIn) -> AlertOut:
        """Close an alert by hand, saying what happened (a fixed list of outcomes and a note).

        If the condition is still present the rule raises a new alert at its next evaluation;
        an expected abnormal reading needs an override or a pause (docs/policy.md).
        """
        try:
            alert = reader.resolve(
                alert_id, user=body.user, outcome=body.outcome, note=body.note, now=now()
            )
        except NotFoundError:
            raise _not_found(alert_id) from None
        except ConflictError as exc:
            raise HTTPException(409, detail=f"Alert {alert_id}: {exc}.") from None
        logger.info("alert %d resolved by a user", alert_id)
        return AlertOut.of(alert)


def _add_policy_routes(api: APIRouter, store: PolicyStore, now: Callable[[], datetime]) -> None:
    """The alerting policy (GET/PUT) and a patient's overrides with their history."""

    @api.get("/policy", tags=["policy"])
    def get_policy() -> PolicyOut:
        """Return the alerting policy in force: its text, version and every setting."""
        return PolicyOut.of(store.current_policy())

    @api.put(
        "/policy",
        tags=["policy"],
        responses={422: {"model": PolicyRefusedOut, "description": "Refused; policy unchanged."}},
    )
    def put_policy(body: PolicyIn) -> PolicyOut:
        """Replace the alerting policy; a refused text leaves the policy in force unchanged."""
        try:
            stored = store.set_policy(body.text, user=body.user, now=now())
        except PolicyError as exc:
            raise HTTPException(422, detail=PolicyRefusedOut.of(exc).model_dump()) from None
        logger.info("policy version %d set", stored.version)
        return PolicyOut.of(stored)

    def patient_404(patient_id: str) -> HTTPException:
        return HTTPException(404, detail=f"No patient with id {patient_id}.")

    @api.get(
        "/patients/{patient_id}/overrides",
        tags=["policy"],
        responses={404: {"description": "No such patient."}},
    )
    def get_overrides(patient_id: str) -> OverridesOut:
        """Return the patient's overrides in force (defaults when none were ever set)."""
        try:
            record = store.overrides(patient_id)
        except NotFoundError:
            raise patient_404(patient_id) from None
        return OverridesOut.of(patient_id, record, now=now())

    @api.put(
        "/patients/{patient_id}/overrides",
        tags=["policy"],
        responses={
            404: {"description": "No such patient."},
            422: {"description": "Refused (e.g. a pause ending in the past); nothing changed."},
        },
    )
    def put_overrides(patient_id: str, body: OverridesIn) -> OverridesOut:
        """Set the patient's overrides (the whole state) as a named clinician, with a reason."""
        at = now()
        try:
            previous = store.overrides(patient_id)
        except NotFoundError:
            raise patient_404(patient_id) from None
        pause = None
        if body.pause is not None:
            kept = previous.overrides.pause if previous else None
            same = kept is not None and (kept.reason, kept.until) == (
                body.pause.reason,
                body.pause.until,
            )
            # Re-sending the pause in force keeps it as it began; a new one begins now.
            pause = kept if same else Pause(body.pause.reason, at, body.pause.until)
        overrides = Overrides(body.spo2_scale, body.spo2_target_pct, pause)
        try:
            record = store.set_overrides(
                patient_id, overrides, user=body.user, reason=body.reason, now=at
            )
        except NotFoundError:
            raise patient_404(patient_id) from None
        except OverrideError as exc:
            raise HTTPException(422, detail=str(exc)) from None
        # Ids only: the clinician's name and reason are personal data and stay out of the logs.
        logger.info("overrides of patient %s set", patient_id)
        return OverridesOut.of(patient_id, record, now=at)

    @api.get(
        "/patients/{patient_id}/overrides/history",
        tags=["policy"],
        responses={404: {"description": "No such patient."}},
    )
    def get_override_history(patient_id: str) -> list[OverridesOut]:
        """Return every change of the patient's overrides, newest first: who, when and why."""
        try:
            records = store.override_history(patient_id)
        except NotFoundError:
            raise patient_404(patient_id) from None
        at = now()
        # Only the newest change is in force; an older one's pause is history, not "paused".
        return [
            OverridesOut.of(patient_id, r, now=at if i == 0 else None)
            for i, r in enumerate(records)
        ]


def _add_stream_route(api: APIRouter, live: AlertFeed, keepalive: timedelta) -> None:
    @api.get(
        "/stream",
        tags=["alerts"],
        response_class=StreamingResponse,
        responses={
            200: {
                # Each ``alert`` event's data; the other events are described below.
                "content": {"text/event-stream": {"schema": AlertChangeOut.model_json_schema()}},
                "description": "Server-sent events.",
            },
            503: {"description": "The live feed is unavailable; poll /api/alerts instead."},
        },
    )
    async def stream(
        ward: WardQuery = None,
        after: Annotated[
            int | None, Query(ge=0, description="Resume after this change id (Last-Event-ID).")
        ] = None,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    ) -> StreamingResponse:
        """Push every alert change as a server-sent event, as it commits (docs/dashboard.md).

        Events: ``alert`` (``AlertChangeOut``, its ``id`` the SSE id), ``ready`` once caught up,
        ``reset`` when too much was missed to replay, ``status`` when the feed stops or resumes
        hearing the database; a comment every ``keepalive``. A browser reconnecting with
        ``Last-Event-ID`` first receives the changes it missed.
        """
        if last_event_id is not None:
            try:
                after = int(last_event_id)
            except ValueError:
                raise HTTPException(422, detail="Last-Event-ID must be a change id.") from None
        try:
            sub = await run_in_threadpool(live.subscribe, ward=ward, after=after)
        except FeedUnavailableError as exc:
            logger.warning("stream refused: %s", exc)
            raise HTTPException(503, detail="Live alerts are unavailable.") from None
        return StreamingResponse(
            _events(sub, keepalive.total_seconds()),
            media_type="text/event-stream",
            # no-transform and X-Accel-Buffering: a proxy must pass each event on at once.
            headers={"Cache-Control": "no-store, no-transform", "X-Accel-Buffering": "no"},
        )


def _frame(event: str, data: str, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n"


def _alert_frame(change: AlertChange) -> str:
    return _frame("alert", AlertChangeOut.of(change).model_dump_json(), change.id)


async def _events(sub: Subscription, keepalive_s: float) -> AsyncIterator[str]:
    """The stream's text: catch-up, ``ready``, then live changes until the subscription ends.

    Ending the subscription (a full queue, the listener reconnecting, the feed closing) ends the
    response; the browser reconnects by itself and catches up from its Last-Event-ID.
    """
    try:
        yield f"retry: {STREAM_RETRY_MS}\n\n"
        if not sub.complete:
            yield _frame("reset", "{}", sub.head)
        for change in sub.backlog:
            yield _alert_frame(change)
        listening = "true" if sub.listening else "false"
        yield _frame("ready", f'{{"listening": {listening}}}', sub.head)
        while True:
            try:
                item = await sub.get(keepalive_s)
            except SubscriptionClosed as closed:
                logger.info("stream %d ended: %s", sub.number, closed.reason)
                return
            if item is None:
                yield ": keep-alive\n\n"
            elif isinstance(item, ListenerStatus):
                yield _frame("status", f'{{"listening": {"true" if item.listening else "false"}}}')
            else:
                yield _alert_frame(item)
    finally:
        # Also on a client that went away (the response is cancelled): stop queueing for it.
        sub.close()


def _render_page(poll_interval: timedelta, *, stream: bool = False) -> str:
    template = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    poll_ms = max(250, round(poll_interval.total_seconds() * 1000))
    page = template.replace('data-poll-ms="5000"', f'data-poll-ms="{poll_ms}"')
    return page.replace('data-stream="off"', 'data-stream="on"') if stream else page


def _not_found(alert_id: int) -> HTTPException:
    return HTTPException(404, detail=f"No alert with id {alert_id}.")


def _conflict_detail(reader: WardReader, alert_id: int, exc: ConflictError) -> str:
    """Say why the alert cannot be acknowledged, naming who already took it on."""
    taken = [a for a in reader.alerts(AlertState.ACKNOWLEDGED) if a.id == alert_id]
    if taken and taken[0].acknowledged_by is not None:
        alert = taken[0]
        when = alert.acknowledged_at
        at = "" if when is None else f" at {when.astimezone(UTC):%H:%M} UTC"
        return f"Alert {alert_id} was already acknowledged by {alert.acknowledged_by}{at}."
    return f"Alert {alert_id} cannot be acknowledged: {exc}"
