"""The nurses' web page, its JSON API and the operators' health and metrics endpoints.

Everything the app knows comes from a ``WardReader`` (the PostgreSQL store in production, an
in-memory fake in tests) and the injected ``clock``; it holds no state of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Protocol

import prometheus_client
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Response
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from alerts.model import Alert, AlertEvent, AlertState
from dashboard.schema import (
    AckIn,
    AlertEventOut,
    AlertOut,
    HealthOut,
    PatientOut,
    alert_order,
    patient_order,
)
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

    def healthy(self) -> bool:
        """Return whether the database is reachable."""
        ...


def create_app(
    reader: WardReader,
    *,
    registry: prometheus_client.CollectorRegistry,
    clock: Callable[[], datetime],
    stale_after: timedelta = timedelta(minutes=10),
    poll_interval: timedelta = timedelta(seconds=5),
) -> FastAPI:
    """Build the dashboard over ``reader``.

    ``stale_after``: how long without data before a patient's freshness is highlighted.
    ``poll_interval``: how often the page re-reads the API.
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
    page = _render_page(poll_interval)

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


def _render_page(poll_interval: timedelta) -> str:
    template = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    poll_ms = max(250, round(poll_interval.total_seconds() * 1000))
    return template.replace('data-poll-ms="5000"', f'data-poll-ms="{poll_ms}"')


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
