"""Per-device broker credentials: Mosquitto password-file lines, ACL entries and connection URLs.

Every device gets its own username (its device id) and a random password; the broker's ACL lets
it publish only under ``wardwatch/v1/devices/<its id>/``, so a device that holds one watch's
credentials cannot write readings for another. The ingestor gets a user that may only read. The
ingest codec adds the last check: a ``device_id`` inside a payload must match the topic's
("device mismatch"). docs/security.md has the threat model.

Per-user ACL blocks rather than one ``pattern write wardwatch/v1/devices/%u/#`` line: a pattern
applies to every user in the password file, so the ingestor (or any service user added later)
would also be allowed to publish as a device named like itself; explicit blocks grant only what
was provisioned, show it in one file for an audit, and deleting a block revokes one device. The
cost (two lines per device) is nothing to Mosquitto, which finds a user's block once, at CONNECT.

Mosquitto 2.0 formats checked against its source (``apps/mosquitto_passwd/mosquitto_passwd.c``,
``src/password_mosq.h``) and proved by the integration tests against a real broker and
``mosquitto_passwd``:

- password file: one ``username:$7$<iterations>$<base64 salt>$<base64 hash>`` per line, where 7 is
  PBKDF2-HMAC-SHA512, the salt 12 random bytes and the hash 64 bytes; no comments allowed.
- ACL file: ``user <name>`` starts a block of ``topic read|write|readwrite <filter>`` lines; ``#``
  starts a comment. Mosquitto 2.0's ACL file is consulted on delivery, not on SUBSCRIBE: a client
  is granted any subscription, shared (``$share/...``) ones included, and receives only messages
  whose topic its ``read`` lines allow. So the ingestor needs no ``$share`` entry.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import os
import re
import secrets
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Final
from urllib.parse import quote

__all__ = [
    "ACL_FILE",
    "PASSWORD_FILE",
    "PBKDF2_ITERATIONS",
    "Credential",
    "ProvisionError",
    "Role",
    "acl_block",
    "check_password",
    "new_password",
    "password_line",
    "provision",
    "updated_acl",
    "updated_passwords",
]

PASSWORD_FILE: Final = "passwords"  # noqa: S105 - a file name, not a password
ACL_FILE: Final = "acl"
DEVICE_TOPIC_ROOT: Final = "wardwatch/v1/devices"

#: Same alphabet and length as the device ids the ingest codec accepts in topics. Anything else
#: would be dangerous here: ``+`` or ``#`` in a name would widen its ACL line to other devices'
#: topics, ``/`` would move it, ``:`` would break the password file and spaces the ACL file.
NAME: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")

#: mosquitto_passwd's default (PW_DEFAULT_ITERATIONS, Mosquitto 2.0). Key stretching protects weak
#: human passwords; ours carry 256 random bits, so more iterations would only slow every CONNECT
#: (and a reconnect storm of a whole ward) without making a stolen hash any easier to reverse.
PBKDF2_ITERATIONS: Final = 101
_HASH_TYPE: Final = 7  # mosquitto_pwhash_type pw_sha512_pbkdf2
_SALT_BYTES: Final = 12  # SALT_LEN in mosquitto_passwd.c
_HASH_BYTES: Final = 64  # SHA-512 output
_PASSWORD_BYTES: Final = 32  # 256 bits from the OS's CSPRNG

_ACL_HEADER: Final = (
    "# Mosquitto ACL for wardwatch, maintained by `wardwatch devices provision`.\n"
    "# A device may only publish under wardwatch/v1/devices/<its id>/;\n"
    "# the ingestor may only read.\n"
    "# Mosquitto 2.0 checks these on delivery, not on SUBSCRIBE (docs/security.md).\n"
)


class ProvisionError(ValueError):
    """A name or file cannot be provisioned; the message says which and why (never a password)."""


class Role(Enum):
    DEVICE = "device"
    INGESTOR = "ingestor"


@dataclass(frozen=True, slots=True)
class Credential:
    """A broker username and its new password, to hand to the device maker or the ingestor."""

    username: str
    password: str = field(repr=False)
    role: Role

    def url(self, host: str, port: int = 8883) -> str:
        """The ``mqtts://`` URL the device (or ``WARDWATCH_MQTT_URL``) connects with."""
        user, pw = quote(self.username, safe=""), quote(self.password, safe="")
        return f"mqtts://{user}:{pw}@{host}:{port}"


