"""The dashboard's HTTP API, page and operator endpoints, over an in-memory ward."""

from __future__ import annotations

import dataclasses
import logging
import threading
import warnings
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import prometheus_client
import pytest

from alerts.escalation import EscalationPolicy
from alerts.model import Alert, AlertEvent, AlertState, Rule, Severity
from alerts.policy import Pause
from alerts.report import Enrolment, Report
from alerts.report import build as build_report
from dashboard.app import NOW_HEADER, WardReader, create_app
from storage.views import BehaviourRisk, ConflictError, NotFoundError, PatientStatus

# Starlette 1.x warns, at import, when its test client runs on httpx instead of httpx2; the
# warning is about our dev dependencies, not the code under test. Once httpx2 is a dev
# dependency this filter matches nothing.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient
NOW = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
LATEST = {"heart_rate": 112.0, "spo2": 93.0, "resp_rate": 23.0, "temperature": 38.4}


class FakeWardReader:
    """An in-memory ``WardReader`` with the store's semantics: ack changes state, 404/409 cases."""

    def __init__(
        self,
        patients: Iterable[PatientStatus] = (),
        alerts: Iterable[Alert] = (),
        events: Iterable[AlertEvent] = (),
    ) -> None:
        self._patients = list(patients)
        self._alerts = {a.id: a for a in alerts}
        self._events: dict[int, list[AlertEvent]] = {alert_id: [] for alert_id in self._alerts}
        for event in events:
            self._events[event.alert_id].append(event)
        self.is_healthy = True
        # The browser tests serve this from uvicorn's thread while the test thread reads it.
        self._lock = threading.Lock()

    def patients(self, ward: str | None = None) -> list[PatientStatus]:
        with self._lock:
            return [p for p in self._patients if ward is None or p.ward == ward]

    def alerts(self, state: AlertState | None = None, ward: str | None = None) -> list[Alert]:
        with self._lock:
            return [
                a
                for a in self._alerts.values()
                if (state is None or a.state is state) and (ward is None or a.ward == ward)
            ]

    def alert_events(self, alert_id: int) -> list[AlertEvent]:
        with self._lock:
            if alert_id not in self._alerts:
                raise NotFoundError(f"alert {alert_id}")
            return list(self._events[alert_id])

    def acknowledge(self, alert_id: int, *, user: str, note: str | None, now: datetime) -> Alert:
        with self._lock:
            alert = self._alerts.get(alert_id)
            if alert is None:
                raise NotFoundError(f"alert {alert_id}")
            if alert.state is not AlertState.OPEN:
                raise ConflictError(f"alert {alert_id} is already {alert.state.value}")
            acked = dataclasses.replace(
                alert,
                state=AlertState.ACKNOWLEDGED,
                acknowledged_by=user,
                acknowledged_at=now,
                updated_at=now,
                next_escalation_at=None,
            )
            self._alerts[alert_id] = acked
            self._events[alert_id].append(
                AlertEvent(alert_id, now, "acknowledged", alert.severity, user, note or "")
            )
            return acked

    def resolve(
        self, alert_id: int, *, user: str, outcome: str, note: str | None, now: datetime
    ) -> Alert:
        with self._lock:
            alert = self._alerts.get(alert_id)
            if alert is None:
                raise NotFoundError(f"alert {alert_id}")
            if alert.state is AlertState.RESOLVED:
                raise ConflictError(f"alert {alert_id} is already resolved")
            done = dataclasses.replace(
                alert,
                state=AlertState.RESOLVED,
                resolved_at=now,
                updated_at=now,
                next_escalation_at=None,
            )
            self._alerts[alert_id] = done
            detail = outcome if not note else f"{outcome}: {note}"
            self._events[alert_id].append(
                AlertEvent(alert_id, now, "resolved", alert.severity, user, detail)
            )
            return done

    def report(self, *, since: datetime, until: datetime, ward: str | None) -> Report:
        """Two patients on the east ward for the whole period, no alerts (the figures' shape)."""
        enrolled = [
            Enrolment(pid, "east", since - timedelta(days=30), None) for pid in ("P1", "P2")
        ]
        return build_report(
            since=since, until=until, enrolments=enrolled, alerts=[], notifications=[],
            policy=EscalationPolicy(),
        )  # fmt: skip

    def healthy(self) -> bool:
        return self.is_healthy

    def add_alert(self, alert: Alert) -> None:
        """Fire an alert, as the rules would (test helper, not part of ``WardReader``)."""
        with self._lock:
            self._alerts[alert.id] = alert
            self._events[alert.id] = []


