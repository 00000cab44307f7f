"""The command line against real services: migrations, enrolment, and the demo's lifecycle."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest
from prometheus_client import CollectorRegistry

from ingest import pipeline as pipe
from wardwatch.embedded import free_port

pytestmark = pytest.mark.integration


def wardwatch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wardwatch", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_db_upgrade_is_idempotent(pg_server: str) -> None:
    name = f"cli_{os.getpid()}_{time.monotonic_ns() % 10**6}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"create database {name}")
    url = psycopg.conninfo.make_conninfo(pg_server, dbname=name)
    first = wardwatch("db", "upgrade", "--database-url", url)
    assert first.returncode == 0, first.stderr
    assert "001_initial.sql" in first.stdout
    second = wardwatch("db", "upgrade", "--database-url", url)
    assert second.returncode == 0, second.stderr
    assert "up to date" in second.stdout


def test_enrolment_is_time_bounded(database_url: str, uid: str) -> None:
    device = f"dev-{uid}"
    since = datetime(2026, 11, 1, 8, tzinfo=UTC)
    until = since + timedelta(days=2)
    ok = wardwatch(
        "enrol",
        "--device",
        device,
        "--patient",
        "p1",
        "--ward",
        "w",
        "--since",
        since.isoformat(),
        "--database-url",
        database_url,
    )
    assert ok.returncode == 0, ok.stderr
    assert f"device {device} → patient p1" in ok.stdout
    clash = wardwatch(
        "enrol",
        "--device",
        device,
        "--patient",
        "p2",
        "--ward",
        "w",
        "--since",
        (since + timedelta(hours=1)).isoformat(),
        "--database-url",
        database_url,
    )
    assert clash.returncode == 1
    assert "assigned to patient p1" in clash.stderr
    ended = wardwatch(
        "enrol",
        "--device",
        device,
        "--patient",
        "p1",
        "--ward",
        "w",
        "--since",
        since.isoformat(),
        "--until",
        until.isoformat(),
        "--database-url",
        database_url,
    )
    assert ended.returncode == 0, ended.stderr
    assert until.isoformat() in ended.stdout

    # A reading inside the assignment is the patient's; one after it ended is quarantined.
    p = pipe.Pipeline(
        database_url,
        settings=pipe.Settings(max_future=timedelta(days=3650)),
        metrics=pipe.PipelineMetrics.create(CollectorRegistry()),
        clock=lambda: datetime.now(UTC),
    )
    topic = f"wardwatch/v1/devices/{device}/vitals"
    now_us = int(time.time() * 1e6)
    try:
        result = p.process(
            [
                (
                    topic,
                    orjson.dumps({"ts": (since + timedelta(days=1)).isoformat(), "heart_rate": 70}),
                    now_us,
                ),
                (
                    topic,
                    orjson.dumps(
                        {"ts": (until + timedelta(hours=1)).isoformat(), "heart_rate": 71}
                    ),
                    now_us,
                ),
            ]
        )
    finally:
        p.close()
    assert (result.stored, result.quarantined) == (1, 1)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("select patient_id from readings").fetchall() == [("p1",)]
        (detail,) = conn.execute(
            "select detail from quarantine where reason = 'unknown device'"
        ).fetchone() or ("",)
    assert "was not assigned to a patient" in str(detail)


def test_a_bad_setting_fails_at_start_naming_it() -> None:
    bad = wardwatch("run", env={"WARDWATCH_HTTP_ADDR": "localhost"})
    assert bad.returncode == 2
    assert "WARDWATCH_HTTP_ADDR" in bad.stderr


def test_an_unreachable_database_fails_at_start_naming_the_setting() -> None:
    down = f"postgresql://wardwatch:s3cret@127.0.0.1:{free_port()}/wardwatch"
    run = wardwatch("db", "upgrade", env={"WARDWATCH_DATABASE_URL": down})
    assert run.returncode == 2
    assert "WARDWATCH_DATABASE_URL" in run.stderr
    assert "s3cret" not in run.stderr
    assert "Traceback" not in run.stderr


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="wardwatch-demo-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _children_using(path: Path) -> list[str]:
    """Command lines of live processes that mention ``path`` (our broker and database)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(path) in cmdline:
            found.append(cmdline)
    return found


