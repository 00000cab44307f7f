"""Versioned, idempotent schema migrations: ``wardwatch db upgrade`` applies what is missing."""

from __future__ import annotations

import logging
from importlib import resources

import psycopg

log = logging.getLogger(__name__)

# Serialises concurrent upgrades (two services starting at once) without a table lock.
_LOCK_KEY = 0x77617264  # "ward"


def _migrations() -> list[tuple[int, str, str]]:
    files = sorted(
        (f for f in resources.files("storage.migrations").iterdir() if f.name.endswith(".sql")),
        key=lambda f: f.name,
    )
    return [(int(f.name.split("_", 1)[0]), f.name, f.read_text()) for f in files]


def timescaledb_available(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    row = conn.execute(
        "select 1 from pg_available_extensions where name = 'timescaledb'"
    ).fetchone()
    return row is not None


def upgrade(url: str) -> list[str]:
    """Apply pending migrations in order, each in its own transaction; return the names applied."""
    applied: list[str] = []
    # No server-side prepared statements: the same insert runs once per migration, and a
    # single-session server (the TimescaleDB test build) keeps them across connections.
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
        conn.execute("select pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                "create table if not exists schema_migrations ("
                " version integer primary key, name text not null,"
                " applied_at timestamptz not null default now())"
            )
            done = {r[0] for r in conn.execute("select version from schema_migrations")}
            for version, name, sql in _migrations():
                if version in done:
                    continue
                with conn.transaction():
                    conn.execute(sql)  # trusted SQL file shipped with us
                    conn.execute(
                        "insert into schema_migrations (version, name) values (%s, %s)",
                        (version, name),
                    )
                applied.append(name)
                log.info("applied migration %s", name)
            if timescaledb_available(conn) and 1000 not in done:
                # Where TimescaleDB is installed, readings become a hypertable chunked by event
                # time; elsewhere plain PostgreSQL serves (docs/storage.md).
                with conn.transaction():
                    conn.execute("create extension if not exists timescaledb")
                    conn.execute(
                        "select create_hypertable('readings', 'ts', migrate_data => true,"
                        " if_not_exists => true)"
                    )
                    conn.execute(
                        "insert into schema_migrations (version, name) values (1000, %s)",
                        ("timescaledb_hypertable",),
                    )
                applied.append("timescaledb_hypertable")
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied
