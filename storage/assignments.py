"""Time-bounded device → patient assignments (enrolment): who wore which device, when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row


@dataclass(frozen=True, slots=True)
class Assignment:
    device_id: str
    patient_id: str
    ward: str
    spo2_scale: int
    valid_from: datetime
    valid_until: datetime | None


class EnrolmentError(ValueError):
    """The enrolment contradicts another one (e.g. the device is already on another patient)."""


_SELECT = """
    select a.device_id, a.patient_id, p.ward, p.spo2_scale, a.valid_from, a.valid_until
    from assignments a join patients p using (patient_id)
"""


def enrol(
    conn: psycopg.Connection[tuple[object, ...]],
    *,
    device_id: str,
    patient_id: str,
    ward: str,
    valid_from: datetime,
    valid_until: datetime | None = None,
    spo2_scale: int = 1,
    bed: str | None = None,
) -> Assignment:
    """Assign a device to a patient from ``valid_from``; idempotent for an identical enrolment.

    A device can measure one patient at a time: an overlapping assignment to another patient is
    refused rather than silently attributing readings to the wrong person.
    """
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (device_id,))
        conn.execute(
            "insert into patients (patient_id, ward, spo2_scale, bed) values (%s, %s, %s, %s)"
            " on conflict (patient_id) do update set ward = excluded.ward,"
            " spo2_scale = excluded.spo2_scale, bed = coalesce(excluded.bed, patients.bed)",
            (patient_id, ward, spo2_scale, bed),
        )
        overlapping = conn.execute(
            "select patient_id, valid_from from assignments where device_id = %s"
            " and valid_from < coalesce(%s, 'infinity'::timestamptz)"
            " and coalesce(valid_until, 'infinity'::timestamptz) > %s",
            (device_id, valid_until, valid_from),
        ).fetchall()
        for other_patient, other_from in overlapping:
            if other_patient != patient_id:
                raise EnrolmentError(
                    f"device {device_id} is assigned to patient {other_patient} from "
                    f"{other_from:%Y-%m-%d %H:%M} UTC; end that assignment first (--until)"
                )
        if not overlapping:
            conn.execute(
                "insert into assignments (device_id, patient_id, valid_from, valid_until)"
                " values (%s, %s, %s, %s)",
                (device_id, patient_id, valid_from, valid_until),
            )
        elif valid_until is not None:
            conn.execute(
                "update assignments set valid_until = %s where device_id = %s and patient_id = %s"
                " and coalesce(valid_until, 'infinity'::timestamptz) > %s",
                (valid_until, device_id, patient_id, valid_from),
            )
    with conn.cursor(row_factory=class_row(Assignment)) as cur:
        row = cur.execute(
            _SELECT + " where a.device_id = %s and a.patient_id = %s"
            " order by a.valid_from desc limit 1",
            (device_id, patient_id),
        ).fetchone()
    assert row is not None
    return row


def end(conn: psycopg.Connection[tuple[object, ...]], *, device_id: str, at: datetime) -> int:
    """End the device's open assignment at ``at``; returns how many assignments were ended."""
    with conn.transaction():
        cur = conn.execute(
            "update assignments set valid_until = %s where device_id = %s"
            " and valid_from < %s and coalesce(valid_until, 'infinity'::timestamptz) > %s",
            (at, device_id, at, at),
        )
        return cur.rowcount


def load(conn: psycopg.Connection[tuple[object, ...]]) -> list[Assignment]:
    """Every assignment, for ingest's in-memory resolver (small: one row per enrolment)."""
    with conn.cursor(row_factory=class_row(Assignment)) as cur:
        return cur.execute(_SELECT + " order by a.device_id, a.valid_from").fetchall()


@dataclass(frozen=True, slots=True)
class Contact:
    device_id: str
    patient_id: str
    ward: str
    valid_from: datetime
    last_received_at: datetime | None


def current_contacts(conn: psycopg.Connection[tuple[object, ...]], now: datetime) -> list[Contact]:
    """Devices assigned now, with when we last heard from each (the "no data" rule's input)."""
    with conn.cursor(row_factory=class_row(Contact)) as cur:
        return cur.execute(
            "select a.device_id, a.patient_id, p.ward, a.valid_from, dc.last_received_at"
            " from assignments a join patients p using (patient_id)"
            " left join device_contact dc using (device_id)"
            " where a.valid_from <= %(now)s"
            " and coalesce(a.valid_until, 'infinity'::timestamptz) > %(now)s",
            {"now": now},
        ).fetchall()
