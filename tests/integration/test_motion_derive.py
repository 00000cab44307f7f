"""Raw wrist acceleration through the real pipeline into minute readings the daily features use.

A device streams 10 Hz acceleration on the waveform topic (60-s chunks, as the wire format
allows) with a calibration error; the job must store, for each minute, the same activity, wear
and sustained-inactivity values as the pure core (signals.motion) computes on the same samples,
whether it runs once or every few minutes as the data arrives, and each minute only once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

import numpy as np
import numpy.typing as npt
import orjson
import psycopg
import pytest
from prometheus_client import CollectorRegistry

from alerts.model import Rule
from alerts.policy import Policy
from ingest import pipeline as pipe
from signals.activity import calibrate
from signals.motion import motion_minutes
from signals.vitals import Metric
from signals.waveforms import WaveformChunk, WaveformKind
from storage import alerts as alert_store
from storage import devices
from storage.devices import DERIVED_SUFFIX
from storage.motion import load_calibration
from tests.waveform_feed import enrol, send_waveform
from wardwatch import derive, jobs
from wardwatch.service import Options

pytestmark = pytest.mark.integration

FS = 10
T0 = datetime(2026, 11, 28, 0, 0, 20, tzinfo=UTC)  # not on a minute: minutes are the clock's
OFFSET = np.array([0.05, -0.04, 0.03])  # the sensor's calibration error, g
SCALE = np.array([1.02, 0.97, 1.01])


def _us(t: datetime) -> int:
    return int(t.timestamp() * 1_000_000)


def _recording(seed: int) -> npt.NDArray[np.float64]:
    """Two hours asleep (a new posture every 8 min, 15 around the sphere), one awake, 90 min on
    the bedside table, half an hour awake: 5 hours as the uncalibrated sensor reports it."""
    rng = np.random.default_rng(seed)

    def held(minutes: int, every_s: float, noise_g: float) -> npt.NDArray[np.float64]:
        n = minutes * 60 * FS
        poses = rng.normal(size=(int(n / (every_s * FS)) + 1, 3))
        poses /= np.linalg.norm(poses, axis=1, keepdims=True)
        return np.asarray(
            poses[(np.arange(n) / (every_s * FS)).astype(int)] + rng.normal(0, noise_g, (n, 3)),
            dtype=np.float64,
        )

    table = np.array([0.0, 0.0, 1.0]) + rng.normal(0, 0.002, (90 * 60 * FS, 3))
    true = np.concatenate([held(120, 480, 0.004), held(60, 4, 0.01), table, held(30, 4, 0.01)])
    return np.asarray((true - OFFSET) / SCALE, dtype=np.float64)


def _send(url: str, device: str, xyz: npt.NDArray[np.float64]) -> datetime:
    return send_waveform(url, device, kind="accel", unit="g", samples=np.round(xyz, 5), fs=FS,
                         start=T0, chunk_s=60)  # fmt: skip


def _enrol(url: str, uid: str) -> tuple[str, str]:
    device, patient = f"acc-{uid}", f"pt-{uid}"
    enrol(url, device, patient, T0 - timedelta(hours=1))
    return device, patient


def _stored(
    conn: psycopg.Connection[tuple[object, ...]], patient: str, metric: Metric
) -> dict[int, float]:
    rows = conn.execute(
        "select (extract(epoch from ts) * 1000000)::int8, value, device_id from readings"
        " where patient_id = %s and metric = %s order by ts",
        (patient, int(metric)),
    ).fetchall()
    assert {d for *_, d in rows} <= {None} | {r[2] for r in rows}
    return {cast(int, ts): cast(float, v) for ts, v, _ in rows}


def test_minutes_from_a_raw_accelerometer_match_the_pure_core(database_url: str, uid: str) -> None:
    xyz = _recording(11)
    device, patient = _enrol(database_url, uid)
    end = _send(database_url, device, xyz)
    now = end + timedelta(minutes=70)  # the device went quiet: every minute is settled
    with psycopg.connect(database_url) as conn:
        # Five hours found at once: caught up in loads of CATCH_UP_SPAN (3 h, of which the last
        # hour is context for the next), a tick each, every minute once; then nothing is left.
        runs = [derive.derive_motion(conn, now=now) for _ in range(5)]
        assert runs == [357, 360, 180, 0, 0]
        stored = sum(runs)
        enmo = _stored(conn, patient, Metric.ACTIVITY_MG)
        inactive = _stored(conn, patient, Metric.INACTIVE)
        worn = _stored(conn, patient, Metric.WORN)
        devices = {r[0] for r in conn.execute(
            "select distinct device_id from readings where patient_id = %s", (patient,)
        )}  # fmt: skip
        _, calibration = load_calibration(conn, device)
    assert devices == {device + DERIVED_SUFFIX}
    # The calibration was fitted from the stored still windows and recovers the sensor's error.
    assert calibration is not None
    np.testing.assert_allclose(calibration.offset_g, OFFSET, atol=0.01)
    np.testing.assert_allclose(calibration.scale, SCALE, atol=0.01)
    chunk = WaveformChunk(device, WaveformKind.ACCEL, _us(T0), float(FS),
                          np.round(xyz, 5).astype(np.float32), "g", None)  # fmt: skip
    pure = motion_minutes(chunk, calibrate(chunk.values, FS))
    assert stored == 3 * len(pure) == 3 * 299  # 5 h: the partial first and last minutes are not
    assert list(enmo) == pure.end_us.tolist()
    np.testing.assert_allclose(list(enmo.values()), pure.enmo_mg, atol=0.5)
    assert list(inactive.values()) == pure.inactive.astype(float).tolist()
    assert list(worn.values()) == pure.worn.astype(float).tolist()
    # What the minutes say: asleep still, awake moving, the table hour off the wrist.
    minute = (pure.end_us - _us(T0)) / 60e6
    assert pure.inactive[(minute > 1) & (minute <= 119)].mean() > 0.95
    assert not pure.inactive[(minute > 121) & (minute <= 179)].any()
    # 90 min off: GGIR's 60-min windows on the quarter hours find at least the 60 inside them.
    assert (~pure.worn[(minute > 181) & (minute <= 269)]).sum() >= 60
    assert pure.worn[minute <= 180].all()


@pytest.mark.parametrize(
    "every", [timedelta(minutes=7), timedelta(seconds=Options().motion_tick_s)]
)
def test_running_every_few_minutes_as_data_arrives_stores_each_minute_once(
    database_url: str, uid: str, every: timedelta
) -> None:
    """Every 7 minutes, and at the service's motion tick (15 min): the same minutes as one run."""
    xyz = _recording(12)
    device, patient = _enrol(database_url, uid)
    end = _send(database_url, device, xyz)
    with psycopg.connect(database_url) as conn:
        at = T0 + timedelta(minutes=10)
        while True:  # until a tick sees the device quiet for the motion lag: all minutes settled
            derive.derive_motion(conn, now=at, lookback=timedelta(hours=8))
            if at > end + derive.MOTION_LAG:
                break
            at += every
        inactive = _stored(conn, patient, Metric.INACTIVE)
        worn = _stored(conn, patient, Metric.WORN)
    chunk = WaveformChunk(device, WaveformKind.ACCEL, _us(T0), float(FS),
                          np.round(xyz, 5).astype(np.float32), "g", None)  # fmt: skip
    pure = motion_minutes(chunk, calibrate(chunk.values, FS))
    # Labels do not depend on how the data was cut (ENMO does, until the calibration settles).
    assert list(inactive) == pure.end_us.tolist()
    assert list(inactive.values()) == pure.inactive.astype(float).tolist()
    assert list(worn.values()) == pure.worn.astype(float).tolist()


