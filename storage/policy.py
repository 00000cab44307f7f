"""The alerting policy's versions and patients' overrides in PostgreSQL.

The policy lives in the database, not in each worker's file system, so that every worker (and the
dashboard that edits it) uses the same one. Only text that parses is ever stored: ``save`` parses
first, so a refused policy leaves the running one in force.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg_pool import ConnectionPool

from alerts.policy import (
    DEFAULT_POLICY,
    KNOWN_CHANNELS,
    Overrides,
    Pause,
    Policy,
    PolicyError,
    check_overrides,
    parse,
)
from storage.views import NotFoundError

log = logging.getLogger(__name__)

Conn = psycopg.Connection[tuple[object, ...]]
# Serialises concurrent saves so that versions are dense and the "same text" check is exact.
_SAVE_LOCK = 0x706F6C69  # "poli"


@dataclass(frozen=True, slots=True)
class StoredPolicy:
    """A policy version as stored; version 0 is the built-in policy (nothing stored yet)."""

    version: int
    text: str
    set_by: str | None
    set_at: datetime | None
    policy: Policy


BUILT_IN = StoredPolicy(0, "", None, None, DEFAULT_POLICY)


def _latest(conn: Conn) -> tuple[int, str, str, datetime] | None:
    row = conn.execute(
        "select version, text, set_by, set_at from policy_versions order by version desc limit 1"
    ).fetchone()
    if row is None:
        return None
    version, text, set_by, set_at = row
    return int(version), str(text), str(set_by), set_at  # type: ignore[call-overload, return-value]


def current(conn: Conn) -> StoredPolicy:
    """The policy in force: the latest version, or the built-in one when none is stored.

    Raises ``PolicyError`` if the stored text no longer parses (a newer wardwatch that checks
    more); ``PolicyCache`` keeps the previous policy in that case.
    """
    row = _latest(conn)
    if row is None:
        return BUILT_IN
    version, text, set_by, set_at = row
    return StoredPolicy(version, text, set_by, set_at, parse(text, f"policy version {version}"))


def save(
    conn: Conn,
    text: str,
    *,
    set_by: str,
    at: datetime,
    source: str = "policy.yaml",
    channels: frozenset[str] = KNOWN_CHANNELS,
) -> StoredPolicy:
    """Parse ``text`` and store it as the next version; raise ``PolicyError`` and store nothing.

    Saving the text already in force is a no-op that returns the current version, so a service
    restarted with the same WARDWATCH_POLICY_FILE does not pile up versions.
    """
    policy = parse(text, source, channels=channels)
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (_SAVE_LOCK,))
        latest = _latest(conn)
        if latest is not None and latest[1] == text:
            version, _, by, when = latest
            return StoredPolicy(version, text, by, when, policy)
        version = 1 if latest is None else latest[0] + 1
        conn.execute(
            "insert into policy_versions (version, text, set_by, set_at) values (%s, %s, %s, %s)",
            (version, text, set_by, at),
        )
    return StoredPolicy(version, text, set_by, at, policy)


class PolicyCache:
    """The policy in force for a long-running worker, re-parsed only when its version changes.

    If a stored version does not parse, the worker keeps the policy it had and says so once: the
    running policy stays, as it does when a bad policy is refused at the door.
    """

    def __init__(self) -> None:
        self._version = -1
        self._policy: Policy | None = None
        self._lock = threading.Lock()  # the scheduler's jobs share one cache from their threads

    def get(self, conn: Conn) -> Policy | None:
        """The stored policy in force; None while none is stored (the caller's own settings)."""
        row = conn.execute("select max(version) from policy_versions").fetchone()
        version = 0 if row is None or row[0] is None else int(row[0])  # type: ignore[call-overload]
        with self._lock:
            if version == self._version:
                return self._policy
            try:
                self._policy = current(conn).policy if version else None
            except PolicyError as exc:
                log.warning(
                    "policy version %d does not parse (%d issues); keeping version %d",
                    version,
                    len(exc.issues),
                    self._version,
                )
            self._version = version
            return self._policy


# --- per-patient overrides --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OverrideRecord:
    """One change of a patient's overrides: the state it set, who set it, when and why."""

    patient_id: str
    overrides: Overrides
    set_by: str
    reason: str
    set_at: datetime


_OVERRIDE_COLUMNS = (
    "patient_id, spo2_scale, spo2_target_low_pct, spo2_target_high_pct,"
    " pause_reason, pause_since, pause_until, set_by, reason, set_at"
)


def _record(row: tuple[object, ...]) -> OverrideRecord:
    pid, scale, low, high, p_reason, p_since, p_until, set_by, reason, set_at = row
    target = None if low is None else (int(low), int(high))  # type: ignore[call-overload]
    pause = None if p_until is None else Pause(str(p_reason), p_since, p_until)  # type: ignore[arg-type]
    return OverrideRecord(
        str(pid),
        Overrides(int(scale), target, pause),  # type: ignore[call-overload]
        str(set_by),
        str(reason),
        set_at,  # type: ignore[arg-type]
    )


def _require_patient(conn: Conn, patient_id: str, *, lock: bool = False) -> None:
    row = conn.execute(
        "select 1 from patients where patient_id = %s" + (" for update" if lock else ""),
        (patient_id,),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"patient {patient_id}")


def current_overrides(conn: Conn, patient_id: str) -> OverrideRecord | None:
    """The patient's overrides in force (None: never set); ``NotFoundError`` for no such patient."""
    _require_patient(conn, patient_id)
    row = conn.execute(
        f"select {_OVERRIDE_COLUMNS} from patient_overrides where patient_id = %s"
        " order by id desc limit 1",
        (patient_id,),
    ).fetchone()
    return None if row is None else _record(row)


def override_history(conn: Conn, patient_id: str) -> list[OverrideRecord]:
    """Every change of the patient's overrides, newest first."""
    _require_patient(conn, patient_id)
    rows = conn.execute(
        f"select {_OVERRIDE_COLUMNS} from patient_overrides where patient_id = %s order by id desc",
        (patient_id,),
    ).fetchall()
    return [_record(r) for r in rows]


def set_overrides(
    conn: Conn,
    patient_id: str,
    overrides: Overrides,
    *,
    set_by: str,
    reason: str,
    now: datetime,
) -> OverrideRecord:
    """Check and record a clinician's overrides; raise ``OverrideError`` or ``NotFoundError``.

    The patient's row is locked for the change, so two clinicians saving at once are applied one
    after the other and each check sees the other's result.
    """
    with conn.transaction():
        _require_patient(conn, patient_id, lock=True)
        previous = current_overrides(conn, patient_id)
        check_overrides(
            overrides,
            set_by=set_by,
            reason=reason,
            now=now,
            previous=previous.overrides if previous else Overrides(),
        )
        target = overrides.spo2_target_pct
        pause = overrides.pause
        conn.execute(
            f"insert into patient_overrides ({_OVERRIDE_COLUMNS})"
            " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                patient_id,
                overrides.spo2_scale,
                None if target is None else target[0],
                None if target is None else target[1],
                None if pause is None else pause.reason,
                None if pause is None else pause.since,
                None if pause is None else pause.until,
                set_by.strip(),
                reason.strip(),
                now,
            ),
        )
        # Ingest scores NEWS2 with patients.spo2_scale (storage.assignments.load).
        conn.execute(
            "update patients set spo2_scale = %s where patient_id = %s",
            (overrides.spo2_scale, patient_id),
        )
    return OverrideRecord(patient_id, overrides, set_by.strip(), reason.strip(), now)


