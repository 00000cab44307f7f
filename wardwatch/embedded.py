"""Start a private MQTT broker and PostgreSQL under a data folder, for the demo and the test suite.

Installed binaries come first (Mosquitto, PostgreSQL's ``initdb``/``postgres``): they are the real
production parts and are fast. On a fresh laptop without them, the pip-installed fallbacks take
over: ``amqtt`` (an asyncio MQTT broker, run in a child process) and ``pgserver`` (PostgreSQL
binaries shipped in a wheel). docs/embedded.md says why these two.

Every process started here is a child of ours and is stopped on exit: Ctrl-C leaves none behind.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg

log = logging.getLogger(__name__)


class EmbeddedError(RuntimeError):
    """An embedded service could not be started; the message says which and why."""


@dataclass(frozen=True, slots=True)
class ServiceUrls:
    mqtt_url: str
    database_url: str
    mqtt_kind: str  # "mosquitto" or "amqtt"
    database_kind: str  # "postgresql" or "pgserver"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the service binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
            raise EmbeddedError(f"{what} exited with code {proc.returncode} while starting: {err}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise EmbeddedError(f"{what} did not accept connections on port {port} in {timeout_s:.0f} s")


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout_s: float = 15) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


# --- MQTT -------------------------------------------------------------------------------------


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.path.exists(p)), None
    )


def mosquitto_config(port: int, data_dir: Path, *, persistence: bool = True) -> str:
    """Broker settings that do not drop what the ingestor has not yet taken (docs/embedded.md).

    Mosquitto's default ``max_queued_messages`` of 1000 per client silently drops the rest while a
    persistent session is offline; persistence is off by default, so a restart loses the queue.
    """
    lines = [
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        f"persistence {'true' if persistence else 'false'}",
        f"persistence_location {data_dir}/",
        "autosave_interval 10",
        "max_queued_messages 1000000",
        "max_queued_bytes 0",
        "max_inflight_messages 1000",
        "set_tcp_nodelay true",
        f"log_dest file {data_dir}/mosquitto.log",
        "log_type error",
        "log_type warning",
        "log_type notice",
    ]
    if os.geteuid() == 0:
        # As root Mosquitto drops to user "mosquitto", which cannot write our data folder.
        lines.append("user root")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def mosquitto(
    data_dir: Path, port: int | None = None, *, persistence: bool = True
) -> Iterator[str]:
    """Run Mosquitto on 127.0.0.1; yields its ``mqtt://`` URL."""
    port = port or free_port()
    config = mosquitto_config(port, data_dir, persistence=persistence)
    with _mosquitto_process(data_dir, port, config, "mosquitto"):
        yield f"mqtt://127.0.0.1:{port}"


