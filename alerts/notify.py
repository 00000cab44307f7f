"""Notification channels: the one place an alert leaves wardwatch (log and webhook for now).

A channel raises ``NotifyError`` with ``recoverable`` saying whether a retry could succeed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import httpx

log = logging.getLogger("wardwatch.notify")


class NotifyError(Exception):
    def __init__(self, message: str, *, recoverable: bool) -> None:
        super().__init__(message)
        self.recoverable = recoverable


@dataclass(frozen=True, slots=True)
class Notice:
    alert_id: int
    recipient: str  # a role: ward nurse, senior clinician, on-call doctor, device team
    body: str


class Channel(Protocol):
    name: str

    def send(self, notice: Notice) -> str:
        """Deliver; return a short outcome for the audit trail, or raise NotifyError."""
        ...


class LogChannel:
    """Writes the notice to the service log (the demo's console): no patient names, ids only."""

    name = "log"

    def send(self, notice: Notice) -> str:
        log.warning("NOTIFY %s: %s", notice.recipient, notice.body)
        return "logged"


class WebhookChannel:
    """POSTs the notice as JSON to a pager or chat gateway (e.g. a Teams/Slack incoming webhook)."""

    name = "webhook"

    def __init__(self, url: str, *, transport: httpx.BaseTransport | None = None) -> None:
        self._url = url
        self._client = httpx.Client(transport=transport, timeout=5.0)

    def send(self, notice: Notice) -> str:
        try:
            response = self._client.post(
                self._url,
                json={
                    "alert_id": notice.alert_id,
                    "recipient": notice.recipient,
                    "text": notice.body,
                },
            )
        except httpx.HTTPError as exc:
            raise NotifyError(
                f"webhook unreachable: {type(exc).__name__}", recoverable=True
            ) from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise NotifyError(f"webhook answered {response.status_code}", recoverable=True)
        if response.status_code >= 400:
            raise NotifyError(f"webhook refused: {response.status_code}", recoverable=False)
        return f"delivered ({response.status_code})"

    def close(self) -> None:
        self._client.close()
