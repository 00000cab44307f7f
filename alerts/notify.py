"""Notification channels: the one place an alert leaves wardwatch (log, e-mail, webhook, MQTT).

A channel raises ``NotifyError`` with ``recoverable`` saying whether a retry could succeed: a
timeout, a refused connection, an HTTP 5xx or 429, an SMTP 4xx are worth retrying; an HTTP 4xx,
an SMTP 5xx or refused credentials are not, and go to the dead letter at once. Every channel
gives up on one attempt within a few seconds, so a channel that is down cannot hold up others.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import smtplib
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Protocol

import httpx
import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from alerts.model import Severity

log = logging.getLogger("wardwatch.notify")

#: Seconds one attempt may take before it counts as a (recoverable) failure.
DEFAULT_TIMEOUT_S = 5.0
SIGNATURE_HEADER = "X-Wardwatch-Signature"
TIMESTAMP_HEADER = "X-Wardwatch-Timestamp"
DEFAULT_ALERT_TOPIC = "wardwatch/v1/alerts/{ward}"
# MQTT v5 reason codes (MQTT 5 §3.2.2.2, §3.4.2.1) that no retry will change.
_REFUSED_FOR_GOOD = frozenset({0x84, 0x85, 0x86, 0x87, 0x8A, 0x8C, 0x90, 0x95, 0x99})


def _utc_now() -> datetime:
    return datetime.now(UTC)


class NotifyError(Exception):
    def __init__(self, message: str, *, recoverable: bool) -> None:
        super().__init__(message)
        self.recoverable = recoverable


@dataclass(frozen=True, slots=True)
class Notice:
    """One message to one recipient; about a patient when ``patient_id`` is set."""

    alert_id: int
    recipient: str  # a role: ward nurse, senior clinician, on-call doctor, device team
    body: str
    subject: str = ""
    patient_id: str | None = None
    ward: str | None = None
    severity: Severity | None = None
    alert_ids: tuple[int, ...] = ()  # every alert the message covers (grouped)
    link: str | None = None
    message_id: str = ""  # the same on every retry, so a receiver can drop a repeat

    def payload(self) -> dict[str, object]:
        """The JSON document the webhook and MQTT channels send."""
        return {
            "message_id": self.message_id or None,
            "alert_id": self.alert_id,
            "alert_ids": list(self.alert_ids or (self.alert_id,)),
            "recipient": self.recipient,
            "severity": self.severity.label if self.severity is not None else None,
            "patient_id": self.patient_id,
            "ward": self.ward,
            "subject": self.subject,
            "text": self.body,
            "link": self.link,
        }


class Channel(Protocol):
    name: str

    def send(self, notice: Notice) -> str:
        """Deliver; return a short outcome for the audit trail, or raise NotifyError."""
        ...


class LogChannel:
    """Writes the notice to the service log (the demo's console).

    Logs carry ids, never patient data: a notice about a patient is logged by its ids alone;
    only a notice about wardwatch itself (the watchdog's) shows its text.
    """

    name = "log"

    def send(self, notice: Notice) -> str:
        if notice.patient_id is None:
            log.warning("NOTIFY %s: %s", notice.recipient, notice.body)
        else:
            severity = notice.severity.label if notice.severity is not None else "?"
            alerts = ", ".join(str(a) for a in notice.alert_ids or (notice.alert_id,))
            log.warning(
                "NOTIFY %s: %s, patient %s, alerts %s",
                notice.recipient,
                severity,
                notice.patient_id,
                alerts,
            )
        return "logged"


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The webhook signature header value: HMAC-SHA256 over ``timestamp``, ".", and the body.

    The timestamp is inside the signed material, so a receiver that rejects old timestamps
    (five minutes is usual) cannot be fed a captured request again later.
    """
    mac = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookChannel:
    """POSTs the notice as JSON to a pager or chat gateway, signed when given a shared secret."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        *,
        secret: bytes | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._url = url
        self._secret = secret
        self._clock = clock
        self._client = httpx.Client(transport=transport, timeout=timeout_s)

    def send(self, notice: Notice) -> str:
        body = orjson.dumps(notice.payload())
        headers = {"Content-Type": "application/json"}
        if self._secret is not None:
            timestamp = str(int(self._clock().timestamp()))
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = sign(self._secret, timestamp, body)
        try:
            response = self._client.post(self._url, content=body, headers=headers)
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


class SmtpChannel:
    """Sends the notice as a plain-text e-mail through an SMTP relay (stdlib ``smtplib``).

    ``to`` maps recipient roles to their addresses; a role it does not name (a tier a ward's
    policy added, say "respiratory consultant") falls back by the notice's severity:
    technical notices to ``technical_to`` (the device team) and never to clinicians, clinical
    ones to ``clinical_to``. SMTP's own codes say what is worth retrying:
    4xx is transient, 5xx permanent (RFC 5321 §4.2.1).
    """

    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: str,
        to: Mapping[str, tuple[str, ...]],
        clinical_to: tuple[str, ...] = (),
        technical_to: tuple[str, ...] = (),
        starttls: bool = False,
        login: tuple[str, str] | None = None,
        tls: ssl.SSLContext | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._to = dict(to)
        self._clinical_to = clinical_to
        self._technical_to = technical_to
        if login is not None and not starttls:
            raise ValueError("an SMTP login needs STARTTLS: a password must not go in clear")
        self._starttls = starttls
        self._login = login
        self._tls = tls or ssl.create_default_context()
        self._timeout_s = timeout_s
        self._clock = clock

    def send(self, notice: Notice) -> str:
        fallback = (
            self._technical_to if notice.severity is Severity.TECHNICAL else self._clinical_to
        )
        addresses = self._to.get(notice.recipient, fallback)
        if not addresses:
            raise NotifyError(f"no e-mail address for {notice.recipient}", recoverable=False)
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = ", ".join(addresses)
        message["Subject"] = notice.subject or f"wardwatch alert {notice.alert_id}"
        message["Date"] = format_datetime(self._clock())
        if notice.message_id:
            message["Message-ID"] = f"<{notice.message_id}@wardwatch>"
        message.set_content(notice.body)
        try:
            with smtplib.SMTP(self._host, self._port, timeout=self._timeout_s) as smtp:
                if self._starttls:
                    smtp.starttls(context=self._tls)
                if self._login is not None:
                    smtp.login(*self._login)
                refused = smtp.send_message(message)
        except smtplib.SMTPNotSupportedError as exc:
            raise NotifyError(
                "mail server does not offer STARTTLS (or the login method)", recoverable=False
            ) from exc
        except ssl.SSLCertVerificationError as exc:
            raise NotifyError(
                f"mail server's certificate not trusted: {exc.verify_message}", recoverable=False
            ) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise NotifyError(
                f"mail server refused every recipient ({', '.join(map(str, codes))})",
                recoverable=all(400 <= c < 500 for c in codes),
            ) from exc
        except smtplib.SMTPResponseException as exc:  # auth, sender or data refused
            raise NotifyError(
                f"mail server answered {exc.smtp_code}",
                recoverable=400 <= exc.smtp_code < 500,
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:  # refused, timed out, hung up
            raise NotifyError(
                f"mail server unreachable: {type(exc).__name__}", recoverable=True
            ) from exc
        accepted = len(addresses) - len(refused)
        return f"accepted for {accepted} of {len(addresses)} addresses"


def topic_level(value: str) -> str:
    """``value`` as one MQTT topic level: the separators and wildcards become ``_``."""
    cleaned = "".join("_" if c in "/+#\x00" else c for c in value)
    return cleaned or "_"


class MqttChannel:
    """Publishes the notice as JSON at QoS 1 to a per-ward topic, for integrations.

    Takes a configured paho client (credentials, TLS: the composition root builds it like
    ingest's) and owns its connection; paho reconnects on its own. A notice counts as delivered
    when the broker acknowledges it (PUBACK), not when a subscriber has read it.
    """

    name = "mqtt"

    def __init__(
        self,
        client: mqtt.Client,
        host: str,
        port: int,
        *,
        topic: str = DEFAULT_ALERT_TOPIC,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self._client = client
        self._host = host
        self._port = port
        self._topic = topic
        self._timeout_s = timeout_s
        self._connected = threading.Event()
        self._refused: ReasonCode | None = None
        self._failed_acks: dict[int, ReasonCode] = {}
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish

    # paho callbacks: run on paho's network thread and only record what happened.
    def _on_connect(
        self, _c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object
    ) -> None:
        if rc.is_failure:
            self._refused = rc
            log.warning("alert broker refused connection: %s", rc)
            return
        self._refused = None
        self._connected.set()

    def _on_disconnect(
        self, _c: mqtt.Client, _u: object, _f: object, _rc: ReasonCode, _p: object
    ) -> None:
        self._connected.clear()

    def _on_publish(
        self, _c: mqtt.Client, _u: object, mid: int, rc: ReasonCode, _p: object
    ) -> None:
        if rc.is_failure:
            self._failed_acks[mid] = rc

    def start(self) -> None:
        self._client.connect_async(self._host, self._port, keepalive=30)
        self._client.loop_start()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def send(self, notice: Notice) -> str:
        refused = self._refused
        if refused is not None and refused.value in _REFUSED_FOR_GOOD:
            raise NotifyError(f"broker refused the connection: {refused}", recoverable=False)
        # Not publishing while disconnected: paho would queue the message and send it on
        # reconnect, and our retry would then send it a second time.
        if not self._connected.wait(self._timeout_s):
            raise NotifyError("broker unreachable", recoverable=True)
        topic = self._topic.format(ward=topic_level(notice.ward or "unknown"))
        info = self._client.publish(topic, orjson.dumps(notice.payload()), qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise NotifyError(f"publish failed: {mqtt.error_string(info.rc)}", recoverable=True)
        try:
            info.wait_for_publish(self._timeout_s)
        except (RuntimeError, ValueError) as exc:
            raise NotifyError(f"publish failed: {exc}", recoverable=True) from exc
        if not info.is_published():
            raise NotifyError("broker did not acknowledge in time", recoverable=True)
        failed = self._failed_acks.pop(info.mid, None)
        if failed is not None:
            raise NotifyError(
                f"broker refused the message: {failed}",
                recoverable=failed.value not in _REFUSED_FOR_GOOD,
            )
        return f"published to {topic}"
