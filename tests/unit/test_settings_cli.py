"""Settings from flags and environment, the command-line parser, and secrets kept out of reprs.

``from_env`` takes the environment as a mapping, so these tests hand it dicts; only the ``main``
test goes through the real environment (monkeypatched), as the installed command would.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

import wardwatch.service
from ingest.mqtt import MqttEndpoint
from wardwatch.cli import build_parser, main
from wardwatch.settings import DEFAULTS, Settings, SettingsError, SmtpSettings, from_env

SETTING_NAMES = (*DEFAULTS, "WARDWATCH_WEBHOOK_URL")

# --- settings.from_env -----------------------------------------------------------------------


def test_defaults() -> None:
    assert from_env({}) == Settings(
        mqtt_url="mqtt://127.0.0.1:1883",
        database_url="postgresql://127.0.0.1:5432/wardwatch",
        http_host="127.0.0.1",
        http_port=8080,
        webhook_url=None,
    )


def test_environment_values_are_used() -> None:
    settings = from_env(
        {
            "WARDWATCH_MQTT_URL": "mqtts://broker.example:8884",
            "WARDWATCH_DATABASE_URL": "host=db.example dbname=ward",
            "WARDWATCH_HTTP_ADDR": "0.0.0.0:9000",
            "WARDWATCH_WEBHOOK_URL": "https://hooks.example/ward",
        }
    )
    assert settings == Settings(
        mqtt_url="mqtts://broker.example:8884",
        database_url="host=db.example dbname=ward",
        http_host="0.0.0.0",  # noqa: S104 - a value under test, nothing binds to it
        http_port=9000,
        webhook_url="https://hooks.example/ward",
    )
    assert settings.mqtt.tls
    assert settings.mqtt.port == 8884


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u@db.example/ward",
        "postgres://db.example/ward",
        "dbname=ward host=/run/postgresql",
    ],
)
def test_database_url_accepts_libpq_forms(url: str) -> None:
    assert from_env({"WARDWATCH_DATABASE_URL": url}).database_url == url


def test_ipv6_http_address() -> None:
    settings = from_env({"WARDWATCH_HTTP_ADDR": "[::1]:8081"})
    assert (settings.http_host, settings.http_port) == ("::1", 8081)


def test_a_flag_overrides_the_environment() -> None:
    env = {
        "WARDWATCH_MQTT_URL": "mqtt://env-broker:1883",
        "WARDWATCH_DATABASE_URL": "postgresql://env-db/ward",
        "WARDWATCH_HTTP_ADDR": "127.0.0.1:1111",
        "WARDWATCH_WEBHOOK_URL": "https://env.example/hook",
    }
    settings = from_env(
        env,
        mqtt_url="mqtt://flag-broker:1884",
        database_url="postgresql://flag-db/ward",
        http_addr="127.0.0.1:2222",
        webhook_url="https://flag.example/hook",
    )
    assert settings == Settings(
        mqtt_url="mqtt://flag-broker:1884",
        database_url="postgresql://flag-db/ward",
        http_host="127.0.0.1",
        http_port=2222,
        webhook_url="https://flag.example/hook",
    )


def test_a_flag_not_given_falls_back_to_the_environment() -> None:
    settings = from_env({"WARDWATCH_MQTT_URL": "mqtt://env-broker:1883"}, mqtt_url=None)
    assert settings.mqtt_url == "mqtt://env-broker:1883"


def test_a_good_flag_wins_over_a_bad_environment_value() -> None:
    settings = from_env({"WARDWATCH_MQTT_URL": "http://x"}, mqtt_url="mqtt://ok:1883")
    assert settings.mqtt_url == "mqtt://ok:1883"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WARDWATCH_MQTT_URL", "http://x"),
        ("WARDWATCH_MQTT_URL", "mqtt://"),
        ("WARDWATCH_MQTT_URL", "mqtt://broker:99999"),
        ("WARDWATCH_MQTT_URL", "mqtt://broker:port"),
        ("WARDWATCH_MQTT_URL", "mqtt://broker?protocol=4"),
        ("WARDWATCH_MQTT_URL", ""),
        ("WARDWATCH_HTTP_ADDR", "localhost"),
        ("WARDWATCH_HTTP_ADDR", ":99999"),
        ("WARDWATCH_HTTP_ADDR", "localhost:99999"),
        ("WARDWATCH_HTTP_ADDR", ":8080"),
        ("WARDWATCH_HTTP_ADDR", "localhost:"),
        ("WARDWATCH_HTTP_ADDR", "localhost:-1"),
        ("WARDWATCH_HTTP_ADDR", "localhost:http"),
        ("WARDWATCH_DATABASE_URL", "mysql://root@db.example/ward"),
        ("WARDWATCH_DATABASE_URL", "ward"),
        ("WARDWATCH_WEBHOOK_URL", "ftp://hooks.example/ward"),
        ("WARDWATCH_WEBHOOK_URL", "hooks.example/ward"),
    ],
)
def test_a_bad_setting_raises_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        from_env({name: value})


@pytest.mark.parametrize("value", ["http://", "https:///hook"])
def test_a_webhook_url_without_a_host_is_rejected(value: str) -> None:
    with pytest.raises(SettingsError, match="WARDWATCH_WEBHOOK_URL"):
        from_env({"WARDWATCH_WEBHOOK_URL": value})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WARDWATCH_MQTT_URL", "mqtt://ingest:s3cret-pw@broker:port"),
        ("WARDWATCH_DATABASE_URL", "mysql://ward:s3cret-pw@db.example/ward"),
    ],
)
def test_a_bad_setting_does_not_echo_its_password(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        from_env({name: value})
    assert "s3cret-pw" not in str(raised.value)


# --- the command line ------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def root_logging() -> Iterator[None]:
    """``main`` calls ``logging.basicConfig``; leave the root logger as the test found it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("clean_env", "root_logging")