def patient(
    patient_id: str,
    risk: str | None,
    total: int | None,
    *,
    ward: str = "east",
    missing: tuple[str, ...] = (),
    seen_min_ago: float | None = 1,
    open_alerts: int = 0,
    latest: dict[str, float] = LATEST,
) -> PatientStatus:
    seen = None if seen_min_ago is None else NOW - timedelta(minutes=seen_min_ago)
    return PatientStatus(
        patient_id=patient_id,
        ward=ward,
        device_id=f"dev-{patient_id}",
        news2_total=total,
        news2_risk=risk,
        news2_missing=missing,
        scored_at=None if total is None else seen,
        last_seen_at=seen,
        latest={} if seen is None else dict(latest),
        open_alerts=open_alerts,
    )


def alert(
    alert_id: int,
    patient_id: str,
    severity: Severity,
    state: AlertState = AlertState.OPEN,
    *,
    rule: Rule = Rule.NEWS2,
    ward: str = "east",
    opened_min_ago: float = 5,
    summary: str = "NEWS2 8 (high): RR 2, SpO2 2, HR 2, temp 1",
) -> Alert:
    opened = NOW - timedelta(minutes=opened_min_ago)
    acked = state is AlertState.ACKNOWLEDGED
    return Alert(
        id=alert_id,
        patient_id=patient_id,
        ward=ward,
        rule=rule,
        severity=severity,
        state=state,
        summary=summary,
        opened_at=opened,
        updated_at=opened,
        acknowledged_by="Sister Adams" if acked else None,
        acknowledged_at=NOW - timedelta(minutes=1) if acked else None,
        resolved_at=NOW if state is AlertState.RESOLVED else None,
        escalation_level=1 if state is AlertState.OPEN else 0,
        next_escalation_at=NOW + timedelta(minutes=3) if state is AlertState.OPEN else None,
    )


def sample_ward() -> FakeWardReader:
    """Patients in every risk band, some partial or stale; alerts in every state."""
    return FakeWardReader(
        patients=[
            patient("P-LOW", "low", 1),
            patient("P-STALE", "low", 0, seen_min_ago=40, open_alerts=1),
            patient("P-MED", "medium", 5),
            patient("P-NEW", None, None, seen_min_ago=None),
            patient(
                "P-HIGH",
                "high",
                8,
                missing=("systolic_bp", "consciousness"),
                seen_min_ago=3,
                open_alerts=1,
                latest={**LATEST, "on_oxygen": 1.0},
            ),
            patient("P-LM", "low-medium", 3),
            patient("P-MED6", "medium", 6, open_alerts=1),
            patient("P-WEST", "high", 9, ward="west", open_alerts=1),
        ],
        alerts=[
            alert(1, "P-HIGH", Severity.EMERGENCY),
            alert(
                2,
                "P-MED6",
                Severity.URGENT,
                AlertState.ACKNOWLEDGED,
                summary="NEWS2 6 (medium): RR 2, SpO2 2, HR 2",
            ),
            alert(
                3,
                "P-STALE",
                Severity.TECHNICAL,
                rule=Rule.NO_DATA,
                opened_min_ago=30,
                summary="No data for 30 min",
            ),
            alert(
                4, "P-LOW", Severity.REVIEW, AlertState.RESOLVED, summary="RR 3 in one parameter"
            ),
            alert(
                5, "P-WEST", Severity.REVIEW, ward="west", opened_min_ago=2, summary="SpO2 3 alone"
            ),
            alert(6, "P-MED", Severity.URGENT, opened_min_ago=1, summary="NEWS2 5 (medium)"),
        ],
        events=[
            AlertEvent(1, NOW - timedelta(minutes=5), "fired", Severity.EMERGENCY, None, "NEWS2 8"),
            AlertEvent(
                1, NOW - timedelta(minutes=4), "notified", Severity.EMERGENCY, None, "pager"
            ),
        ],
    )


# A static check that the fake keeps to the Protocol the store implements.
_: type[WardReader] = FakeWardReader


@pytest.fixture
def reader() -> FakeWardReader:
    return sample_ward()


