"""Per-device accelerometer calibration: the still windows collected so far and the last fit."""

from __future__ import annotations

from datetime import datetime
from typing import cast

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from signals.activity import Calibration
from signals.vitals import F64

Conn = psycopg.Connection[tuple[object, ...]]


def load_calibration(conn: Conn, device_id: str) -> tuple[F64, Calibration | None]:
    """The device's kept still-window means ((n, 3), g) and its last good calibration, if any."""
    row = conn.execute(
        "select still_means, offset_g, scale from accel_calibration where device_id = %s",
        (device_id,),
    ).fetchone()
    if row is None:
        return np.empty((0, 3)), None
    means_json, offset_col, scale_col = row
    means = np.asarray(means_json, dtype=np.float64).reshape(-1, 3)  # jsonb arrives as lists
    if offset_col is None or scale_col is None:
        return means, None
    offset, scale = cast(list[float], offset_col), cast(list[float], scale_col)
    return means, Calibration(
        offset_g=(float(offset[0]), float(offset[1]), float(offset[2])),
        scale=(float(scale[0]), float(scale[1]), float(scale[2])),
        n_still_windows=int(means.shape[0]),
        error_before_g=float("nan"),
        error_after_g=float("nan"),
    )


def save_calibration(
    conn: Conn, device_id: str, means: F64, calibration: Calibration | None, *, now: datetime
) -> None:
    """Keep ``means``; replace the fit only with a new one (a failed fit keeps the last good)."""
    conn.execute(
        "insert into accel_calibration (device_id, still_means, offset_g, scale, updated_at)"
        " values (%(d)s, %(m)s, %(o)s, %(s)s, %(now)s)"
        " on conflict (device_id) do update set still_means = excluded.still_means,"
        "   offset_g = coalesce(excluded.offset_g, accel_calibration.offset_g),"
        "   scale = coalesce(excluded.scale, accel_calibration.scale),"
        "   updated_at = excluded.updated_at",
        {
            "d": device_id,
            "m": Jsonb(np.round(means, 6).tolist()),
            "o": None if calibration is None else list(calibration.offset_g),
            "s": None if calibration is None else list(calibration.scale),
            "now": now,
        },
    )
