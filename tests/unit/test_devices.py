"""Device credentials: Mosquitto's password-file and ACL formats, idempotent provisioning, the CLI.

The real broker accepting these files is tests/integration/test_security.py; here the formats are
pinned against a line ``mosquitto_passwd`` 2.0.11 wrote, so these tests need no services.
"""

from __future__ import annotations

import base64
import doctest
import logging
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wardwatch.devices
from ingest.codec import device_from_topic
from ingest.mqtt import MqttEndpoint
from wardwatch.cli import main
from wardwatch.devices import (
    ACL_FILE,
    PASSWORD_FILE,
    Credential,
    ProvisionError,
    Role,
    acl_block,
    check_password,
    new_password,
    password_line,
    provision,
    updated_acl,
    updated_passwords,
)

# Made on this machine by `mosquitto_passwd -c -b pwfile dev-a s3cret` (Mosquitto 2.0.11).
MOSQUITTO_LINE = (
    "dev-a:$7$101$GxjOoKkR2vI8Z5uk$yP79DMjT8iS5H5NyQiEKrHhFMht+NvnCE+ha23jpwvrHflyGAmcKqJgDUIiky0C"
    "/uwWX+r779X3H47ILIz7NCQ=="
)


def test_docstring_examples() -> None:
    assert doctest.testmod(wardwatch.devices).failed == 0


# --- password file ---------------------------------------------------------------------------


def test_password_line_matches_mosquitto_passwd_given_its_salt() -> None:
    salt = base64.b64decode(MOSQUITTO_LINE.split("$")[3])
    assert password_line("dev-a", "s3cret", salt=salt) == MOSQUITTO_LINE


def test_password_line_format() -> None:
    line = password_line("ox-0042", "pw")
    user, _, encoded = line.partition(":")
    empty, kind, iterations, salt, digest = encoded.split("$")
    assert (user, empty, kind, iterations) == ("ox-0042", "", "7", "101")
    assert len(base64.b64decode(salt)) == 12
    assert len(base64.b64decode(digest)) == 64
    assert "\n" not in line


def test_each_line_has_its_own_salt() -> None:
    assert password_line("ox-1", "same") != password_line("ox-1", "same")


def test_check_password_accepts_mosquitto_passwd_lines() -> None:
    assert check_password(MOSQUITTO_LINE, "s3cret")
    assert not check_password(MOSQUITTO_LINE, "s3cret ")
    assert not check_password(MOSQUITTO_LINE, "")


@pytest.mark.parametrize(
    "line",
    [
        "",
        "dev-a",
        "dev-a:s3cret",  # plain text: Mosquitto 2.0 refuses it too
        "dev-a:$6$GxjOoKkR2vI8Z5uk$yP79",  # Mosquitto 1.x sha512, not written by us
        "dev-a:$7$x$GxjOoKkR2vI8Z5uk$yP79",
        "dev-a:$7$101$not base64!$yP79",
    ],
)
def test_check_password_rejects_malformed_lines(line: str) -> None:
    assert not check_password(line, "s3cret")


@settings(max_examples=50, deadline=None)
@given(password=st.text(min_size=1, max_size=80), iterations=st.integers(1, 5))
def test_password_line_round_trips(password: str, iterations: int) -> None:
    line = password_line("ox-1", password, iterations=iterations)
    assert check_password(line, password)
    assert not check_password(line, password + "x")


def test_password_line_refuses_bad_salt_and_iterations() -> None:
    with pytest.raises(ProvisionError, match="salt"):
        password_line("ox-1", "pw", salt=b"short")
    with pytest.raises(ProvisionError, match="iterations"):
        password_line("ox-1", "pw", iterations=0)


def test_new_passwords_are_long_random_and_url_safe() -> None:
    passwords = {new_password() for _ in range(100)}
    assert len(passwords) == 100
    for pw in passwords:
        assert len(pw) == 43  # 32 bytes in unpadded base64url
        assert set(pw) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