@pytest.fixture
def registry() -> prometheus_client.CollectorRegistry:
    return prometheus_client.CollectorRegistry()


@pytest.fixture
def client(
    reader: FakeWardReader, registry: prometheus_client.CollectorRegistry
) -> Iterator[TestClient]:
    app = create_app(reader, registry=registry, clock=lambda: NOW)
    with TestClient(app) as test_client:
        yield test_client


def ids(rows: list[dict[str, Any]], key: str = "id") -> list[Any]:
    return [row[key] for row in rows]


# ---- patients -----------------------------------------------------------------------------


def test_patients_sorted_by_risk_band_then_score_unscored_last(client: TestClient) -> None:
    resp = client.get("/api/patients")
    assert resp.status_code == 200
    assert ids(resp.json(), "patient_id") == [
        "P-WEST",
        "P-HIGH",
        "P-MED6",
        "P-MED",
        "P-LM",
        "P-LOW",
        "P-STALE",
        "P-NEW",
    ]


def test_patients_filtered_by_ward(client: TestClient) -> None:
    assert ids(client.get("/api/patients", params={"ward": "west"}).json(), "patient_id") == [
        "P-WEST"
    ]
    assert client.get("/api/patients", params={"ward": "nowhere"}).json() == []


def test_patient_carries_every_status_field_and_utc_times(client: TestClient) -> None:
    high = next(p for p in client.get("/api/patients").json() if p["patient_id"] == "P-HIGH")
    assert high == {
        "patient_id": "P-HIGH",
        "ward": "east",
        "device_id": "dev-P-HIGH",
        "news2_total": 8,
        "news2_risk": "high",
        "news2_missing": ["systolic_bp", "consciousness"],
        "scored_at": "2024-03-01T09:27:00Z",
        "last_seen_at": "2024-03-01T09:27:00Z",
        "stale": False,
        "latest": {**LATEST, "on_oxygen": 1.0},
        "open_alerts": 1,
        "behaviour": None,
        "spo2_scale": 1,
        "paused": None,
        "derived": [],
    }


def test_a_patient_with_a_scored_day_shows_its_behaviour_risk_and_reasons() -> None:
    day = BehaviourRisk(
        date(2024, 2, 29),
        71.34,
        True,
        ("resting_hr +9/min (4.5 SD from usual)",),
        ("hrv_rmssd",),
    )
    reader = FakeWardReader(patients=[dataclasses.replace(patient("P1", "low", 0), behaviour=day)])
    app = create_app(reader, registry=prometheus_client.CollectorRegistry(), clock=lambda: NOW)
    with TestClient(app) as client:
        assert client.get("/api/patients").json()[0]["behaviour"] == {
            "day": "2024-02-29",
            "score": 71.3,
            "alarm": True,
            "reasons": ["resting_hr +9/min (4.5 SD from usual)"],
            "learning": ["hrv_rmssd"],
        }


def test_times_in_other_zones_leave_as_utc() -> None:
    plus_one = timezone(timedelta(hours=1))
    seen = NOW.astimezone(plus_one)
    reader = FakeWardReader(
        patients=[dataclasses.replace(patient("P1", "low", 0), last_seen_at=seen)]
    )
    app = create_app(reader, registry=prometheus_client.CollectorRegistry(), clock=lambda: NOW)
    with TestClient(app) as client:
        assert client.get("/api/patients").json()[0]["last_seen_at"] == "2024-03-01T09:30:00Z"


def test_stale_when_silent_longer_than_threshold_or_never_seen(client: TestClient) -> None:
    stale = {p["patient_id"] for p in client.get("/api/patients").json() if p["stale"]}
    assert stale == {"P-STALE", "P-NEW"}


def test_stale_threshold_is_configurable(reader: FakeWardReader) -> None:
    app = create_app(
        reader,
        registry=prometheus_client.CollectorRegistry(),
        clock=lambda: NOW,
        stale_after=timedelta(minutes=2),
    )
    with TestClient(app) as client:
        stale = {p["patient_id"] for p in client.get("/api/patients").json() if p["stale"]}
    assert stale == {"P-STALE", "P-NEW", "P-HIGH"}


def test_api_responses_carry_the_app_clock(client: TestClient) -> None:
    assert client.get("/api/patients").headers[NOW_HEADER] == "2024-03-01T09:30:00Z"
    assert client.get("/api/alerts").headers[NOW_HEADER] == "2024-03-01T09:30:00Z"


