"""Each channel against a real peer started here: an SMTP server, an HTTP gateway, Mosquitto.

The peers check what a real receiver would: the gateway verifies the webhook signature with its
own HMAC code (not ours), the mail server and the broker accept or refuse as configured.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import hashlib
import hmac
import queue
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import orjson
import paho.mqtt.client as mqtt
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from paho.mqtt.enums import CallbackAPIVersion

from alerts.model import Severity
from alerts.notify import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    MqttChannel,
    Notice,
    NotifyError,
    SmtpChannel,
    WebhookChannel,
)
from ingest.mqtt import MqttEndpoint, make_client
from wardwatch.embedded import make_test_tls

pytestmark = pytest.mark.integration

SECRET = b"a shared secret of some length"
REPLAY_WINDOW_S = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def notice(ward: str = "w1", recipient: str = "ward nurse") -> Notice:
    return Notice(
        7,
        recipient,
        "Patient pt-1, ward w1\n- [emergency] NEWS2 8 (high): RR 3, HR 3, SpO2 2",
        subject="[emergency] patient pt-1, ward w1",
        patient_id="pt-1",
        ward=ward,
        severity=Severity.EMERGENCY,
        alert_ids=(7,),
        link="http://127.0.0.1:8080/?ward=w1&patient=pt-1",
        message_id="wardwatch-n12",
    )


# --- e-mail ----------------------------------------------------------------------------------


@dataclass
class Inbox:
    """An aiosmtpd handler: keeps what it accepts; refuses recipients with ``rcpt_reply``."""

    rcpt_reply: str | None = None
    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, _server: SMTP, _session: Session, envelope: Envelope, address: str, _o: list[str]
    ) -> str:
        if self.rcpt_reply is not None:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, _server: SMTP, _session: Session, envelope: Envelope
    ) -> str:
        assert isinstance(envelope.content, bytes)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 Message accepted"


@pytest.fixture
def mail() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


ROUTES = {"ward nurse": ("nurses@ward.example",), "device team": ("devices@ward.example",)}


def test_email_goes_to_the_roles_mailbox_with_subject_and_text(mail: tuple[Inbox, int]) -> None:
    inbox, port = mail
    channel = SmtpChannel("127.0.0.1", port, sender="wardwatch@ward.example", to=ROUTES)
    assert channel.send(notice()) == "accepted for 1 of 1 addresses"
    assert channel.send(notice(recipient="device team")) == "accepted for 1 of 1 addresses"
    (to_nurses, nurses_mail), (to_devices, _) = inbox.messages
    assert to_nurses == ["nurses@ward.example"]
    assert to_devices == ["devices@ward.example"]
    assert nurses_mail["Subject"] == "[emergency] patient pt-1, ward w1"
    assert nurses_mail["From"] == "wardwatch@ward.example"
    assert nurses_mail["Message-ID"] == "<wardwatch-n12@wardwatch>"
    body = nurses_mail.get_body()
    assert body is not None
    assert "NEWS2 8 (high)" in body.get_content()


def test_a_tier_only_a_ward_policy_names_is_mailed_by_severity(mail: tuple[Inbox, int]) -> None:
    """A stored policy may call its tiers anything: clinical notices go to the clinical
    mailbox, technical ones to the device team's, never the other way round."""
    inbox, port = mail
    channel = SmtpChannel(
        "127.0.0.1", port, sender="wardwatch@ward.example", to={},
        clinical_to=("nurses@ward.example",), technical_to=("devices@ward.example",),
    )  # fmt: skip
    channel.send(notice(recipient="respiratory consultant"))
    technical = dataclasses.replace(notice(recipient="digital team"), severity=Severity.TECHNICAL)
    channel.send(technical)
    assert [to for to, _ in inbox.messages] == [
        ["nurses@ward.example"],
        ["devices@ward.example"],
    ]


@pytest.fixture
def secure_mail(tmp_path: Path) -> Iterator[tuple[Inbox, int, ssl.SSLContext]]:
    """A relay like NHSmail's: STARTTLS required, then a login, before any mail."""
    files = make_test_tls(tmp_path / "tls")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(files.cert_file, files.key_file)

    def authenticator(
        _server: SMTP, _session: Session, _envelope: Envelope, _mechanism: str, data: object
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"wardwatch",
            b"s3cret",
        )
        return AuthResult(success=ok, handled=False)

    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, tls_context=server_tls, require_starttls=True,
        authenticator=authenticator, auth_required=True,
    )  # fmt: skip
    controller.start()
    yield inbox, port, ssl.create_default_context(cafile=files.ca_file)
    controller.stop()