def test_run_with_a_bad_setting_exits_2_before_connecting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def must_not_start(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the service was started despite a bad setting")

    monkeypatch.setattr(wardwatch.service, "running", must_not_start)
    monkeypatch.setenv("WARDWATCH_MQTT_URL", "http://x")
    assert main(["run"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "WARDWATCH_MQTT_URL" in err
    assert "bad setting" in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(
            ["demo", "--minutes", "2", "--speed", "60"],
            {"command": "demo", "minutes": 2.0, "speed": 60.0},
            id="demo",
        ),
        pytest.param(["run"], {"command": "run", "mqtt_url": None}, id="run"),
        pytest.param(
            ["run", "--mqtt-url", "mqtt://b:1883", "--http-addr", "127.0.0.1:9"],
            {"command": "run", "mqtt_url": "mqtt://b:1883", "http_addr": "127.0.0.1:9"},
            id="run with flags",
        ),
        pytest.param(
            ["db", "upgrade"], {"command": "db", "db_command": "upgrade"}, id="db upgrade"
        ),
        pytest.param(
            [
                "enrol",
                "--device",
                "D",
                "--patient",
                "P",
                "--ward",
                "W",
                "--until",
                "2026-12-01T00:00:00+00:00",
            ],
            {
                "command": "enrol",
                "device": "D",
                "patient": "P",
                "ward": "W",
                "since": None,
                "until": datetime(2026, 12, 1, tzinfo=UTC),
                "spo2_scale": 1,
            },
            id="enrol",
        ),
        pytest.param(
            [
                "simulate",
                "--patients",
                "3",
                "--speed",
                "10",
                "--scenario",
                "deteriorating",
                "--minutes",
                "1",
            ],
            {
                "command": "simulate",
                "patients": 3,
                "speed": 10.0,
                "scenario": "deteriorating",
                "minutes": 1.0,
                "no_enrol": False,
            },
            id="simulate",
        ),
        pytest.param(
            ["replay", "FILE", "--speed", "5"],
            {"command": "replay", "file": "FILE", "speed": 5.0},
            id="replay",
        ),
        pytest.param(
            ["record", "--out", "F", "--minutes", "1"],
            {"command": "record", "out": "F", "minutes": 1.0},
            id="record",
        ),
    ],
)
def test_parser_accepts_every_documented_command(
    argv: list[str], expected: dict[str, object]
) -> None:
    args = build_parser().parse_args(argv)
    assert {k: getattr(args, k) for k in expected} == expected
    assert callable(args.func)


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["demo", "--speed", "0"], id="demo speed 0"),
        pytest.param(["simulate", "--speed", "0"], id="simulate speed 0"),
        pytest.param(["replay", "FILE", "--speed", "0"], id="replay speed 0"),
        pytest.param(["replay", "FILE", "--speed", "-5"], id="negative speed"),
        pytest.param(["replay", "FILE", "--speed", "nan"], id="nan speed"),
        pytest.param(["record", "--out", "F", "--minutes", "0"], id="record minutes 0"),
        pytest.param(
            ["enrol", "--device", "D", "--patient", "P", "--ward", "W", "--until",
             "2026-12-01T00:00:00"],
            id="until without offset",
        ),
        pytest.param(
            ["enrol", "--device", "D", "--patient", "P", "--ward", "W", "--since", "yesterday"],
            id="since not ISO",
        ),
        pytest.param(["enrol", "--device", "D", "--patient", "P"], id="enrol without ward"),
        pytest.param(
            ["enrol", "--device", "D", "--patient", "P", "--ward", "W", "--spo2-scale", "3"],
            id="spo2 scale 3",
        ),
        pytest.param(["db"], id="db without subcommand"),
        pytest.param([], id="no command"),
        pytest.param(["record"], id="record without out"),
    ],
)  # fmt: skip
def test_parser_rejects_bad_arguments(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_until_without_an_offset_says_to_give_one(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["enrol", "--device", "D", "--patient", "P", "--ward", "W", "--until", "2026-12-01"]
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv)
    assert "give a UTC offset" in capsys.readouterr().err


# --- secrets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "password"),
    [
        ("mqtt://ingest:s3cret-pw@broker.example:1883", "s3cret-pw"),
        ("mqtts://ingest:p%40ss%3Aword@broker.example", "p@ss:word"),
    ],
)
def test_mqtt_password_is_kept_but_not_shown(url: str, password: str) -> None:
    endpoint = MqttEndpoint.from_url(url)
    assert endpoint.password == password
    assert endpoint.username == "ingest"
    for shown in (repr(endpoint), str(endpoint)):
        assert password not in shown
        assert "broker.example" in shown


