"""The nurses' page in headless Chromium over the real service: PostgreSQL, pipeline, escalation.

A deteriorating patient's readings go through the real pipeline; the nurse sees the patient at
the top of the ward with a partial score, acknowledges the alert on the page, and the database
records who did it.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg
import pytest
from playwright.sync_api import Browser, expect

from ingest.mqtt import MqttEndpoint, make_client
from storage import alerts as alert_store
from storage import assignments
from tests.browser.test_dashboard_browser import browser  # noqa: F401 - the shared fixture
from wardwatch.service import Options, running
from wardwatch.settings import Settings

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def _publish(mqtt_url: str, device: str, samples: list[dict[str, object]]) -> None:
    endpoint = MqttEndpoint.from_url(mqtt_url)
    client = make_client(endpoint)
    client.connect(endpoint.host, endpoint.port)
    client.loop_start()
    try:
        topic = f"wardwatch/v1/devices/{device}/vitals"
        client.publish(topic, orjson.dumps(samples), qos=1).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()


@pytest.fixture
def ward(database_url: str, uid: str) -> tuple[str, str]:
    since = datetime.now(UTC) - timedelta(hours=2)
    with psycopg.connect(database_url) as conn:
        for n in ("1", "2"):
            assignments.enrol(
                conn,
                device_id=f"dev-{uid}-{n}",
                patient_id=f"pt-{uid}-{n}",
                ward="ward-b",
                valid_from=since,
            )
    return f"dev-{uid}-1", f"dev-{uid}-2"


def test_nurse_acknowledges_a_real_alert_in_the_browser(
    browser: Browser,  # noqa: F811
    mqtt_url: str,
    database_url: str,
    uid: str,
    ward: tuple[str, str],
) -> None:
    sick_device, well_device = ward
    now = datetime.now(UTC).replace(microsecond=0)
    settings = Settings(mqtt_url, database_url, "127.0.0.1", 0)
    options = Options(client_id=f"ingest-{uid}", dispatch_tick_s=0.2)
    with running(settings, options) as svc:
        _publish(
            mqtt_url,
            well_device,
            [
                {
                    "ts": (now - timedelta(minutes=1)).isoformat(),
                    "heart_rate": 72,
                    "spo2": 97,
                    "resp_rate": 15,
                    "temperature": 36.8,
                }
            ],
        )
        _publish(
            mqtt_url,
            sick_device,
            [
                {
                    "ts": (now - timedelta(minutes=1)).isoformat(),
                    "heart_rate": 128,
                    "spo2": 90,
                    "resp_rate": 28,
                    "temperature": 39.3,
                }
            ],
        )
        deadline = time.monotonic() + 30
        alert = None
        while alert is None and time.monotonic() < deadline:
            with psycopg.connect(database_url) as conn:
                found = alert_store.list_alerts(conn)
            alert = found[0] if found else None
            time.sleep(0.2)
        assert alert is not None, "the pipeline raised no alert"

        context = browser.new_context()
        page = context.new_page()
        page.goto(svc.dashboard_url + "/?ward=ward-b")
        rows = page.locator("#patients tbody tr")
        expect(rows).to_have_count(2)
        first = rows.first
        expect(first).to_contain_text(f"pt-{uid}-1")
        expect(first).to_contain_text("High")
        expect(first.locator(".incomplete")).to_contain_text("BP")  # the watch has no cuff
        row = page.locator(f'#alerts tr[data-alert-id="{alert.id}"]')
        expect(row).to_contain_text("NEWS2")
        page.get_by_label("Your name").fill("Charge Nurse Obi")
        row.get_by_role("button", name="Acknowledge").click()
        expect(row).to_contain_text("Charge Nurse Obi")
        shot = os.environ.get("WARDWATCH_SCREENSHOT")
        if shot:
            page.screenshot(path=Path(shot), full_page=True)
        context.close()

    with psycopg.connect(database_url) as conn:
        (after,) = alert_store.list_alerts(conn)
        kinds = [e.kind for e in alert_store.events(conn, after.id)]
    assert after.acknowledged_by == "Charge Nurse Obi"
    assert kinds[:1] == ["fired"]
    assert "acknowledged" in kinds