def test_mail_goes_over_starttls_with_a_login_and_a_wrong_one_is_not_retried(
    secure_mail: tuple[Inbox, int, ssl.SSLContext],
) -> None:
    inbox, port, client_tls = secure_mail

    def channel(password: str, *, starttls: bool = True) -> SmtpChannel:
        return SmtpChannel(
            "127.0.0.1", port, sender="wardwatch@ward.example", to=ROUTES, starttls=starttls,
            login=("wardwatch", password) if starttls else None, tls=client_tls,
        )  # fmt: skip

    assert channel("s3cret").send(notice()) == "accepted for 1 of 1 addresses"
    assert [to for to, _ in inbox.messages] == [["nurses@ward.example"]]
    with pytest.raises(NotifyError, match="535") as refused:
        channel("wrong").send(notice())
    assert refused.value.recoverable is False  # a wrong password does not fix itself
    with pytest.raises(NotifyError) as plain:
        channel("", starttls=False).send(notice())  # the relay insists on TLS first
    assert plain.value.recoverable is False
    untrusted = SmtpChannel(
        "127.0.0.1", port, sender="wardwatch@ward.example", to=ROUTES, starttls=True,
        tls=ssl.create_default_context(),  # the system's CAs do not know the test CA
    )  # fmt: skip
    with pytest.raises(NotifyError, match="certificate not trusted") as bad_cert:
        untrusted.send(notice())
    assert bad_cert.value.recoverable is False
    assert len(inbox.messages) == 1
    with pytest.raises(ValueError, match="needs STARTTLS"):
        SmtpChannel("127.0.0.1", port, sender="w@ward.example", to={}, login=("u", "p"))


@pytest.mark.parametrize(
    ("reply", "recoverable"),
    [("550 5.1.1 No such mailbox", False), ("451 4.3.0 Try again later", True)],
)
def test_a_refused_recipient_is_retried_only_when_the_server_says_transient(
    mail: tuple[Inbox, int], reply: str, recoverable: bool
) -> None:
    inbox, port = mail
    inbox.rcpt_reply = reply
    channel = SmtpChannel("127.0.0.1", port, sender="wardwatch@ward.example", to=ROUTES)
    with pytest.raises(NotifyError, match=reply[:3]) as failed:
        channel.send(notice())
    assert failed.value.recoverable is recoverable
    assert inbox.messages == []


def test_an_unreachable_mail_server_is_recoverable() -> None:
    channel = SmtpChannel(
        "127.0.0.1", free_port(), sender="w@ward.example", to=ROUTES, timeout_s=1.0
    )
    with pytest.raises(NotifyError, match="unreachable") as failed:
        channel.send(notice())
    assert failed.value.recoverable


def test_a_role_without_an_address_is_not_retried(mail: tuple[Inbox, int]) -> None:
    inbox, port = mail
    channel = SmtpChannel(
        "127.0.0.1", port, sender="w@ward.example", to={"device team": ("d@ward.example",)}
    )
    with pytest.raises(NotifyError, match="no e-mail address for ward nurse") as failed:
        channel.send(notice())
    assert not failed.value.recoverable
    assert inbox.messages == []


# --- webhook ---------------------------------------------------------------------------------


@dataclass
class Request:
    headers: dict[str, str]
    body: bytes
    verified: bool


@dataclass
class Gateway:
    """A pager gateway that verifies signatures as a receiver should, with its own code."""

    url: str
    requests: list[Request]
    statuses: list[int]  # answers to give, in order, to verified requests (then 204)
    hold: threading.Event  # cleared: requests hang until it is set