# --- notification channel settings -----------------------------------------------------------

CHANNEL_ENV = {
    "WARDWATCH_HTTP_ADDR": "0.0.0.0:9000",
    "WARDWATCH_WEBHOOK_URL": "https://hooks.example/ward",
    "WARDWATCH_WEBHOOK_SECRET": "sixteen-bytes-or-more",
    "WARDWATCH_SMTP_HOST": "relay.example",
    "WARDWATCH_SMTP_PORT": "587",
    "WARDWATCH_SMTP_FROM": "wardwatch@ward.example",
    "WARDWATCH_SMTP_TO": "nurses@ward.example, senior@ward.example",
    "WARDWATCH_SMTP_DEVICE_TEAM_TO": "devices@ward.example",
    "WARDWATCH_MQTT_ALERT_TOPIC": "wardwatch/v1/alerts/{ward}",
    "WARDWATCH_PUBLIC_URL": "https://wardwatch.example/",
}


def test_channel_settings_are_read_and_off_by_default() -> None:
    settings = from_env(CHANNEL_ENV)
    assert settings.webhook_secret == b"sixteen-bytes-or-more"
    assert settings.smtp == SmtpSettings(
        host="relay.example",
        port=587,
        sender="wardwatch@ward.example",
        to=("nurses@ward.example", "senior@ward.example"),
        device_team_to=("devices@ward.example",),
        starttls=True,  # port 587 is the submission port: STARTTLS unless told otherwise
    )
    assert settings.alert_topic == "wardwatch/v1/alerts/{ward}"
    assert settings.dashboard_url == "https://wardwatch.example"
    assert "sixteen-bytes" not in repr(settings)
    default = from_env({"WARDWATCH_HTTP_ADDR": "[::1]:8081"})
    assert (default.smtp, default.alert_topic, default.webhook_secret) == (None, None, None)
    assert default.dashboard_url == "http://[::1]:8081"  # links point at the dashboard itself


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WARDWATCH_WEBHOOK_SECRET", "short"),
        ("WARDWATCH_SMTP_HOST", "relay.example:25"),
        ("WARDWATCH_SMTP_PORT", "smtp"),
        ("WARDWATCH_SMTP_PORT", "70000"),
        ("WARDWATCH_SMTP_FROM", "wardwatch"),
        ("WARDWATCH_SMTP_FROM", ""),
        ("WARDWATCH_SMTP_TO", "nurses@ward.example; senior"),
        ("WARDWATCH_SMTP_TO", ""),
        ("WARDWATCH_SMTP_DEVICE_TEAM_TO", ""),
        ("WARDWATCH_SMTP_STARTTLS", "maybe"),
        ("WARDWATCH_SMTP_USER", "wardwatch"),  # without its password
        ("WARDWATCH_MQTT_ALERT_TOPIC", "wardwatch/v1/alerts/#"),
        ("WARDWATCH_MQTT_ALERT_TOPIC", "wardwatch/v1/alerts/{patient}"),
        ("WARDWATCH_MQTT_ALERT_TOPIC", "$SYS/alerts"),
        ("WARDWATCH_PUBLIC_URL", "wardwatch.example"),
        ("WARDWATCH_PUBLIC_URL", "https://wardwatch.example/?ward=1"),
    ],
)
def test_a_bad_channel_setting_raises_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name) as raised:
        from_env({**CHANNEL_ENV, name: value})
    assert "sixteen-bytes" not in str(raised.value)