def test_a_device_with_its_own_wear_sensor_keeps_it(database_url: str, uid: str) -> None:
    xyz = _recording(13)[: 40 * 60 * FS]
    device, patient = _enrol(database_url, uid)
    end = _send(database_url, device, xyz)
    p = pipe.Pipeline(
        database_url, settings=pipe.Settings(),
        metrics=pipe.PipelineMetrics.create(CollectorRegistry()), clock=lambda: end,
    )  # fmt: skip
    try:
        own = {"ts": (T0 + timedelta(minutes=3)).isoformat(), "worn": True}
        p.process([(f"wardwatch/v1/devices/{device}/vitals", orjson.dumps([own]), _us(T0))])
    finally:
        p.close()
    with psycopg.connect(database_url) as conn:
        assert derive.derive_motion(conn, now=end + timedelta(minutes=70)) > 0
        rows = conn.execute(
            "select device_id, count(*) from readings where patient_id = %s and metric = %s"
            " group by device_id",
            (patient, int(Metric.WORN)),
        ).fetchall()
    assert rows == [(device, 1)]  # the device's own flag; none derived beside it


def test_a_device_put_down_raises_not_worn_from_its_accelerometer(
    database_url: str, uid: str
) -> None:
    """A patch or watch with no wear sensor of its own, streaming raw acceleration: the 90
    minutes it lay on the table are derived as not worn, and the device team is told ("off the
    body ... judged from its accelerometer"), which until 2026-11-29 never happened (the rule
    read only the device's own wear flag). It resolves once the minutes after it are derived."""
    xyz = _recording(13)
    device, patient = _enrol(database_url, uid)
    end = _send(database_url, device, xyz)  # table from minute 180 to 270 of 300
    on_table_until = T0 + timedelta(minutes=265)
    with psycopg.connect(database_url) as conn:
        # Derived as the service would, up to where the minutes on the table have settled.
        at = T0 + timedelta(minutes=15)
        while at <= on_table_until + derive.MOTION_LAG:
            derive.derive_motion(conn, now=at, lookback=timedelta(hours=8))
            at += timedelta(minutes=15)
        h = devices.health(conn, [device], now=at)[device]
        assert h.off_body_inferred
        assert h.off_body_since is not None
        # From the first quarter hour wholly on the table (non-wear is judged in 15-min blocks).
        assert T0 + timedelta(minutes=180) <= h.off_body_since <= T0 + timedelta(minutes=200)
        jobs.check_devices(conn, now=at, policy=Policy())
        open_alerts = {
            r: a.summary for (_, r), a in alert_store.open_alerts(conn, [patient]).items()
        }
        assert Rule.NOT_WORN in open_alerts
        assert "judged from its accelerometer" in open_alerts[Rule.NOT_WORN]
        # Back on the wrist: once those minutes are derived, the alert resolves.
        done = end + derive.MOTION_LAG + timedelta(minutes=1)
        derive.derive_motion(conn, now=done, lookback=timedelta(hours=8))
        assert devices.health(conn, [device], now=done)[device].off_body_since is None
        jobs.check_devices(conn, now=done, policy=Policy())
        assert Rule.NOT_WORN not in {r for (_, r) in alert_store.open_alerts(conn, [patient])}
