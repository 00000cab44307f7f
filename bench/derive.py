"""``python -m bench.derive``: what deriving vital signs from raw waveforms costs per device.

Devices that stream waveforms are the expensive ones: every minute the derive jobs load each
device's new waveform (with context before it) from PostgreSQL, run the pure cores of
``signals.derived`` / ``signals.motion`` and store readings. Here N devices of each kind stream
two hours of real or realistic signal into the embedded PostgreSQL (installed binaries, fsync
on), in 30-s chunks as devices send them:

- PPG at 25 Hz (the 5-minute resting recording of tests/data/ppg-ecg-resp, decimated, repeated
  with a different start per device): ``derive_resp_rate`` and ``derive_pulse``;
- ECG at 360 Hz (MIT-BIH record 100, repeated): ``derive_beats``;
- wrist accelerometer at 25 Hz (``simulator.motion``, a day's first two hours): ``derive_motion``.

Measured for each job: the catch-up after an hour without the job (one tick deriving an hour per
device), and the live steady state (ticks a minute apart, each with a minute of new data), both
per device, against the baseline measured in the same run: the job's pure core alone on the same
hour of one device's samples. Live ticks come at the service's interval for the job (a minute;
motion every 15: ``Options.motion_tick_s``); their cost per minute of data sets how many
waveform-streaming devices one core can follow: 60 s over that cost. Figures are printed, never
asserted.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg import conninfo
from scipy import signal

from signals.derived import ecg_beats, ppg_heart_rate_minutes, resp_rate_minutes
from signals.motion import motion_minutes
from signals.waveforms import WaveformChunk, WaveformKind, join_chunks
from simulator.motion import wrist_accel
from storage import assignments, devices, migrate
from tests.wfdb_io import read_record
from wardwatch import derive, embedded
from wardwatch.service import Options

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
T0 = datetime(2026, 11, 2, 6, tzinfo=UTC)
HOURS = 2
CHUNK_S = 30
_US = 1_000_000

Job = Callable[..., int]


def ppg_25hz() -> npt.NDArray[np.float32]:
    raw = np.loadtxt(DATA / "ppg-ecg-resp" / "neurokit_bio_resting_5min_100hz.csv",
                     delimiter=",", skiprows=1, usecols=_column("PPG"))  # fmt: skip
    return signal.decimate(raw, 4, ftype="fir", zero_phase=True).astype(np.float32)


def _column(name: str) -> int:
    path = DATA / "ppg-ecg-resp" / "neurokit_bio_resting_5min_100hz.csv"
    with path.open() as f:
        return f.readline().strip().split(",").index(name)


def ecg_360hz() -> npt.NDArray[np.float32]:
    rec = read_record(DATA / "mitdb" / "100.hea")
    return np.asarray(rec.signals[:, rec.names.index("MLII")], dtype=np.float32)


def accel_25hz(seed: int) -> npt.NDArray[np.float32]:
    minutes = HOURS * 60
    rng = np.random.default_rng(seed)
    walking = np.zeros(minutes, dtype=bool)
    walking[30:45] = True  # a walk in the first hour, a quiet second
    return wrist_accel(rng, fs_hz=25.0, asleep=np.zeros(minutes, dtype=bool), walking=walking,
                       worn=np.ones(minutes, dtype=bool))  # fmt: skip


def tiled(x: npt.NDArray[np.float32], n: int, offset: int) -> npt.NDArray[np.float32]:
    """``n`` samples of ``x`` repeated end to end, starting ``offset`` samples in."""
    reps = -(-(n + offset) // x.shape[0])
    return np.concatenate([x] * reps)[offset : offset + n]


def chunks(
    device: str, kind: WaveformKind, fs: float, x: npt.NDArray[np.float32]
) -> list[WaveformChunk]:
    per = round(CHUNK_S * fs)
    out = []
    for k, lo in enumerate(range(0, x.shape[0], per)):
        start = int(T0.timestamp() * _US) + round(lo / fs * _US)
        out.append(WaveformChunk(device, kind, start, fs, x[lo : lo + per], kind.unit, k,
                                 start + CHUNK_S * _US))  # fmt: skip
    return out


def load(url: str, n: int) -> dict[str, list[WaveformChunk]]:
    """Enrol and store ``n`` devices of each kind; return one device's chunks of each kind."""
    ppg, ecg = ppg_25hz(), ecg_360hz()
    one: dict[str, list[WaveformChunk]] = {}
    with psycopg.connect(url) as conn:
        for i in range(n):
            made = {
                "ppg": chunks(f"ppg-{i}", WaveformKind.PPG, 25.0,
                              tiled(ppg, HOURS * 3600 * 25, 997 * i)),
                "ecg": chunks(f"ecg-{i}", WaveformKind.ECG, 360.0,
                              tiled(ecg, HOURS * 3600 * 360, 36_001 * i)),
                "accel": chunks(f"acc-{i}", WaveformKind.ACCEL, 25.0, accel_25hz(i)),
            }  # fmt: skip
            with conn.transaction():
                for kind, cs in made.items():
                    device = cs[0].device_id
                    assignments.enrol(conn, device_id=device, patient_id=f"pt-{kind}-{i}",
                                      ward="bench", valid_from=T0 - timedelta(hours=1))  # fmt: skip
                    devices.insert_waveforms(conn, cs)
            if i == 0:
                one = made
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("vacuum (analyze) waveforms")
    return one