def _verify(headers: dict[str, str], body: bytes) -> bool:
    timestamp = headers.get(TIMESTAMP_HEADER.lower(), "")
    signature = headers.get(SIGNATURE_HEADER.lower(), "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > REPLAY_WINDOW_S:
        return False
    expected = hmac.new(SECRET, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature, f"sha256={expected}")


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    requests: list[Request] = []
    statuses: list[int] = []
    hold = threading.Event()
    hold.set()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            headers = {k.lower(): v for k, v in self.headers.items()}
            verified = _verify(headers, body)
            requests.append(Request(headers, body, verified))
            hold.wait(10)
            status = (statuses.pop(0) if statuses else 204) if verified else 401
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Gateway(f"http://127.0.0.1:{server.server_port}/hook", requests, statuses, hold)
    hold.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_a_signed_webhook_is_verified_by_the_gateway(gateway: Gateway) -> None:
    channel = WebhookChannel(gateway.url, secret=SECRET)
    assert channel.send(notice()) == "delivered (204)"
    (request,) = gateway.requests
    assert request.verified
    sent = orjson.loads(request.body)
    assert sent["patient_id"] == "pt-1"
    assert sent["severity"] == "emergency"
    assert sent["message_id"] == "wardwatch-n12"
    assert sent["link"] == "http://127.0.0.1:8080/?ward=w1&patient=pt-1"
    assert "NEWS2 8" in sent["text"]
    channel.close()


def test_a_replayed_body_with_a_new_timestamp_fails_verification(gateway: Gateway) -> None:
    WebhookChannel(gateway.url, secret=SECRET).send(notice())
    (captured,) = gateway.requests
    forged = {
        TIMESTAMP_HEADER: str(int(time.time()) + 1),
        SIGNATURE_HEADER: captured.headers[SIGNATURE_HEADER.lower()],
        "Content-Type": "application/json",
    }
    answer = httpx.post(gateway.url, content=captured.body, headers=forged)
    assert answer.status_code == 401
    assert not gateway.requests[1].verified


def test_an_old_timestamp_is_refused_and_not_retried(gateway: Gateway) -> None:
    def late() -> datetime:
        return datetime.now(UTC) - timedelta(seconds=REPLAY_WINDOW_S + 60)

    with pytest.raises(NotifyError, match="refused: 401") as failed:
        WebhookChannel(gateway.url, secret=SECRET, clock=late).send(notice())
    assert not failed.value.recoverable


def test_a_wrong_secret_is_refused_and_not_retried(gateway: Gateway) -> None:
    with pytest.raises(NotifyError, match="refused: 401") as failed:
        WebhookChannel(gateway.url, secret=b"not the shared secret!").send(notice())
    assert not failed.value.recoverable


@pytest.mark.parametrize(
    ("status", "recoverable"), [(503, True), (500, True), (429, True), (400, False), (404, False)]
)
def test_webhook_answers_decide_whether_to_retry(
    gateway: Gateway, status: int, recoverable: bool
) -> None:
    gateway.statuses.append(status)
    with pytest.raises(NotifyError, match=str(status)) as failed:
        WebhookChannel(gateway.url, secret=SECRET).send(notice())
    assert failed.value.recoverable is recoverable


def test_a_gateway_that_hangs_times_out_recoverably(gateway: Gateway) -> None:
    gateway.hold.clear()
    started = time.monotonic()
    with pytest.raises(NotifyError, match="ReadTimeout") as failed:
        WebhookChannel(gateway.url, secret=SECRET, timeout_s=0.5).send(notice())
    assert failed.value.recoverable
    assert time.monotonic() - started < 3


def test_a_refused_connection_is_recoverable() -> None:
    with pytest.raises(NotifyError, match="ConnectError") as failed:
        WebhookChannel(f"http://127.0.0.1:{free_port()}/hook", secret=SECRET).send(notice())
    assert failed.value.recoverable


# --- MQTT ------------------------------------------------------------------------------------


@pytest.fixture
def subscriber(mqtt_url: str, uid: str) -> Iterator[queue.Queue[mqtt.MQTTMessage]]:
    """Subscribed at QoS 1 to this test's ward's alert topic, before anything is published."""
    received: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    subscribed = threading.Event()
    endpoint = MqttEndpoint.from_url(mqtt_url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sub-{uid}")
    client.on_connect = lambda c, *_: c.subscribe(f"wardwatch/v1/alerts/ward-{uid}", qos=1)
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_message = lambda _c, _u, msg: received.put(msg)
    client.connect(endpoint.host, endpoint.port)
    client.loop_start()
    assert subscribed.wait(10), "subscription not granted"
    yield received
    client.disconnect()
    client.loop_stop()


def test_mqtt_publishes_to_the_wards_topic_at_qos_1(
    mqtt_url: str, uid: str, subscriber: queue.Queue[mqtt.MQTTMessage]
) -> None:
    endpoint = MqttEndpoint.from_url(mqtt_url)
    channel = MqttChannel(make_client(endpoint, f"alerts-{uid}"), endpoint.host, endpoint.port)
    channel.start()
    try:
        outcome = channel.send(notice(ward=f"ward-{uid}"))
    finally:
        channel.close()
    assert outcome == f"published to wardwatch/v1/alerts/ward-{uid}"
    message = subscriber.get(timeout=10)
    assert message.qos == 1
    sent = orjson.loads(message.payload)
    assert sent["ward"] == f"ward-{uid}"
    assert sent["alert_ids"] == [7]
    assert sent["recipient"] == "ward nurse"


def test_mqtt_with_no_broker_fails_recoverably_within_its_timeout(uid: str) -> None:
    endpoint = MqttEndpoint.from_url(f"mqtt://127.0.0.1:{free_port()}")
    channel = MqttChannel(
        make_client(endpoint, f"alerts-{uid}"), endpoint.host, endpoint.port, timeout_s=0.5
    )
    channel.start()
    started = time.monotonic()
    try:
        with pytest.raises(NotifyError, match="unreachable") as failed:
            channel.send(notice())
    finally:
        channel.close()
    assert failed.value.recoverable
    assert time.monotonic() - started < 3
