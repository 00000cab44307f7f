"""The TimescaleDB code path: migrations turn readings into a hypertable; the key still dedups.

Runs against a real TimescaleDB (PostgreSQL 17 + timescaledb, built to WebAssembly) started by
``../shared/tools/timescaledb-server``. That build takes one connection at a time and has no
COPY FROM STDIN, so this test writes with INSERT; the COPY path is covered on plain PostgreSQL.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from signals.vitals import Metric
from storage import migrate, readings
from wardwatch.embedded import free_port

pytestmark = pytest.mark.integration

TOOL = Path(__file__).resolve().parents[3] / "shared" / "tools" / "timescaledb-server"


@pytest.fixture(scope="module")
def timescaledb() -> Iterator[str]:
    if not TOOL.exists():
        pytest.skip(f"{TOOL} is not here (it comes with the project's shared/ folder)")
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed to run the TimescaleDB test server")
    proc = subprocess.Popen(
        [str(TOOL), "--port", str(free_port())],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = ""
        deadline = time.monotonic() + 240  # the first run installs two npm packages
        while not line.startswith("ready") and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                err = proc.stderr.read() if proc.stderr else ""
                pytest.fail(f"timescaledb-server exited: {err[-2000:]}")
        assert line.startswith("ready"), "timescaledb-server did not become ready"
        yield line.split()[1]
    finally:
        proc.terminate()
        proc.wait(20)
        for pipe in (proc.stdout, proc.stderr):
            if pipe:
                pipe.close()


def test_migrations_make_readings_a_hypertable_and_dedup_still_holds(timescaledb: str) -> None:
    assert "timescaledb_hypertable" in migrate.upgrade(timescaledb)
    assert migrate.upgrade(timescaledb) == []  # idempotent
    ts = datetime(2026, 11, 28, 9, tzinfo=UTC)
    rows = [
        ("dev-1", int(Metric.HEART_RATE), ts + timedelta(minutes=i), "pt-1", 70.0 + i, 0, ts)
        for i in range(5)
    ]
    with psycopg.connect(timescaledb) as conn:
        hypertables = conn.execute(
            "select hypertable_name from timescaledb_information.hypertables"
        ).fetchall()
        assert hypertables == [("readings",)]
        insert = (
            "insert into readings (device_id, metric, ts, patient_id, value, utc_offset_min,"
            " received_at) values (%s, %s, %s, %s, %s, %s, %s) on conflict do nothing"
        )
        with conn.cursor() as cur:
            cur.executemany(insert, rows)
            cur.executemany(insert, rows)  # redelivered
        conn.commit()
        assert conn.execute("select count(*) from readings").fetchone() == (5,)
        latest = readings.latest_values(conn, ["pt-1"], [Metric.HEART_RATE])
    assert latest["pt-1"][Metric.HEART_RATE][1] == 74.0