# --- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "",
        "+",  # would grant write on every device's topic
        "#",
        "ox/1",  # would move the grant to another subtree
        "ox:1",  # would split the password-file line
        "ox 1",
        "ox\n1",
        "öx-1",
        "x" * 65,
    ],
)
def test_unsafe_names_are_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(ProvisionError, match="not a usable"):
        acl_block(name, Role.DEVICE)
    with pytest.raises(ProvisionError, match="not a usable"):
        provision([name], tmp_path)
    assert not (tmp_path / PASSWORD_FILE).exists()


@pytest.mark.parametrize("name", ["ox-0042", "W.1_a", "x" * 64, "0"])
def test_every_accepted_name_is_a_device_id_ingest_accepts(name: str) -> None:
    acl_block(name, Role.DEVICE)
    assert device_from_topic(f"wardwatch/v1/devices/{name}/vitals") == name


# --- ACL -------------------------------------------------------------------------------------


def test_acl_blocks() -> None:
    assert acl_block("ox-1", Role.DEVICE) == (
        "user ox-1\ntopic write wardwatch/v1/devices/ox-1/#\n"
    )
    assert acl_block("wardwatch-ingest", Role.INGESTOR) == (
        "user wardwatch-ingest\ntopic read wardwatch/v1/devices/+/+\n"
    )


def test_updated_acl_adds_blocks_after_a_header() -> None:
    text = updated_acl("", {"ox-1": Role.DEVICE, "ingest": Role.INGESTOR})
    assert text.startswith("# Mosquitto ACL for wardwatch")
    assert text.endswith(
        "\nuser ox-1\ntopic write wardwatch/v1/devices/ox-1/#\n"
        "\nuser ingest\ntopic read wardwatch/v1/devices/+/+\n"
    )
    assert updated_acl(text, {"ox-1": Role.DEVICE, "ingest": Role.INGESTOR}) == text


def test_updated_acl_keeps_what_it_does_not_manage() -> None:
    existing = (
        "# trust's own comment\n"
        "user ops\n"
        "topic readwrite $SYS/#\n"
        "# ops may read broker stats\n"
        "\n"
        "user ox-1\n"
        "topic write wardwatch/v1/devices/ox-1/#\n"
    )
    text = updated_acl(existing, {"ox-2": Role.DEVICE})
    kept = [line for line in text.splitlines() if line.strip()]
    assert kept[:6] == [line for line in existing.splitlines() if line.strip()]  # only blanks move
    assert "user ox-1\ntopic write wardwatch/v1/devices/ox-1/#\n" in text
    assert text.endswith("user ox-2\ntopic write wardwatch/v1/devices/ox-2/#\n")
    assert "# Mosquitto ACL for wardwatch" not in text  # the trust's preamble stays in charge


def test_updated_acl_refuses_to_change_a_role() -> None:
    existing = updated_acl("", {"wardwatch-ingest": Role.INGESTOR})
    with pytest.raises(ProvisionError, match="different block"):
        updated_acl(existing, {"wardwatch-ingest": Role.DEVICE})


# --- password file text ----------------------------------------------------------------------


def test_updated_passwords_replaces_in_place_and_appends() -> None:
    existing = "a:$7$1$x$y\nb:$7$1$x$y\nc:$7$1$x$y\nb:$7$1$dup$dup\n"
    text = updated_passwords(existing, {"b": "b:NEW", "d": "d:NEW"})
    assert text == "a:$7$1$x$y\nb:NEW\nc:$7$1$x$y\nd:NEW\n"
    assert updated_passwords("", {"a": "a:1"}) == "a:1\n"
    assert updated_passwords("a:1\n\n\n", {}) == "a:1\n"


# --- provision -------------------------------------------------------------------------------


def _lines(path: Path) -> dict[str, str]:
    return {line.split(":", 1)[0]: line for line in path.read_text().splitlines()}


