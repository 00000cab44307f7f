"""Settings from flags with environment defaults; a bad setting fails at start, naming itself."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from paho.mqtt.enums import MQTTProtocolVersion

from ingest.mqtt import MqttEndpoint, redact_url, subscription


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it."""


@dataclass(frozen=True, slots=True)
class Settings:
    # URLs carry credentials: kept out of repr so that a logged Settings leaks no password.
    mqtt_url: str = field(repr=False)
    database_url: str = field(repr=False)
    http_host: str
    http_port: int
    webhook_url: str | None = field(default=None, repr=False)
    client_id: str = "wardwatch-ingest"  # the persistent MQTT session's name: one per worker
    share_group: str | None = None  # workers in one group share the devices' messages
    # Notification channels (docs/notifications.md): each is on when its settings are given.
    webhook_secret: bytes | None = field(default=None, repr=False)  # signs webhook bodies
    smtp: SmtpSettings | None = None
    alert_topic: str | None = None  # MQTT topic for integrations, e.g. wardwatch/v1/alerts/{ward}
    public_url: str | None = None  # the dashboard's address as staff reach it, for links

    @property
    def dashboard_url(self) -> str:
        """Where notifications link to: WARDWATCH_PUBLIC_URL, else the dashboard's address."""
        if self.public_url is not None:
            return self.public_url
        host = f"[{self.http_host}]" if ":" in self.http_host else self.http_host
        return f"http://{host}:{self.http_port}"

    @property
    def mqtt(self) -> MqttEndpoint:
        return MqttEndpoint.from_url(self.mqtt_url)


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """The mail relay and who gets which notices: clinicians and the device team apart."""

    host: str
    port: int
    sender: str
    to: tuple[str, ...]  # clinical notices (nurse, senior clinician, on-call doctor)
    device_team_to: tuple[str, ...]  # technical notices, which never page clinicians
    starttls: bool = False  # upgrade to TLS before anything else (NHSmail's relay requires it)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None  # a private CA for the relay's certificate, if not a public one


DEFAULTS = {
    "WARDWATCH_MQTT_URL": "mqtt://127.0.0.1:1883",
    "WARDWATCH_DATABASE_URL": "postgresql://127.0.0.1:5432/wardwatch",
    "WARDWATCH_HTTP_ADDR": "127.0.0.1:8080",
}


def parse_http_addr(value: str, name: str = "WARDWATCH_HTTP_ADDR") -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise SettingsError(f"{name} must be HOST:PORT (e.g. 127.0.0.1:8080), got {value!r}")
    return host.strip("[]"), int(port)


def check_database_url(value: str, name: str = "WARDWATCH_DATABASE_URL") -> str:
    if "://" in value:
        if urlsplit(value).scheme not in ("postgresql", "postgres"):
            raise SettingsError(f"{name} must be a postgresql:// URL, got {redact_url(value)!r}")
    elif "=" not in value:
        raise SettingsError(f"{name} must be a libpq URL or key=value string")
    return value


_ADDRESS = re.compile(r"[^@\s,<>]+@[^@\s,<>]+\.[^@\s,<>]+")
#: Shorter shared secrets are guessable offline from one captured signature.
MIN_WEBHOOK_SECRET_BYTES = 16