# ---- alerts -------------------------------------------------------------------------------


def test_all_alerts_most_severe_first_then_oldest(client: TestClient) -> None:
    assert ids(client.get("/api/alerts").json()) == [1, 2, 6, 4, 5, 3]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"state": "open"}, [1, 6, 5, 3]),
        ({"state": "acknowledged"}, [2]),
        ({"state": "resolved"}, [4]),
        ({"state": "open", "ward": "west"}, [5]),
        ({"ward": "east"}, [1, 2, 6, 4, 3]),
    ],
)
def test_alerts_filtered(client: TestClient, query: dict[str, str], expected: list[int]) -> None:
    resp = client.get("/api/alerts", params=query)
    assert resp.status_code == 200
    assert ids(resp.json()) == expected


def test_alert_fields(client: TestClient) -> None:
    first = client.get("/api/alerts", params={"state": "open"}).json()[0]
    assert first == {
        "id": 1,
        "patient_id": "P-HIGH",
        "ward": "east",
        "rule": "news2",
        "severity": "emergency",
        "state": "open",
        "summary": "NEWS2 8 (high): RR 2, SpO2 2, HR 2, temp 1",
        "opened_at": "2024-03-01T09:25:00Z",
        "updated_at": "2024-03-01T09:25:00Z",
        "acknowledged_by": None,
        "acknowledged_at": None,
        "resolved_at": None,
        "escalation_level": 1,
        "next_escalation_at": "2024-03-01T09:33:00Z",
    }


@pytest.mark.parametrize("severity", list(Severity))
def test_every_severity_has_its_label(severity: Severity) -> None:
    reader = FakeWardReader(alerts=[alert(1, "P1", severity)])
    app = create_app(reader, registry=prometheus_client.CollectorRegistry(), clock=lambda: NOW)
    with TestClient(app) as client:
        assert client.get("/api/alerts").json()[0]["severity"] == severity.label


def test_bad_state_is_422_naming_the_allowed_values(client: TestClient) -> None:
    resp = client.get("/api/alerts", params={"state": "closed"})
    assert resp.status_code == 422
    (error,) = resp.json()["detail"]
    assert error["loc"] == ["query", "state"]
    assert all(word in error["msg"] for word in ("open", "acknowledged", "resolved"))


def test_alert_events_in_order(client: TestClient) -> None:
    resp = client.get("/api/alerts/1/events")
    assert resp.status_code == 200
    assert resp.json() == [
        {
            "alert_id": 1,
            "at": "2024-03-01T09:25:00Z",
            "kind": "fired",
            "severity": "emergency",
            "actor": None,
            "detail": "NEWS2 8",
        },
        {
            "alert_id": 1,
            "at": "2024-03-01T09:26:00Z",
            "kind": "notified",
            "severity": "emergency",
            "actor": None,
            "detail": "pager",
        },
    ]


def test_events_of_unknown_alert_is_404(client: TestClient) -> None:
    resp = client.get("/api/alerts/999/events")
    assert resp.status_code == 404
    assert resp.json() == {"detail": "No alert with id 999."}


# ---- acknowledging ------------------------------------------------------------------------


def test_ack_returns_the_acknowledged_alert_and_records_it(client: TestClient) -> None:
    resp = client.post("/api/alerts/1/ack", json={"user": "  Nurse Patel ", "note": "phoned"})
    assert resp.status_code == 200
    body = resp.json()
    assert body["id"] == 1
    assert body["state"] == "acknowledged"
    assert body["acknowledged_by"] == "Nurse Patel"
    assert body["acknowledged_at"] == "2024-03-01T09:30:00Z"
    assert 1 not in ids(client.get("/api/alerts", params={"state": "open"}).json())
    assert 1 in ids(client.get("/api/alerts", params={"state": "acknowledged"}).json())
    last = client.get("/api/alerts/1/events").json()[-1]
    assert (last["kind"], last["actor"], last["detail"]) == (
        "acknowledged",
        "Nurse Patel",
        "phoned",
    )


