"""The nurses' page in a real headless Chromium, against the real API over the in-memory ward.

Uses Debian's chromium (``/usr/bin/chromium``): Playwright's own browser download needs the
internet, which the ward's build machines do not have. Set ``WARDWATCH_SCREENSHOT`` to a path to
keep a screenshot of the page for a human to look at.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import prometheus_client
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from alerts.model import AlertState, Severity
from alerts.policy import Pause
from dashboard.app import create_app
from dashboard.server import ServerHandle, serve_in_thread
from storage.views import BehaviourRisk
from tests.unit.test_dashboard import NOW, FakeWardReader, alert, sample_ward

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EAST_BY_RISK = ["P-HIGH", "P-MED6", "P-MED", "P-LM", "P-LOW", "P-STALE", "P-NEW"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} not found: install Debian's chromium (make test does it), "
            "e.g. `apt-get install chromium`",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def reader() -> FakeWardReader:
    return sample_ward()


@pytest.fixture
def server(reader: FakeWardReader) -> Iterator[ServerHandle]:
    app = create_app(
        reader,
        registry=prometheus_client.CollectorRegistry(),
        clock=lambda: NOW,
        poll_interval=timedelta(milliseconds=300),
    )
    handle = serve_in_thread(app, "127.0.0.1", 0)
    yield handle
    handle.stop()


@pytest.fixture
def expected_console_errors() -> list[str]:
    """Fragments of browser console errors a test expects (none unless it adds some)."""
    return []


@pytest.fixture
def page(
    browser: Browser, server: ServerHandle, expected_console_errors: list[str]
) -> Iterator[Page]:
    # Depends on the server so that the page closes before the server stops under it.
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="en-GB")
    opened = context.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    opened.on("console", on_console)
    opened.on("pageerror", lambda error: problems.append(str(error)))
    yield opened
    context.close()
    # A script error or a Content-Security-Policy violation shows up here.
    unexpected = [p for p in problems if not any(e in p for e in expected_console_errors)]
    assert unexpected == []


def screenshot(page: Page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    keep = os.environ.get("WARDWATCH_SCREENSHOT")
    if keep:
        shutil.copyfile(path, keep)
    return path


def test_patients_in_risk_order_with_partial_scores_marked(
    page: Page, server: ServerHandle, tmp_path: Path
) -> None:
    page.goto(f"{server.url}/?ward=east")
    rows = page.locator("#patients tbody tr")
    expect(rows).to_have_count(len(EAST_BY_RISK))
    assert rows.evaluate_all("rows => rows.map(r => r.dataset.patientId)") == EAST_BY_RISK

    high = page.locator('tr[data-patient-id="P-HIGH"]')
    expect(high).to_contain_text("High")  # the risk in words, not only in red
    expect(high).to_contain_text("incomplete: no BP, consciousness")
    expect(high).to_contain_text("last seen 3 min ago")
    expect(high).to_contain_text("on O2")  # SpO2 on supplemental oxygen scores differently
    expect(page.locator('tr[data-patient-id="P-LOW"] .incomplete')).to_have_count(0)
    expect(page.locator('tr[data-patient-id="P-STALE"] .freshness')).to_contain_text(
        "Stale last seen 40 min ago"
    )
    expect(page.locator('tr[data-patient-id="P-NEW"]')).to_contain_text("Not scored")
    expect(page.locator("#ward-title")).to_have_text("Virtual ward: east")
    expect(page.locator("#connection")).to_contain_text("Live")
    assert screenshot(page, tmp_path, "patients").stat().st_size > 0


def test_the_trend_column_shows_behaviour_risk_with_its_reasons(
    page: Page, server: ServerHandle, reader: FakeWardReader
) -> None:
    scored = {
        "P-LOW": BehaviourRisk(
            date(2024, 2, 29), 71.4, True, ("resting_hr +9/min (4.5 SD from usual)",), ()
        ),
        "P-MED": BehaviourRisk(date(2024, 2, 29), 0.0, False, (), ("resting_hr",)),
    }
    # The fake's own data, changed before the page first loads.
    reader._patients = [
        dataclasses.replace(p, behaviour=scored.get(p.patient_id)) for p in reader._patients
    ]
    page.goto(f"{server.url}/?ward=east")
    low = page.locator('tr[data-patient-id="P-LOW"] .behaviour')
    expect(low).to_contain_text("71 sustained")
    expect(low).to_contain_text("resting_hr +9/min (4.5 SD from usual)")
    expect(low.locator(".badge.sev-review")).to_have_count(1)
    expect(page.locator('tr[data-patient-id="P-MED"] .behaviour')).to_contain_text(
        "learning: resting_hr"
    )
    expect(page.locator('tr[data-patient-id="P-HIGH"] .behaviour')).to_have_text("Not scored yet")


def test_a_notification_link_marks_its_patient(page: Page, server: ServerHandle) -> None:
    page.goto(f"{server.url}/?ward=east&patient=P-MED6")
    expect(page.locator('#patients tr[data-patient-id="P-MED6"]')).to_have_class(
        re.compile(r"\bis-focus\b")
    )
    expect(page.locator("#patients tr.is-focus")).to_have_count(1)
    expect(page.locator("#alerts tr.is-focus")).to_have_count(1)  # P-MED6's one alert
    expect(page.locator('#patients tr[data-patient-id="P-MED6"]')).to_be_in_viewport()


def test_a_paused_patient_and_a_scale_2_patient_say_so(
    page: Page, server: ServerHandle, reader: FakeWardReader
) -> None:
    pause = Pause("admitted for a procedure", NOW - timedelta(hours=1), NOW + timedelta(hours=5))
    reader._patients = [
        dataclasses.replace(p, pause=pause, spo2_scale=2) if p.patient_id == "P-LOW" else p
        for p in reader._patients
    ]
    page.goto(f"{server.url}/?ward=east")
    low = page.locator('tr[data-patient-id="P-LOW"]')
    expect(low.locator(".paused-badge")).to_contain_text(
        "Alerts paused until 1 Mar, 14:30: admitted for a procedure"
    )
    expect(low).to_contain_text("SpO2 scale 2")
    expect(page.locator(".paused-badge")).to_have_count(1)


def test_a_derived_breathing_rate_says_where_it_came_from(
    page: Page, server: ServerHandle, reader: FakeWardReader
) -> None:
    reader._patients = [
        dataclasses.replace(p, derived=("resp_rate",)) if p.patient_id == "P-LOW" else p
        for p in reader._patients
    ]
    page.goto(f"{server.url}/?ward=east")
    expect(page.locator('tr[data-patient-id="P-LOW"]')).to_contain_text("from PPG")
    expect(page.locator('tr[data-patient-id="P-MED"]')).not_to_contain_text("from PPG")
    expect(page.locator('tr[data-patient-id="P-LOW"]')).not_to_contain_text("from waveform")


def test_a_derived_heart_rate_says_it_was_derived(
    page: Page, server: ServerHandle, reader: FakeWardReader
) -> None:
    reader._patients = [
        dataclasses.replace(p, derived=("heart_rate",)) if p.patient_id == "P-MED" else p
        for p in reader._patients
    ]
    page.goto(f"{server.url}/?ward=east")
    expect(page.locator('tr[data-patient-id="P-MED"]')).to_contain_text("from waveform")
    expect(page.locator('tr[data-patient-id="P-MED"]')).not_to_contain_text("from PPG")
    expect(page.locator('tr[data-patient-id="P-LOW"]')).not_to_contain_text("from waveform")


def test_without_a_ward_every_ward_is_listed(page: Page, server: ServerHandle) -> None:
    page.goto(server.url)
    expect(page.locator("#ward-title")).to_have_text("All virtual wards")
    rows = page.locator("#patients tbody tr")
    expect(rows).to_have_count(len(EAST_BY_RISK) + 1)
    expect(rows.first.locator(".pid")).to_have_text("P-WEST")
    expect(rows.first.locator(".sub").first).to_have_text("west")  # named when wards mix
    expect(page.locator('#alerts tr[data-alert-id="5"]')).to_contain_text("SpO2 3 alone")


def test_open_alert_is_shown_and_acknowledged_by_the_named_nurse(
    page: Page, server: ServerHandle, reader: FakeWardReader, tmp_path: Path
) -> None:
    page.goto(f"{server.url}/?ward=east")
    row = page.locator('#alerts tr[data-alert-id="1"]')
    for text in ("Emergency", "P-HIGH", "NEWS2 8 (high)", "5 min ago", "Level 1", "Open"):
        expect(row).to_contain_text(text)
    expect(row).not_to_contain_text("null")
    expect(page.locator('#alerts tr[data-alert-id="2"]')).to_contain_text("by Sister Adams")
    screenshot(page, tmp_path, "before-ack")

    page.get_by_label("Your name").fill("Nurse Patel")
    row.get_by_label("Note").fill("phoned patient")
    row.get_by_role("button", name="Acknowledge").click()

    expect(row).to_contain_text("Acknowledged")
    expect(row).to_contain_text("by Nurse Patel")
    expect(row.get_by_role("button")).to_have_count(0)
    expect(page.locator("#message")).to_contain_text("acknowledged by Nurse Patel")
    (acked,) = [a for a in reader.alerts(AlertState.ACKNOWLEDGED) if a.id == 1]
    assert acked.acknowledged_by == "Nurse Patel"
    assert reader.alert_events(1)[-1].detail == "phoned patient"
    screenshot(page, tmp_path, "after-ack")

    page.reload()  # the name is remembered on this computer
    expect(page.get_by_label("Your name")).to_have_value("Nurse Patel")


def test_acknowledging_without_a_name_asks_for_it(
    page: Page, server: ServerHandle, reader: FakeWardReader
) -> None:
    page.goto(f"{server.url}/?ward=east")
    row = page.locator('#alerts tr[data-alert-id="1"]')
    row.get_by_role("button", name="Acknowledge").click()
    expect(page.locator("#message")).to_contain_text("Enter your name")
    expect(page.get_by_label("Your name")).to_be_focused()
    assert 1 in [a.id for a in reader.alerts(AlertState.OPEN)]


def test_new_alerts_appear_and_are_announced_without_reload(
    page: Page, server: ServerHandle, reader: FakeWardReader
) -> None:
    page.goto(f"{server.url}/?ward=east")
    expect(page.locator("#alerts tbody tr")).to_have_count(4)
    reader.add_alert(alert(7, "P-LM", Severity.URGENT, summary="NEWS2 5 (medium)"))
    expect(page.locator('#alerts tr[data-alert-id="7"]')).to_contain_text("NEWS2 5 (medium)")
    expect(page.locator("#announcer")).to_have_attribute("aria-live", "assertive")
    expect(page.locator("#announcer")).to_contain_text(
        "New Urgent alert, patient P-LM: NEWS2 5 (medium)"
    )


def test_a_lost_connection_is_shown(
    page: Page, server: ServerHandle, expected_console_errors: list[str]
) -> None:
    expected_console_errors.append("Failed to load resource: net::ERR_")
    page.goto(f"{server.url}/?ward=east")
    expect(page.locator("#connection")).to_contain_text("Live")
    server.stop()
    expect(page.locator("#connection")).to_contain_text("NOT UPDATING")
    expect(page.locator("#patients tbody tr")).to_have_count(len(EAST_BY_RISK))  # data kept