def _addresses(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    value = env.get(name, "")
    found = tuple(a.strip() for a in value.split(",") if a.strip())
    if not found:
        raise SettingsError(f"{name} is required with WARDWATCH_SMTP_HOST")
    for address in found:
        if not _ADDRESS.fullmatch(address):
            raise SettingsError(f"{name} must be e-mail addresses separated by commas")
    return found


_YES = frozenset({"yes", "true", "1", "on"})
_NO = frozenset({"no", "false", "0", "off"})


def smtp_from_env(env: Mapping[str, str]) -> SmtpSettings | None:
    """The e-mail channel's settings, or None when WARDWATCH_SMTP_HOST is not set."""
    host = env.get("WARDWATCH_SMTP_HOST") or None
    if host is None:
        for name in ("WARDWATCH_SMTP_FROM", "WARDWATCH_SMTP_TO", "WARDWATCH_SMTP_DEVICE_TEAM_TO"):
            if env.get(name):
                raise SettingsError(f"{name} is set but WARDWATCH_SMTP_HOST is not")
        return None
    if any(c in host for c in "/:@ "):
        raise SettingsError(f"WARDWATCH_SMTP_HOST must be a host name, got {host!r}")
    port = env.get("WARDWATCH_SMTP_PORT", "25")
    if not port.isdigit() or not 0 < int(port) <= 65535:
        raise SettingsError(f"WARDWATCH_SMTP_PORT must be a port number, got {port!r}")
    sender = env.get("WARDWATCH_SMTP_FROM", "")
    if not _ADDRESS.fullmatch(sender):
        raise SettingsError(f"WARDWATCH_SMTP_FROM must be one e-mail address, got {sender!r}")
    flag = env.get("WARDWATCH_SMTP_STARTTLS", "yes" if port == "587" else "no").lower()
    if flag not in _YES | _NO:
        raise SettingsError(f"WARDWATCH_SMTP_STARTTLS must be yes or no, got {flag!r}")
    starttls = flag in _YES
    user = env.get("WARDWATCH_SMTP_USER") or None
    password = env.get("WARDWATCH_SMTP_PASSWORD") or None
    if (user is None) != (password is None):
        raise SettingsError("WARDWATCH_SMTP_USER and WARDWATCH_SMTP_PASSWORD go together")
    if user is not None and not starttls:
        # A password must never cross the network in clear text.
        raise SettingsError("WARDWATCH_SMTP_USER needs WARDWATCH_SMTP_STARTTLS=yes")
    ca_file = env.get("WARDWATCH_SMTP_CA_FILE") or None
    return SmtpSettings(
        host=host,
        port=int(port),
        sender=sender,
        to=_addresses(env, "WARDWATCH_SMTP_TO"),
        device_team_to=_addresses(env, "WARDWATCH_SMTP_DEVICE_TEAM_TO"),
        starttls=starttls,
        username=user,
        password=password,
        ca_file=ca_file,
    )


def _webhook_secret(env: Mapping[str, str], webhook: str | None) -> bytes | None:
    secret = env.get("WARDWATCH_WEBHOOK_SECRET") or None
    if secret is None:
        return None
    if webhook is None:
        raise SettingsError("WARDWATCH_WEBHOOK_SECRET is set but WARDWATCH_WEBHOOK_URL is not")
    if len(secret.encode()) < MIN_WEBHOOK_SECRET_BYTES:
        raise SettingsError(
            f"WARDWATCH_WEBHOOK_SECRET must be at least {MIN_WEBHOOK_SECRET_BYTES} bytes"
        )  # the secret itself is never echoed
    return secret.encode()


def _alert_topic(env: Mapping[str, str]) -> str | None:
    topic = env.get("WARDWATCH_MQTT_ALERT_TOPIC") or None
    if topic is None:
        return None
    try:
        example = topic.format(ward="w")
    except (KeyError, IndexError, ValueError):
        example = ""
    if not example or any(c in example for c in "+#\x00") or topic.startswith("$"):
        raise SettingsError(
            "WARDWATCH_MQTT_ALERT_TOPIC must be a topic without wildcards, optionally with"
            f" {{ward}} (e.g. wardwatch/v1/alerts/{{ward}}), got {topic!r}"
        )
    return topic


def _public_url(env: Mapping[str, str]) -> str | None:
    url = env.get("WARDWATCH_PUBLIC_URL") or None
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise SettingsError(
            f"WARDWATCH_PUBLIC_URL must be an http(s) URL with a host, got {redact_url(url)!r}"
        )
    return url.rstrip("/")


def from_env(env: Mapping[str, str], **flags: str | None) -> Settings:
    """Build settings: a flag given on the command line wins over the environment variable."""

    def pick(name: str, flag: str) -> tuple[str, str]:
        """The value and the name to blame if it is bad: the flag's or the variable's."""
        value = flags.get(flag)
        if value is not None:
            return value, "--" + flag.replace("_", "-")
        return env.get(name, DEFAULTS[name]), name

    mqtt_url, mqtt_name = pick("WARDWATCH_MQTT_URL", "mqtt_url")
    try:
        MqttEndpoint.from_url(mqtt_url)
    except ValueError as exc:
        raise SettingsError(f"{mqtt_name} {exc}") from exc
    host, port = parse_http_addr(*pick("WARDWATCH_HTTP_ADDR", "http_addr"))
    webhook = flags.get("webhook_url") or env.get("WARDWATCH_WEBHOOK_URL") or None
    if webhook is not None:
        parts = urlsplit(webhook)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SettingsError(
                f"WARDWATCH_WEBHOOK_URL must be an http(s) URL with a host,"
                f" got {redact_url(webhook)!r}"
            )
    client_id = flags.get("client_id") or env.get("WARDWATCH_MQTT_CLIENT_ID") or "wardwatch-ingest"
    share_group = flags.get("share_group") or env.get("WARDWATCH_MQTT_SHARE_GROUP") or None
    if share_group is not None:
        try:
            subscription("x", share_group)
        except ValueError as exc:
            raise SettingsError(f"WARDWATCH_MQTT_SHARE_GROUP: {exc}") from exc
        if MqttEndpoint.from_url(mqtt_url).protocol != MQTTProtocolVersion.MQTTv5:
            raise SettingsError(
                "WARDWATCH_MQTT_SHARE_GROUP needs MQTT v5 shared subscriptions;"
                f" {mqtt_name} asks for MQTT 3.1.1"
            )
    return Settings(
        client_id=client_id,
        share_group=share_group,
        mqtt_url=mqtt_url,
        database_url=check_database_url(*pick("WARDWATCH_DATABASE_URL", "database_url")),
        http_host=host,
        http_port=port,
        webhook_url=webhook,
        webhook_secret=_webhook_secret(env, webhook),
        smtp=smtp_from_env(env),
        alert_topic=_alert_topic(env),
        public_url=_public_url(env),
    )