def _check_name(name: str) -> str:
    if NAME.fullmatch(name) is None:
        raise ProvisionError(
            f"{name!r} is not a usable device or user name: 1–64 characters from "
            "A–Z a–z 0–9 . _ - (the device ids the ingest codec accepts)"
        )
    return name


def new_password() -> str:
    """A random password of 256 bits, URL-safe so it sits in an ``mqtts://`` URL unescaped."""
    return secrets.token_urlsafe(_PASSWORD_BYTES)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def password_line(
    username: str,
    password: str,
    *,
    salt: bytes | None = None,
    iterations: int = PBKDF2_ITERATIONS,
) -> str:
    """The password-file line for ``username``, as ``mosquitto_passwd`` writes it (no newline).

    >>> password_line("ox-1", "pw", salt=bytes(12)).split("$")[:4]
    ['ox-1:', '7', '101', 'AAAAAAAAAAAAAAAA']
    """
    _check_name(username)
    salt = secrets.token_bytes(_SALT_BYTES) if salt is None else salt
    if len(salt) != _SALT_BYTES:
        raise ProvisionError(f"salt must be {_SALT_BYTES} bytes, got {len(salt)}")
    if iterations < 1:
        raise ProvisionError(f"iterations must be positive, got {iterations}")
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, _HASH_BYTES)
    return f"{username}:${_HASH_TYPE}${iterations}${_b64(salt)}${_b64(digest)}"


def check_password(line: str, password: str) -> bool:
    """Whether ``password`` matches a ``$7$`` password-file line (ours or mosquitto_passwd's)."""
    _, sep, encoded = line.strip().partition(":")
    fields = encoded.split("$")
    if not sep or len(fields) != 5 or fields[0] or fields[1] != str(_HASH_TYPE):
        return False
    try:
        iterations = int(fields[2])
        salt = base64.b64decode(fields[3], validate=True)
        expected = base64.b64decode(fields[4], validate=True)
    except ValueError:
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, len(expected))
    return hmac.compare_digest(digest, expected)


def acl_block(username: str, role: Role) -> str:
    """The ACL lines for one user: a device writes its own subtree; the ingestor reads all devices'.

    >>> print(acl_block("ox-1", Role.DEVICE), end="")
    user ox-1
    topic write wardwatch/v1/devices/ox-1/#
    """
    _check_name(username)
    if role is Role.DEVICE:
        grant = f"topic write {DEVICE_TOPIC_ROOT}/{username}/#"
    else:
        # vitals, waveform and status of every device; never write, so a leaked ingestor
        # credential cannot inject readings.
        grant = f"topic read {DEVICE_TOPIC_ROOT}/+/+"
    return f"user {username}\n{grant}\n"


# --- file contents (pure) ------------------------------------------------------------------------


def updated_passwords(existing: str, lines: Mapping[str, str]) -> str:
    """``existing`` password-file text with the lines of the users in ``lines`` replaced or added.

    Other users' lines are kept as they were and where they were; new users go at the end.
    """
    out: list[str] = []
    placed: set[str] = set()
    for line in existing.splitlines():
        if not line.strip():
            continue
        user = line.split(":", 1)[0].strip()
        if user in lines:
            if user not in placed:  # a duplicate of a replaced user goes with it
                out.append(lines[user])
                placed.add(user)
            continue
        out.append(line)
    out += [line for user, line in lines.items() if user not in placed]
    return "".join(f"{line}\n" for line in out)