def pauses(conn: Conn, patient_ids: Iterable[str]) -> dict[str, Pause]:
    """The pause in each patient's latest overrides, for those that have one (ended or not)."""
    rows = conn.execute(
        "select distinct on (patient_id) patient_id, pause_reason, pause_since, pause_until"
        " from patient_overrides where patient_id = any(%s) order by patient_id, id desc",
        (list(patient_ids),),
    ).fetchall()
    return {
        str(pid): Pause(str(why), since, until)  # type: ignore[arg-type]
        for pid, why, since, until in rows
        if until is not None
    }


# --- the dashboard's adapter ------------------------------------------------------------------


class PostgresPolicy:
    """The dashboard's ``PolicyStore`` over a connection pool."""

    def __init__(
        self,
        pool: ConnectionPool[Conn],
        *,
        channels: frozenset[str] = KNOWN_CHANNELS,
    ) -> None:
        self._pool = pool
        self._channels = channels

    def current_policy(self) -> StoredPolicy:
        with self._pool.connection() as conn:
            return current(conn)

    def set_policy(self, text: str, *, user: str, now: datetime) -> StoredPolicy:
        with self._pool.connection() as conn:
            return save(conn, text, set_by=user, at=now, channels=self._channels)

    def overrides(self, patient_id: str) -> OverrideRecord | None:
        with self._pool.connection() as conn:
            return current_overrides(conn, patient_id)

    def set_overrides(
        self, patient_id: str, overrides: Overrides, *, user: str, reason: str, now: datetime
    ) -> OverrideRecord:
        with self._pool.connection() as conn:
            return set_overrides(conn, patient_id, overrides, set_by=user, reason=reason, now=now)

    def override_history(self, patient_id: str) -> list[OverrideRecord]:
        with self._pool.connection() as conn:
            return override_history(conn, patient_id)