@pytest.mark.parametrize("note", [None, "", "   "])
def test_ack_without_a_note(client: TestClient, reader: FakeWardReader, note: str | None) -> None:
    payload = {"user": "Nurse Patel"} if note is None else {"user": "Nurse Patel", "note": note}
    assert client.post("/api/alerts/1/ack", json=payload).status_code == 200
    assert reader.alert_events(1)[-1].detail == ""


def test_ack_unknown_alert_is_404(client: TestClient) -> None:
    resp = client.post("/api/alerts/999/ack", json={"user": "Nurse Patel"})
    assert resp.status_code == 404
    assert resp.json() == {"detail": "No alert with id 999."}


def test_ack_resolved_alert_is_409(client: TestClient) -> None:
    resp = client.post("/api/alerts/4/ack", json={"user": "Nurse Patel"})
    assert resp.status_code == 409
    assert resp.json() == {"detail": "Alert 4 cannot be acknowledged: alert 4 is already resolved"}


def test_ack_twice_is_409_naming_who_took_it(client: TestClient) -> None:
    assert client.post("/api/alerts/1/ack", json={"user": "Nurse Patel"}).status_code == 200
    resp = client.post("/api/alerts/1/ack", json={"user": "Nurse Jones"})
    assert resp.status_code == 409
    assert resp.json() == {
        "detail": "Alert 1 was already acknowledged by Nurse Patel at 09:30 UTC."
    }


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"user": ""},
        {"user": "   "},
        {"user": "x" * 101},
        {"user": None},
        {"user": 42},
        {"user": "Nurse Patel", "note": "x" * 1001},
        {"user": "Nurse Patel", "surname": "Patel"},
    ],
)
def test_ack_rejects_bad_bodies(
    client: TestClient, reader: FakeWardReader, payload: dict[str, Any]
) -> None:
    resp = client.post("/api/alerts/1/ack", json=payload)
    assert resp.status_code == 422
    assert resp.json()["detail"]
    assert reader.alerts(AlertState.OPEN)[0].id == 1  # nothing changed


def test_ack_accepts_a_100_character_name(client: TestClient) -> None:
    name = "x" * 100
    resp = client.post("/api/alerts/1/ack", json={"user": f" {name} "})
    assert resp.status_code == 200
    assert resp.json()["acknowledged_by"] == name


def test_ack_rejects_a_body_that_is_not_json(client: TestClient) -> None:
    resp = client.post(
        "/api/alerts/1/ack", content=b"user=x", headers={"Content-Type": "text/plain"}
    )
    assert resp.status_code == 422


