"""Settings from flags with environment defaults; a bad setting fails at start, naming itself."""

from __future__ import annotations

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

    @property
    def mqtt(self) -> MqttEndpoint:
        return MqttEndpoint.from_url(self.mqtt_url)


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
    )