@pytest.mark.parametrize(
    ("name", "missing"),
    [
        ("WARDWATCH_WEBHOOK_SECRET", "WARDWATCH_WEBHOOK_URL"),
        ("WARDWATCH_SMTP_FROM", "WARDWATCH_SMTP_HOST"),
        ("WARDWATCH_SMTP_TO", "WARDWATCH_SMTP_HOST"),
        ("WARDWATCH_SMTP_DEVICE_TEAM_TO", "WARDWATCH_SMTP_HOST"),
    ],
)
def test_a_channel_setting_without_its_channel_is_refused(name: str, missing: str) -> None:
    with pytest.raises(SettingsError, match=f"{name} is set but {missing} is not"):
        from_env({name: CHANNEL_ENV[name]})


def test_the_service_builds_every_configured_channel_and_offers_them_to_policies() -> None:
    settings = from_env(CHANNEL_ENV)
    channels = wardwatch.service.build_channels(
        settings, wardwatch.service.Options(), lambda: datetime(2026, 11, 28, tzinfo=UTC)
    )
    assert sorted(channels) == ["email", "log", "mqtt", "webhook"]
    assert wardwatch.service.available_channels(settings) == frozenset(channels)
    assert sorted(wardwatch.service.build_channels(from_env({}), wardwatch.service.Options())) == [
        "log"
    ]


def test_an_smtp_login_needs_starttls_and_its_password_stays_out_of_repr() -> None:
    login = {"WARDWATCH_SMTP_USER": "wardwatch", "WARDWATCH_SMTP_PASSWORD": "s3cret-pw"}
    settings = from_env({**CHANNEL_ENV, **login})
    assert settings.smtp is not None
    assert (settings.smtp.username, settings.smtp.password) == ("wardwatch", "s3cret-pw")
    assert "s3cret-pw" not in repr(settings)
    with pytest.raises(SettingsError, match="WARDWATCH_SMTP_USER needs WARDWATCH_SMTP_STARTTLS"):
        from_env({**CHANNEL_ENV, **login, "WARDWATCH_SMTP_STARTTLS": "no"})
    on_25 = from_env({**CHANNEL_ENV, "WARDWATCH_SMTP_PORT": "25"})
    assert on_25.smtp is not None
    assert on_25.smtp.starttls is False
