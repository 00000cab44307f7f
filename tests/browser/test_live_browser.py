"""Alerts pushed to the nurses' page in real headless Chromium, from the real PostgreSQL feed.

The page polls only once a minute here, so an alert that appears within seconds can only have
come through the stream (``GET /api/stream``, server-sent events).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import prometheus_client
import psycopg
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect
from psycopg_pool import ConnectionPool

from alerts.escalation import EscalationPolicy
from alerts.lifecycle import Fire
from alerts.model import Condition, Rule, Severity
from dashboard.app import create_app
from dashboard.server import ServerHandle, serve_in_thread
from storage import alerts as alert_store
from storage.live import LiveAlerts
from storage.ward import PostgresWard
from tests.browser.test_dashboard_browser import browser  # noqa: F401 - the shared fixture

pytestmark = [pytest.mark.browser, pytest.mark.integration]

POLL = timedelta(seconds=60)
PUSHED_WITHIN_MS = 5000  # well under the poll interval
Pool = ConnectionPool[psycopg.Connection[tuple[object, ...]]]


@pytest.fixture
def pool(database_url: str) -> Iterator[Pool]:
    with ConnectionPool(database_url, min_size=1, max_size=4, open=True) as p:
        yield p


@pytest.fixture
def live(database_url: str, pool: Pool) -> Iterator[LiveAlerts]:
    feed = LiveAlerts(database_url, pool)
    feed.start()
    yield feed
    feed.close()


@pytest.fixture
def server(pool: Pool, live: LiveAlerts) -> Iterator[ServerHandle]:
    app = create_app(
        PostgresWard(pool),
        registry=prometheus_client.CollectorRegistry(),
        clock=lambda: datetime.now(UTC),
        poll_interval=POLL,
        live=live,
    )
    handle = serve_in_thread(app, "127.0.0.1", 0)
    yield handle
    live.close()  # ends the pages' streams, so that the server can stop
    handle.stop()


@pytest.fixture
def console_errors() -> list[str]:
    return []


@pytest.fixture
def new_page(
    browser: Browser,  # noqa: F811
    server: ServerHandle,
    console_errors: list[str],
) -> Iterator[list[Page]]:
    """Pages opened with ``open_page``; a script error or CSP violation fails the test."""
    pages: list[Page] = []
    yield pages
    for page in pages:
        page.context.close()
    # A 503 for a refused stream is expected where a test closes the feed (it says so).
    assert [e for e in console_errors if "503" not in e] == []


def open_page(
    browser: Browser,  # noqa: F811
    pages: list[Page],
    errors: list[str],
    url: str,
) -> Page:
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="en-GB")
    page = context.new_page()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    pages.append(page)
    page.goto(url)
    # Stream open and caught up; let the refresh its ready event triggers finish, so that
    # nothing but the next pushed event can redraw the alerts.
    expect(page.locator("#connection")).to_have_attribute("data-stream", "live")
    expect(page.locator("#connection")).to_contain_text("new alerts appear instantly")
    page.wait_for_timeout(500)
    return page


def fire(database_url: str, patient_id: str, ward: str) -> int:
    with psycopg.connect(database_url) as conn, conn.transaction():
        outcome = alert_store.apply(
            conn,
            Fire(Condition(patient_id, Rule.NEWS2, Severity.URGENT, "NEWS2 6 (medium)")),
            ward=ward,
            now=datetime.now(UTC),
            policy=EscalationPolicy(),
            channels=("log",),
        )
    return outcome.alert_id


def test_a_new_alert_appears_at_once_and_an_ack_reaches_the_other_nurse(
    browser: Browser,  # noqa: F811
    server: ServerHandle,
    new_page: list[Page],
    console_errors: list[str],
    database_url: str,
    uid: str,
) -> None:
    east = open_page(browser, new_page, console_errors, f"{server.url}/?ward=east")
    everyone = open_page(browser, new_page, console_errors, server.url)
    expect(east.locator("#no-alerts")).to_be_visible()

    alert_id = fire(database_url, f"pt-{uid}", "east")
    row = east.locator(f'#alerts tr[data-alert-id="{alert_id}"]')
    expect(row).to_contain_text("Urgent", timeout=PUSHED_WITHIN_MS)
    expect(row).to_contain_text(f"pt-{uid}")
    expect(row).to_contain_text("Open")
    expect(east.locator("#announcer")).to_contain_text(f"New Urgent alert, patient pt-{uid}")
    other = everyone.locator(f'#alerts tr[data-alert-id="{alert_id}"]')
    expect(other).to_contain_text("Open", timeout=PUSHED_WITHIN_MS)

    east.get_by_label("Your name").fill("Nurse Patel")
    row.get_by_role("button", name="Acknowledge").click()
    expect(row).to_contain_text("by Nurse Patel")
    # The other nurse's page was told by the stream, not by its next poll a minute away.
    expect(other).to_contain_text("by Nurse Patel", timeout=PUSHED_WITHIN_MS)


def test_a_lost_stream_is_said_and_polling_carries_on(
    browser: Browser,  # noqa: F811
    server: ServerHandle,
    live: LiveAlerts,
    new_page: list[Page],
    console_errors: list[str],
) -> None:
    page = open_page(browser, new_page, console_errors, f"{server.url}/?ward=east")
    live.close()  # the stream ends; reconnecting is refused (503)
    connection = page.locator("#connection")
    expect(connection).to_have_attribute("data-stream", "down")
    expect(connection).to_contain_text("instant alerts unavailable: checking every 1 min")
    expect(connection).not_to_contain_text("Live")
    expect(connection).to_have_class("connection degraded")