def pure_hour(one: dict[str, list[WaveformChunk]]) -> dict[str, Callable[[], object]]:
    """The pure core of each job on the first hour of one device's samples."""

    def hour(kind: str) -> WaveformChunk:
        return join_chunks(
            [c for c in one[kind] if c.start_us < int((T0 + timedelta(hours=1)).timestamp() * _US)]
        ).segments[0]

    ppg, ecg, acc = hour("ppg"), hour("ecg"), hour("accel")
    return {
        "derive_resp_rate": lambda: resp_rate_minutes(ppg, after_us=0),
        "derive_pulse": lambda: ppg_heart_rate_minutes(ppg, after_us=0, settled_to_us=ppg.end_us),
        "derive_beats": lambda: ecg_beats(ecg, after_us=0, settled_to_us=ecg.end_us),
        "derive_motion": lambda: motion_minutes(acc),
    }


JOBS: dict[str, Job] = {
    "derive_resp_rate": derive.derive_resp_rate,
    "derive_pulse": derive.derive_pulse,
    "derive_beats": derive.derive_beats,
    "derive_motion": derive.derive_motion,
}


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


#: How often the service runs each job (wardwatch.service.Options): the live tick is measured
#: at that interval and reported per minute of data.
TICK = {
    "derive_resp_rate": timedelta(seconds=Options().derive_tick_s),
    "derive_pulse": timedelta(seconds=Options().derive_tick_s),
    "derive_beats": timedelta(seconds=Options().derive_tick_s),
    "derive_motion": timedelta(seconds=Options().motion_tick_s),
}


def bench(url: str, n: int, one: dict[str, list[WaveformChunk]], live_ticks: int) -> None:
    pure = {name: min(timed(fn) for _ in range(3)) for name, fn in pure_hour(one).items()}
    catch_up_at = T0 + timedelta(hours=1, minutes=1)
    print(f"\n{n} devices of each kind, {HOURS} h stored; per device:")
    print(f"{'job':18} {'pure core, 1 h':>15} {'catch-up, 1 h':>14} {'ratio':>6}"
          f" {'tick every':>11} {'live tick':>10} {'per minute':>11}"
          f" {'devices/core':>13}")  # fmt: skip
    with psycopg.connect(url) as conn:
        for name, job in JOBS.items():
            catch_up = timed(lambda job=job: job(conn, now=catch_up_at))
            every = TICK[name]
            # Live ticks while stored data remains ahead of them (2 h stored, 1 h already done).
            room = (T0 + timedelta(hours=HOURS) - catch_up_at) // every
            ticks = []
            for k in range(1, max(1, min(live_ticks, room)) + 1):
                at = catch_up_at + k * every
                ticks.append(timed(lambda job=job, at=at: job(conn, now=at)))
            live = float(np.median(ticks)) / n
            per_minute = live / (every / timedelta(minutes=1))
            print(f"{name:18} {pure[name] * 1e3:>12.0f} ms {catch_up / n * 1e3:>11.0f} ms"
                  f" {catch_up / n / pure[name]:>5.1f}x {every / timedelta(minutes=1):>7.0f} min"
                  f" {live * 1e3:>7.1f} ms {per_minute * 1e3:>8.1f} ms"
                  f" {60.0 / per_minute:>13,.0f}")  # fmt: skip


def idle(url: str, n: int) -> None:
    """What the derive jobs cost for devices that send no waveform, most of a real ward's: the
    four jobs' tick over ``n`` such devices (enrolled, nothing stored), per device."""
    with psycopg.connect(url) as conn:
        with conn.transaction():
            for i in range(n):
                assignments.enrol(conn, device_id=f"watch-{i}", patient_id=f"pt-watch-{i}",
                                  ward="bench", valid_from=T0 - timedelta(hours=1))  # fmt: skip
        at = T0 + timedelta(hours=1)
        ticks = [timed(lambda: [job(conn, now=at) for job in JOBS.values()]) for _ in range(5)]
    tick = float(np.median(ticks))
    print(f"\n{n} devices sending no waveform: one tick of the four jobs {tick * 1e3:.1f} ms,"
          f" {tick / n * 1e6:.1f} µs per device")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.derive")
    parser.add_argument("--devices", type=int, default=20, help="devices of each kind")
    parser.add_argument("--ticks", type=int, default=5, help="live ticks per job")
    parser.add_argument("--idle", type=int, default=1000, help="devices sending no waveform")
    args = parser.parse_args()
    print(f"wardwatch derive-job benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    base = Path(tempfile.mkdtemp(prefix="wardwatch-bench-", dir="/tmp"))
    try:
        with embedded.postgresql(base / "pg", durable=True) as server:
            url = conninfo.make_conninfo(server, dbname="derive")
            idle_url = conninfo.make_conninfo(server, dbname="idle")
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute("create database derive")
                conn.execute("create database idle")  # kept apart: its devices add to every tick
            migrate.upgrade(url)
            migrate.upgrade(idle_url)
            idle(idle_url, args.idle)
            start = time.perf_counter()
            one = load(url, args.devices)
            print(f"stored {args.devices} x 3 devices x {HOURS} h in "
                  f"{time.perf_counter() - start:.0f} s")  # fmt: skip
            bench(url, args.devices, one, args.ticks)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