def test_ack_logs_ids_not_names_or_notes(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        client.post("/api/alerts/1/ack", json={"user": "Nurse Patel", "note": "spoke to wife"})
        client.post("/api/alerts/1/ack", json={"user": "Nurse Jones"})
    assert "alert 1 acknowledged" in caplog.text
    for personal in ("Patel", "Jones", "wife", "P-HIGH"):
        assert personal not in caplog.text


# ---- operations ---------------------------------------------------------------------------


def test_healthz_ok(client: TestClient) -> None:
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.json()["status"] == "ok"


def test_healthz_degraded_when_database_unreachable(
    client: TestClient, reader: FakeWardReader
) -> None:
    reader.is_healthy = False
    resp = client.get("/healthz")
    assert resp.status_code == 503
    assert resp.json() == {"status": "degraded", "database": "unreachable"}


def test_healthz_degraded_when_the_check_itself_fails(
    client: TestClient, reader: FakeWardReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse() -> bool:
        raise ConnectionRefusedError

    monkeypatch.setattr(reader, "healthy", refuse)
    resp = client.get("/healthz")
    assert resp.status_code == 503
    assert resp.json()["status"] == "degraded"


def test_metrics_exposes_the_given_registry(
    client: TestClient, registry: prometheus_client.CollectorRegistry
) -> None:
    counter = prometheus_client.Counter(
        "wardwatch_test_readings", "Readings seen by the test.", registry=registry
    )
    counter.inc(3)
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == prometheus_client.CONTENT_TYPE_LATEST
    assert "# TYPE wardwatch_test_readings_total counter" in resp.text
    assert "wardwatch_test_readings_total 3.0" in resp.text


# ---- the page -----------------------------------------------------------------------------


def test_page_is_served_with_its_assets_and_a_strict_policy(client: TestClient) -> None:
    resp = client.get("/")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in resp.headers["content-security-policy"]
    assert 'data-poll-ms="5000"' in resp.text
    for asset in ("/static/dashboard.js", "/static/dashboard.css"):
        assert asset in resp.text
        assert client.get(asset).status_code == 200
    assert "http://" not in resp.text
    assert "https://" not in resp.text  # no CDN: the ward's machines may have no internet


def test_poll_interval_is_configurable(reader: FakeWardReader) -> None:
    app = create_app(
        reader,
        registry=prometheus_client.CollectorRegistry(),
        clock=lambda: NOW,
        poll_interval=timedelta(seconds=2.5),
    )
    with TestClient(app) as client:
        assert 'data-poll-ms="2500"' in client.get("/").text


def test_openapi_documents_the_api(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"]) == {
        "/api/patients",
        "/api/alerts",
        "/api/alerts/{alert_id}/events",
        "/api/alerts/{alert_id}/ack",
        "/api/alerts/{alert_id}/resolve",
        "/api/report",
        "/healthz",
        "/metrics",
    }
    schemas = spec["components"]["schemas"]
    assert {"PatientOut", "AlertOut", "AlertEventOut", "AckIn", "HealthOut"} <= set(schemas)
    assert schemas["AlertOut"]["properties"]["severity"]["enum"] == [
        "technical",
        "review",
        "urgent",
        "emergency",
    ]


def test_no_interactive_docs_that_would_need_a_cdn(client: TestClient) -> None:
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404


def test_a_user_resolves_an_alert_with_an_outcome(client: TestClient) -> None:
    open_ids = [a["id"] for a in client.get("/api/alerts", params={"state": "open"}).json()]
    alert_id = open_ids[0]
    r = client.post(
        f"/api/alerts/{alert_id}/resolve",
        json={"user": "Dr Shah", "outcome": "managed at home", "note": "antibiotics started"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "resolved"
    history = client.get(f"/api/alerts/{alert_id}/events").json()
    assert history[-1]["kind"] == "resolved"
    assert history[-1]["actor"] == "Dr Shah"
    assert history[-1]["detail"] == "managed at home: antibiotics started"
    again = client.post(
        f"/api/alerts/{alert_id}/resolve", json={"user": "Dr Shah", "outcome": "other"}
    )
    assert again.status_code == 409
    assert "already resolved" in again.json()["detail"]
    bad = client.post(
        f"/api/alerts/{open_ids[1]}/resolve", json={"user": "Dr Shah", "outcome": "fine"}
    )
    assert bad.status_code == 422
    assert "must be one of: managed at home" in bad.text
    missing = client.post("/api/alerts/999999/resolve", json={"user": "x", "outcome": "other"})
    assert missing.status_code == 404


def test_the_report_covers_the_last_week_by_default_and_refuses_an_empty_period(
    client: TestClient,
) -> None:
    body = client.get("/api/report").json()
    assert body["until"] == NOW.isoformat()
    assert body["since"] == (NOW - timedelta(days=7)).isoformat()
    (east,) = body["wards"]
    assert east["ward"] == "east"
    assert east["patient_days"] == 14.0  # two patients, seven days
    empty = client.get("/api/report", params={"since": NOW.isoformat(), "until": NOW.isoformat()})
    assert empty.status_code == 422
    assert "the period is empty" in empty.json()["detail"]


def test_a_pause_in_force_and_the_spo2_scale_are_shown_an_ended_pause_is_not() -> None:
    now_pause = Pause(
        "admitted for a procedure", NOW - timedelta(hours=1), NOW + timedelta(hours=5)
    )
    ended = Pause("ended", NOW - timedelta(days=2), NOW - timedelta(days=1))
    reader = FakeWardReader(
        patients=[
            dataclasses.replace(patient("P1", "low", 0), pause=now_pause, spo2_scale=2),
            dataclasses.replace(patient("P2", "low", 0), pause=ended),
        ]
    )
    app = create_app(reader, registry=prometheus_client.CollectorRegistry(), clock=lambda: NOW)
    with TestClient(app) as client:
        got = {p["patient_id"]: p for p in client.get("/api/patients").json()}
    assert got["P1"]["paused"] == {
        "reason": "admitted for a procedure",
        "since": "2024-03-01T08:30:00Z",
        "until": "2024-03-01T14:30:00Z",
    }
    assert got["P1"]["spo2_scale"] == 2
    assert got["P2"]["paused"] is None