@pytest.mark.parametrize("services", ["auto", "pip"], ids=["installed", "fresh-laptop"])
def test_demo_for_a_while_prints_a_summary(data_dir: Path, services: str) -> None:
    # "pip" is what a laptop without mosquitto and PostgreSQL gets: amqtt and pgserver.
    run = wardwatch(
        "demo", "--minutes", "0.25", "--speed", "480", "--patients", "6",
        "--http-addr", "127.0.0.1:0", "--data-dir", str(data_dir), "--services", services,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert re.search(r"dashboard: http://127\.0\.0\.1:\d+/", run.stdout)
    stored = re.search(r"readings stored: (\d+)", run.stdout)
    assert stored is not None, run.stdout
    assert int(stored.group(1)) > 1000  # 6 patients, 2 simulated hours, several metrics a minute
    assert re.search(r"quarantined: \d+", run.stdout)
    assert re.search(r"alerts raised: \d+", run.stdout)
    assert _children_using(data_dir) == []


def test_demo_stops_cleanly_on_ctrl_c(data_dir: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wardwatch",
            "demo",
            "--patients",
            "4",
            "--speed",
            "60",
            "--http-addr",
            "127.0.0.1:0",
            "--data-dir",
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = None
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            found = re.search(r"dashboard: (http://\S+?)/", line)
            url = found.group(1) if found else None
        assert url is not None, "the demo never printed its dashboard address"
        assert httpx.get(f"{url}/healthz", timeout=10).json()["status"] == "ok"
        assert _children_using(data_dir) != []  # the broker and database are running
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert _children_using(data_dir) == []


def test_record_then_replay_through_the_command_line(mqtt_url: str, tmp_path: Path) -> None:
    out = tmp_path / "ward.jsonl"
    recorder = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wardwatch",
            "record",
            "--out",
            str(out),
            "--minutes",
            "0.15",
            "--mqtt-url",
            mqtt_url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while (not out.exists() or not out.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)  # the header line is written once the subscription is granted
        sim = wardwatch(
            "simulate",
            "--patients",
            "2",
            "--speed",
            "600",
            "--minutes",
            "0.05",
            "--no-enrol",
            "--mqtt-url",
            mqtt_url,
        )
        assert sim.returncode == 0, sim.stderr
        stdout, stderr = recorder.communicate(timeout=60)
    finally:
        if recorder.poll() is None:
            recorder.kill()
            recorder.communicate()
    assert recorder.returncode == 0, stderr
    recorded = int(re.search(r"recorded (\d+) messages", stdout).group(1))  # type: ignore[union-attr]
    published = int(re.search(r"published (\d+) messages", sim.stdout).group(1))  # type: ignore[union-attr]
    assert recorded == published > 0
    replayed = wardwatch("replay", str(out), "--speed", "100", "--mqtt-url", mqtt_url)
    assert replayed.returncode == 0, replayed.stderr
    assert f"replayed {recorded} messages" in replayed.stdout


def test_quarantine_list_then_retry_after_enrolment(database_url: str, uid: str) -> None:
    device = f"dev-{uid}"
    ts = datetime(2026, 11, 28, 8, tzinfo=UTC)
    p = pipe.Pipeline(
        database_url,
        settings=pipe.Settings(max_future=timedelta(days=3650)),
        metrics=pipe.PipelineMetrics.create(CollectorRegistry()),
        clock=lambda: datetime.now(UTC),
    )
    payload = orjson.dumps([{"ts": ts.isoformat(), "heart_rate": 88, "spo2": 95}])
    try:
        p.process([(f"wardwatch/v1/devices/{device}/vitals", payload, int(time.time() * 1e6))])
    finally:
        p.close()
    listed = wardwatch("quarantine", "list", "--database-url", database_url)
    assert listed.returncode == 0, listed.stderr
    assert f"{device}\tunknown device\tdevice {device} is not enrolled" in listed.stdout
    assert "waiting for retry: unknown device 1" in listed.stderr

    enrolled = wardwatch(
        "enrol",
        "--device",
        device,
        "--patient",
        f"pt-{uid}",
        "--ward",
        "w",
        "--since",
        (ts - timedelta(hours=1)).isoformat(),
        "--database-url",
        database_url,
    )
    assert enrolled.returncode == 0, enrolled.stderr
    for _ in range(2):  # a second retry finds nothing left and doubles nothing
        retried = wardwatch(
            "quarantine", "retry", "--reason", "unknown device", "--database-url", database_url
        )
        assert retried.returncode == 0, retried.stderr
    assert "retried 0 messages" in retried.stdout
    with psycopg.connect(database_url) as conn:
        assert conn.execute("select count(*) from readings").fetchone() == (2,)
    after = wardwatch("quarantine", "list", "--all", "--database-url", database_url)
    assert "(retried " in after.stdout


def test_a_bed_given_at_enrolment_is_kept_until_changed(database_url: str, uid: str) -> None:
    patient = f"p-{uid}"

    def enrol(*extra: str) -> None:
        done = wardwatch(
            "enrol", "--device", f"dev-{uid}", "--patient", patient, "--ward", "w",
            "--database-url", database_url, *extra,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

    def bed() -> object:
        with psycopg.connect(database_url) as conn:
            row = conn.execute("select bed from patients where patient_id = %s", (patient,))
            return row.fetchone()[0]  # type: ignore[index]

    enrol("--bed", "room 3")
    assert bed() == "room 3"
    enrol()  # re-enrolled without --bed: notifications still say where the patient is
    assert bed() == "room 3"
    enrol("--bed", "4B")
    assert bed() == "4B"