def test_provision_writes_files_mosquitto_reads(tmp_path: Path) -> None:
    creds = provision(["ox-1", "ox-2"], tmp_path, ingestor="wardwatch-ingest")
    assert [(c.username, c.role) for c in creds] == [
        ("ox-1", Role.DEVICE),
        ("ox-2", Role.DEVICE),
        ("wardwatch-ingest", Role.INGESTOR),
    ]
    lines = _lines(tmp_path / PASSWORD_FILE)
    assert list(lines) == ["ox-1", "ox-2", "wardwatch-ingest"]
    for c in creds:
        assert check_password(lines[c.username], c.password)
    acl = (tmp_path / ACL_FILE).read_text()
    for c in creds:
        assert acl_block(c.username, c.role) in acl
    assert stat.S_IMODE((tmp_path / PASSWORD_FILE).stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / ACL_FILE).stat().st_mode) == 0o644
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(f".{PASSWORD_FILE}.")]


def test_reprovisioning_rotates_one_password_and_touches_nothing_else(tmp_path: Path) -> None:
    first = {c.username: c for c in provision(["ox-1", "ox-2", "ox-3"], tmp_path)}
    before = _lines(tmp_path / PASSWORD_FILE)
    acl_before = (tmp_path / ACL_FILE).read_text()
    (again,) = provision(["ox-2"], tmp_path)
    after = _lines(tmp_path / PASSWORD_FILE)
    assert list(after) == ["ox-1", "ox-2", "ox-3"]  # order kept
    assert after["ox-1"] == before["ox-1"]
    assert after["ox-3"] == before["ox-3"]
    assert after["ox-2"] != before["ox-2"]
    assert check_password(after["ox-2"], again.password)
    assert not check_password(after["ox-2"], first["ox-2"].password)
    assert (tmp_path / ACL_FILE).read_text() == acl_before


def test_provision_keeps_the_operators_mode(tmp_path: Path) -> None:
    provision(["ox-1"], tmp_path)
    (tmp_path / PASSWORD_FILE).chmod(0o600)
    provision(["ox-2"], tmp_path)
    assert stat.S_IMODE((tmp_path / PASSWORD_FILE).stat().st_mode) == 0o600


def test_provision_refuses_before_writing_anything(tmp_path: Path) -> None:
    provision([], tmp_path, ingestor="wardwatch-ingest")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ProvisionError, match="different block"):
        provision(["ox-1", "wardwatch-ingest"], tmp_path)  # the ingestor's name, as a device
    with pytest.raises(ProvisionError, match="both as a device and as the ingestor"):
        provision(["ox-1"], tmp_path, ingestor="ox-1")
    with pytest.raises(ProvisionError, match="nothing to provision"):
        provision([], tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_credential_hides_its_password_and_gives_a_url_ingest_understands() -> None:
    c = Credential("ox-1", "p4ss_w-rd", Role.DEVICE)
    assert "p4ss_w-rd" not in repr(c)
    url = c.url("broker.trust.nhs.uk")
    assert url == "mqtts://ox-1:p4ss_w-rd@broker.trust.nhs.uk:8883"
    endpoint = MqttEndpoint.from_url(url)
    assert (endpoint.username, endpoint.password, endpoint.tls, endpoint.port) == (
        "ox-1",
        "p4ss_w-rd",
        True,
        8883,
    )


# --- CLI -------------------------------------------------------------------------------------


def test_cli_prints_one_url_per_user_and_logs_no_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    argv = ["-v", "devices", "provision", "--device", "ox-1", "--device", "ox-2"]
    argv += [
        "--ingestor",
        "wardwatch-ingest",
        "--out",
        str(tmp_path),
        "--broker-host",
        "mq.example",
    ]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    rows = [line.split("\t") for line in out.splitlines()]
    assert [name for name, _ in rows] == ["ox-1", "ox-2", "wardwatch-ingest"]
    lines = _lines(tmp_path / PASSWORD_FILE)
    for name, url in rows:
        endpoint = MqttEndpoint.from_url(url)
        assert (endpoint.host, endpoint.port, endpoint.username) == ("mq.example", 8883, name)
        assert endpoint.password is not None
        assert check_password(lines[name], endpoint.password)
        assert endpoint.password not in err
        assert endpoint.password not in caplog.text
    assert "kill -HUP" in err
    assert "WARDWATCH_MQTT_URL" in err


def test_cli_refuses_a_dangerous_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", "provision", "--device", "ox/+", "--out", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "not a usable" in err
    assert not (tmp_path / PASSWORD_FILE).exists()
