"""Simulator → Mosquitto → ingest → PostgreSQL → NEWS2 → alert → dashboard API → acknowledgement.

One deteriorating patient's alert is acknowledged through the API; the other's is not, and it
escalates to the next tier once the (injected) clock passes its deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from alerts.escalation import EscalationPolicy
from simulator import make_ward, simulate
from wardwatch.demo import enrol_ward
from wardwatch.service import Options, running
from wardwatch.settings import Settings

pytestmark = pytest.mark.integration


class Clock:
    """Wall time plus an offset the test can advance (escalation runs on this clock)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return datetime.now(UTC) + self.offset

    def advance(self, by: timedelta) -> None:
        with self._lock:
            self.offset += by


def _until(what: str, check: Callable[[], Any], timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}")


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def test_deteriorating_patient_alert_reaches_the_nurse(
    mqtt_url: str, database_url: str, uid: str
) -> None:
    ward = make_ward(2, seed=11, scenario="deteriorating", ward="ward-e2e")
    enrol_ward(database_url, ward, datetime.now(UTC) - timedelta(days=1))
    clock = Clock()
    options = Options(
        client_id=f"ingest-{uid}",
        escalation=EscalationPolicy(),
        escalation_tick_s=0.2,
        dispatch_tick_s=0.2,
    )
    settings = Settings(mqtt_url, database_url, "127.0.0.1", 0)
    with (
        running(settings, options, clock=clock) as svc,
        httpx.Client(base_url=svc.dashboard_url, timeout=10) as api,
    ):
        assert api.get("/healthz").json()["status"] == "ok"
        # 15 s of wall time at 1800x: 7.5 simulated hours, past every patient's deterioration.
        stats = simulate(
            ward, mqtt_url=mqtt_url, speed=1800, minutes=0.25, seed=3, stop=threading.Event()
        )
        assert stats.messages > 0

        def emergencies() -> list[dict[str, Any]]:
            alerts = api.get("/api/alerts", params={"state": "open"}).json()
            found = [a for a in alerts if a["rule"] == "news2" and a["severity"] == "emergency"]
            return found if len(found) == 2 else []

        first, second = sorted(
            _until("an emergency alert for each patient", emergencies),
            key=lambda a: a["patient_id"],
        )
        assert {first["patient_id"], second["patient_id"]} == {p.patient_id for p in ward}
        assert "NEWS2" in first["summary"]

        patients = api.get("/api/patients").json()
        assert [p["news2_risk"] for p in patients] == ["high", "high"]
        assert all(
            "systolic_bp" in p["news2_missing"] or p["latest"].get("systolic_bp") for p in patients
        )

        acked = api.post(
            f"/api/alerts/{first['id']}/ack",
            json={"user": "Nurse Adeyemi", "note": "phoned patient"},
        )
        assert acked.status_code == 200, acked.text
        assert acked.json()["state"] == "acknowledged"
        assert acked.json()["acknowledged_by"] == "Nurse Adeyemi"
        again = api.post(f"/api/alerts/{first['id']}/ack", json={"user": "Someone Else"})
        assert again.status_code == 409

        # Nobody answers the second alert: past the emergency tier's 5 minutes it escalates.
        clock.advance(timedelta(minutes=6))

        def escalated() -> list[dict[str, Any]]:
            events = api.get(f"/api/alerts/{second['id']}/events").json()
            return [e for e in events if e["kind"] == "escalated"]

        (escalation,) = _until("the unacknowledged alert to escalate", escalated)
        assert "senior clinician" in escalation["detail"]
        time.sleep(1)  # a few more ticks: the acknowledged alert must stay quiet
        kinds = [e["kind"] for e in api.get(f"/api/alerts/{first['id']}/events").json()]
        assert "acknowledged" in kinds
        assert "escalated" not in kinds
        raised = _samples(api.get("/metrics").text, "wardwatch_alerts_raised_total")
        assert sum(raised.values()) >= 2  # one per patient, at whatever severity it first fired
        stored = _samples(api.get("/metrics").text, "wardwatch_readings_stored_total")
        assert stored[()] >= stats.samples  # one row per metric: more rows than samples
        _until(
            "notifications delivered",
            lambda: 'wardwatch_notifications_sent_total{channel="log"}' in api.get("/metrics").text,
        )