def _acl_user(line: str) -> str | None:
    parts = line.split(None, 1)
    if len(parts) == 2 and parts[0] == "user":
        return parts[1].strip()
    return None


def _acl_blocks(text: str) -> tuple[str, dict[str, str]]:
    """Split an ACL file into what precedes the first ``user`` line and each user's block."""
    preamble: list[str] = []
    blocks: dict[str, list[str]] = {}
    current = preamble
    for line in text.splitlines():
        user = _acl_user(line)
        if user is not None:
            current = blocks.setdefault(user, [])
        current.append(line)
    return _joined(preamble), {user: _joined(lines) for user, lines in blocks.items()}


def _joined(lines: list[str]) -> str:
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return "".join(f"{line}\n" for line in lines)


def updated_acl(existing: str, grants: Mapping[str, Role]) -> str:
    """``existing`` ACL text with each granted user's block written; other blocks kept.

    Refuses to change a user's role (a device named like the ingestor would otherwise silently
    take away the ingestor's read access): delete the old block by hand first.
    """
    preamble, blocks = _acl_blocks(existing)
    for user, role in grants.items():
        block = acl_block(user, role)
        if user in blocks and blocks[user] != block:
            raise ProvisionError(
                f"the ACL already has a different block for {user!r}; "
                f"provisioning it as a {role.value} would replace it: edit the ACL file by hand"
            )
        blocks[user] = block
    return "\n".join([preamble or _ACL_HEADER, *blocks.values()])


# --- files ---------------------------------------------------------------------------------------


def _write_atomically(path: Path, text: str, new_mode: int) -> None:
    """Replace ``path`` in one step (Mosquitto may reload at any moment), keeping mode and owner."""
    try:
        st = path.stat()
    except FileNotFoundError:
        mode, owner = new_mode, None
    else:
        mode, owner = stat.S_IMODE(st.st_mode), (st.st_uid, st.st_gid)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        if owner is not None:
            # e.g. root:mosquitto so the broker can read it; kept where we are allowed to.
            with contextlib.suppress(PermissionError):
                os.chown(tmp, *owner)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(out_dir: Path) -> Iterator[None]:
    """Serialise provisioning runs on one folder: two operators cannot lose each other's lines."""
    with open(out_dir / ".provision.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


def provision(
    device_ids: Iterable[str],
    out_dir: Path,
    *,
    ingestor: str | None = None,
    iterations: int = PBKDF2_ITERATIONS,
) -> list[Credential]:
    """Give each device (and the ingestor) a new password; write ``passwords`` and ``acl``.

    Idempotent apart from the new passwords: provisioning a device again rotates its password and
    leaves every other line alone. Returns the credentials, in the order given, ingestor last;
    Mosquitto applies the files on its next reload (SIGHUP), which also disconnects clients
    whose password no longer matches.
    """
    grants: dict[str, Role] = {}
    for device_id in device_ids:
        grants[_check_name(device_id)] = Role.DEVICE
    if ingestor is not None:
        if _check_name(ingestor) in grants:
            raise ProvisionError(f"{ingestor!r} is given both as a device and as the ingestor")
        grants[ingestor] = Role.INGESTOR
    if not grants:
        raise ProvisionError("nothing to provision: give at least one device or the ingestor")
    credentials = [Credential(user, new_password(), role) for user, role in grants.items()]
    lines = {
        c.username: password_line(c.username, c.password, iterations=iterations)
        for c in credentials
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    with _locked(out_dir):
        passwords_path, acl_path = out_dir / PASSWORD_FILE, out_dir / ACL_FILE
        acl = updated_acl(_read(acl_path), grants)  # first: it may refuse, before any write
        passwords = updated_passwords(_read(passwords_path), lines)
        # ACL first: should Mosquitto reload between the two writes, no device is then admitted
        # before its grant exists (it would connect and see every publish refused).
        _write_atomically(acl_path, acl, 0o644)
        _write_atomically(passwords_path, passwords, 0o640)
    return credentials