@contextlib.contextmanager
def _mosquitto_process(
    data_dir: Path, port: int, config: str, what: str
) -> Iterator[subprocess.Popen[bytes]]:
    """Run Mosquitto with ``config`` (written under ``data_dir``); stop it when done."""
    binary = mosquitto_binary()
    if binary is None:
        raise EmbeddedError("mosquitto is not installed")
    data_dir.mkdir(parents=True, exist_ok=True)
    conf = data_dir / "mosquitto.conf"
    conf.write_text(config)
    proc = subprocess.Popen(
        [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        _wait_for_port(port, proc, what, 10)
        yield proc
    finally:
        _stop(proc)


@contextlib.contextmanager
def amqtt_broker(port: int | None = None) -> Iterator[str]:
    """Run the pure-Python amqtt broker in a child process; yields its ``mqtt://`` URL."""
    port = port or free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "wardwatch._amqtt_child", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_port(port, proc, "amqtt broker", 20)
        yield f"mqtt://127.0.0.1:{port}?protocol=3.1.1"  # amqtt has no MQTT v5
    finally:
        _stop(proc, signal.SIGINT)


# --- PostgreSQL ---------------------------------------------------------------------------------


def postgres_bindir() -> Path | None:
    """Directory of an installed PostgreSQL's server binaries, newest version first."""
    pg_config = shutil.which("pg_config")
    candidates: list[str] = []
    if pg_config:
        with contextlib.suppress(subprocess.CalledProcessError, OSError):
            candidates.append(subprocess.check_output([pg_config, "--bindir"], text=True).strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    candidates += sorted(glob.glob("/usr/local/pgsql/bin"))
    for c in candidates:
        if (Path(c) / "initdb").exists() and (Path(c) / "postgres").exists():
            return Path(c)
    return None


def _run_as() -> tuple[dict[str, Any], dict[str, str]]:
    """PostgreSQL refuses to run as root: under root, run it as the ``postgres`` user.

    Returns keyword arguments for ``subprocess`` (user, group and no supplementary groups, so the
    child does not keep root's group) and extra environment variables.
    """
    if os.geteuid() != 0:
        return {}, {}
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise EmbeddedError(
            "running as root and there is no 'postgres' user to run PostgreSQL as; "
            "create one (useradd postgres) or run as an unprivileged user"
        ) from exc
    return {"user": "postgres", "group": "postgres", "extra_groups": []}, {"HOME": "/tmp"}


def _wait_for_sql(url: str, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmbeddedError(f"postgres exited with code {proc.returncode} while starting")
        try:
            with psycopg.connect(url, connect_timeout=2):
                return
        except psycopg.OperationalError as exc:
            last = exc
            time.sleep(0.1)
    raise EmbeddedError(f"postgres did not accept connections in {timeout_s:.0f} s: {last}")


@contextlib.contextmanager
def postgresql(data_dir: Path, port: int | None = None, *, durable: bool = True) -> Iterator[str]:
    """Run PostgreSQL from the installed binaries on 127.0.0.1; yields a libpq URL to ``wardwatch``.

    ``durable=False`` turns fsync off: for throwaway test clusters only.
    """
    bindir = postgres_bindir()
    if bindir is None:
        raise EmbeddedError("PostgreSQL server binaries (initdb, postgres) are not installed")
    run_as, env_extra = _run_as()
    env = {**os.environ, **env_extra, "LC_ALL": "C"}
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "pgdata"
    sockdir = data_dir / "sock"
    sockdir.mkdir(exist_ok=True)
    if run_as:
        pw = pwd.getpwnam(str(run_as["user"]))
        for path in (data_dir, sockdir):
            os.chown(path, pw.pw_uid, pw.pw_gid)
        _make_traversable(data_dir)
    if not (pgdata / "PG_VERSION").exists():
        done = subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                str(pgdata),
                "-U",
                "wardwatch",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
            check=False,
            env=env,
            **run_as,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if done.returncode != 0:
            raise EmbeddedError(f"initdb failed: {done.stderr.decode(errors='replace').strip()}")
    port = port or free_port()
    args = [
        str(bindir / "postgres"),
        "-D",
        str(pgdata),
        "-p",
        str(port),
        "-k",
        str(sockdir),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "max_connections=50",
        "-c",
        "shared_buffers=64MB",
    ]
    if not durable:
        args += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
    log_file = open(data_dir / "postgres.log", "ab")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(args, env=env, stdout=log_file, stderr=log_file, **run_as)
    admin = f"postgresql://wardwatch@127.0.0.1:{port}/postgres"
    try:
        _wait_for_sql(admin, proc, 30)
        with psycopg.connect(admin, autocommit=True) as conn:
            exists = conn.execute(
                "select 1 from pg_database where datname = 'wardwatch'"
            ).fetchone()
            if not exists:
                conn.execute("create database wardwatch")
        yield f"postgresql://wardwatch@127.0.0.1:{port}/wardwatch"
    finally:
        _stop(proc, signal.SIGINT, 30)  # SIGINT = PostgreSQL's "fast" shutdown
        log_file.close()


def _make_traversable(path: Path) -> None:
    """Let the ``postgres`` user reach a data folder that root created (e.g. under /tmp)."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            os.chmod(parent, mode | 0o001)


@contextlib.contextmanager
def pgserver_postgresql(data_dir: Path) -> Iterator[str]:
    """Run the PostgreSQL shipped in the ``pgserver`` wheel; yields a libpq URL."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # pgserver asks platformdirs for a runtime dir, which warns where XDG_RUNTIME_DIR is unset.
        warnings.simplefilter("ignore")
        import pgserver  # noqa: PLC0415 - only needed on machines without PostgreSQL binaries

        server = pgserver.get_server(  # type: ignore[attr-defined]
            str(data_dir / "pgserver"), cleanup_mode="stop"
        )
    try:
        uri = server.get_uri()
        server.psql("select 1")
        with psycopg.connect(uri, autocommit=True) as conn:
            if not conn.execute("select 1 from pg_database where datname='wardwatch'").fetchone():
                conn.execute("create database wardwatch")
        yield psycopg.conninfo.make_conninfo(uri, dbname="wardwatch")
    finally:
        server.cleanup()


# --- Both ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def services(data_dir: Path, *, prefer_installed: bool = True) -> Iterator[ServiceUrls]:
    """Start a broker and a database under ``data_dir``: installed binaries first, else pip ones."""
    with contextlib.ExitStack() as stack:
        if prefer_installed and mosquitto_binary():
            mqtt_url, mqtt_kind = stack.enter_context(mosquitto(data_dir / "mqtt")), "mosquitto"
        else:
            mqtt_url, mqtt_kind = stack.enter_context(amqtt_broker()), "amqtt"
        if prefer_installed and postgres_bindir():
            db_url = stack.enter_context(postgresql(data_dir / "pg"))
            db_kind = "postgresql"
        else:
            db_url, db_kind = stack.enter_context(pgserver_postgresql(data_dir / "pg")), "pgserver"
        log.info("embedded services: %s and %s under %s", mqtt_kind, db_kind, data_dir)
        yield ServiceUrls(mqtt_url, db_url, mqtt_kind, db_kind)


# --- MQTT over TLS with passwords and an ACL (docs/security.md) -------------------------------


@dataclass(frozen=True, slots=True)
class TlsFiles:
    ca_file: Path
    cert_file: Path
    key_file: Path


def _openssl(*args: str, cwd: Path) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        raise EmbeddedError("openssl is not installed: it makes the test certificates")
    done = subprocess.run(
        [binary, *args], cwd=cwd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip()
        raise EmbeddedError(f"openssl {args[0]} failed: {err}")


def make_test_tls(directory: Path, *, days: int = 2) -> TlsFiles:
    """A throwaway CA and a broker certificate for 127.0.0.1 and localhost, made by ``openssl``.

    For tests and demos only: the CA's key is left beside it. P-256 keys, because generating them
    takes milliseconds where RSA takes a noticeable fraction of a second.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    _openssl(
        "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", str(days),
        "-subj", "/CN=wardwatch test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "req", "-new", *ec, "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=localhost",
        cwd=directory,
    )  # fmt: skip
    (directory / "server.ext").write_text(
        "subjectAltName = IP:127.0.0.1, DNS:localhost\n"
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature\n"
        "extendedKeyUsage = serverAuth\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid\n"
    )
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-set_serial", str(int.from_bytes(os.urandom(8), "big")),
        "-days", str(days), "-extfile", "server.ext", "-out", "server.pem",
        cwd=directory,
    )  # fmt: skip
    return TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")


def mosquitto_tls_config(
    port: int, data_dir: Path, tls: TlsFiles, *, password_file: Path, acl_file: Path
) -> str:
    """A TLS-only listener that admits provisioned users only, each within its ACL.

    deploy/mosquitto/mosquitto.conf is the production version of this, with its trade-offs.
    """
    lines = [
        f"listener {port} 127.0.0.1",
        f"cafile {tls.ca_file}",
        f"certfile {tls.cert_file}",
        f"keyfile {tls.key_file}",
        "tls_version tlsv1.2",
        "allow_anonymous false",
        f"password_file {password_file}",
        f"acl_file {acl_file}",
        "persistence false",
        "max_queued_messages 1000000",
        "max_inflight_messages 1000",
        "set_tcp_nodelay true",
        f"log_dest file {data_dir}/mosquitto.log",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",  # refused CONNECTs and "Reloading config." are logged at this level
    ]
    if os.geteuid() == 0:
        lines.append("user root")  # as in mosquitto_config: keep access to our data folder
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class SecureBroker:
    """A running Mosquitto with TLS, a password file and an ACL file."""

    port: int
    ca_file: Path
    log_file: Path
    proc: subprocess.Popen[bytes] = field(repr=False)

    def url(self, username: str | None = None, password: str | None = None) -> str:
        """An ``mqtts://`` URL for the ``ingest.mqtt`` adapter, trusting the broker's CA."""
        auth = ""
        if username is not None:
            auth = quote(username, safe="")
            if password is not None:
                auth += ":" + quote(password, safe="")
            auth += "@"
        return f"mqtts://{auth}127.0.0.1:{self.port}?ca={quote(str(self.ca_file))}"

    def reload(self, timeout_s: float = 10) -> None:
        """Send SIGHUP (what an operator does after provisioning) and wait until it took effect.

        Mosquitto reloads inside its single-threaded loop right after logging "Reloading config.",
        so a connection made once that line is in the log sees the new files.
        """
        before = self._reloads()
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout_s
        while self._reloads() == before:
            if self.proc.poll() is not None:
                raise EmbeddedError(f"mosquitto exited with code {self.proc.returncode} on reload")
            if time.monotonic() > deadline:
                raise EmbeddedError(f"mosquitto did not reload in {timeout_s:.0f} s")
            time.sleep(0.02)

    def _reloads(self) -> int:
        try:
            return self.log_file.read_text(errors="replace").count("Reloading config.")
        except FileNotFoundError:
            return 0


@contextlib.contextmanager
def mosquitto_tls(
    data_dir: Path,
    tls: TlsFiles,
    *,
    password_file: Path,
    acl_file: Path,
    port: int | None = None,
) -> Iterator[SecureBroker]:
    """Run Mosquitto on 127.0.0.1 with TLS, passwords and ACL; yields the running broker."""
    port = port or free_port()
    config = mosquitto_tls_config(
        port, data_dir, tls, password_file=password_file, acl_file=acl_file
    )
    with _mosquitto_process(data_dir, port, config, "mosquitto (TLS)") as proc:
        yield SecureBroker(port, tls.ca_file, data_dir / "mosquitto.log", proc)
