"""Real services for the suite: a Mosquitto and a PostgreSQL started here on free ports.

Each test that needs a database gets a fresh one, cloned from a migrated template, so tests never
see each other's rows; each test uses its own device ids, so a shared broker is safe.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import conninfo

from storage import migrate
from wardwatch import embedded


@pytest.fixture(scope="session")
def services_dir() -> Iterator[Path]:
    # Not pytest's tmp_path: that is private to root, and PostgreSQL runs as another user then.
    path = Path(tempfile.mkdtemp(prefix="wardwatch-test-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server(services_dir: Path) -> Iterator[str]:
    """URL of a PostgreSQL cluster started for this test session (installed binaries)."""
    with embedded.postgresql(services_dir / "pg", durable=False) as url:
        yield url


def with_dbname(url: str, dbname: str) -> str:
    return conninfo.make_conninfo(url, dbname=dbname)


@pytest.fixture(scope="session")
def template_db(pg_server: str) -> str:
    name = "wardwatch_template"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"drop database if exists {name}")
        conn.execute(f"create database {name}")
    migrate.upgrade(with_dbname(pg_server, name))
    return name


@pytest.fixture
def database_url(pg_server: str, template_db: str) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"create database {name} template {template_db}")
    yield with_dbname(pg_server, name)
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"drop database if exists {name} with (force)")


@pytest.fixture(scope="session")
def mqtt_url(services_dir: Path) -> Iterator[str]:
    """URL of a Mosquitto started for this test session."""
    with embedded.mosquitto(services_dir / "mqtt", persistence=False) as url:
        yield url


@pytest.fixture
def uid() -> str:
    """A short id unique to the test, for device ids and MQTT client ids."""
    return uuid.uuid4().hex[:8]
