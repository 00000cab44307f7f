"""``wardwatch demo`` and the simulator commands: the simulator wired to storage and the service."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypedDict

import psycopg

from dashboard.server import ServerError
from signals.vitals import Metric
from simulator import make_ward
from simulator import record as sim_record
from simulator import replay as sim_replay
from simulator import simulate as sim_run
from simulator.timeline import DEFAULT_HISTORY, Timeline
from simulator.ward import SimPatient
from storage import assignments, migrate
from wardwatch import embedded
from wardwatch.service import Options, running
from wardwatch.settings import Settings, parse_http_addr


@dataclass(frozen=True, slots=True)
class Waveforms:
    """Which simulated devices stream which raw waveform, at what rate (None: none do); each
    ``*_patients`` counts from the first patient (ECG: the first without a PPG), None for all."""

    accel_hz: float | None = None
    accel_patients: int | None = None
    ppg_hz: float | None = None
    ppg_patients: int | None = None
    ecg_hz: float | None = None
    ecg_patients: int | None = None

    def kwargs(self) -> _WaveformKwargs:
        """As ``simulator.simulate`` takes them."""
        return _WaveformKwargs(
            accel_hz=self.accel_hz, accel_patients=self.accel_patients, ppg_hz=self.ppg_hz,
            ppg_patients=self.ppg_patients, ecg_hz=self.ecg_hz, ecg_patients=self.ecg_patients,
        )  # fmt: skip


class _WaveformKwargs(TypedDict):
    accel_hz: float | None
    accel_patients: int | None
    ppg_hz: float | None
    ppg_patients: int | None
    ecg_hz: float | None
    ecg_patients: int | None


#: How often the demo derives heart rate, breathing and motion from raw waveforms (the service
#: default is a minute, 15 for motion: at the demo's 60x a minute is an hour of the ward's time).
DEMO_DERIVE_TICK_S = 10.0


def enrol_ward(database_url: str, patients: list[SimPatient], since: datetime) -> None:
    """Enrol the simulated devices from the start of the simulated timeline."""
    migrate.upgrade(database_url)
    with psycopg.connect(database_url) as conn:
        for p in patients:
            assignments.enrol(
                conn,
                device_id=p.device_id,
                patient_id=p.patient_id,
                ward=p.ward,
                valid_from=since,
            )


def _event_start(speed: float, minutes: float | None) -> datetime:
    # A minute's margin: the simulator plans its own timeline a moment after this one.
    plan = Timeline.plan(now_s=time.time(), speed=speed, minutes=minutes, history=DEFAULT_HISTORY)
    return datetime.fromtimestamp(plan.event_start_s, UTC) - timedelta(minutes=1)


def simulate(
    settings: Settings,
    *,
    patients: int,
    speed: float,
    scenario: str | None,
    minutes: float | None,
    seed: int,
    enrol: bool,
    stop: threading.Event,
    waveforms: Waveforms | None = None,
) -> str:
    """Publish a simulated ward; ``waveforms`` as ``simulator.simulate`` takes them."""
    w = waveforms or Waveforms()
    ward = make_ward(patients, seed=seed, scenario=scenario)
    if enrol:
        enrol_ward(settings.database_url, ward, _event_start(speed, minutes))
    stats = sim_run(
        ward,
        mqtt_url=settings.mqtt_url,
        speed=speed,
        minutes=minutes,
        seed=seed,
        stop=stop,
        **w.kwargs(),
    )
    chunks = [
        f", {n} {what} chunks ({samples} samples at {hz:g} Hz)"
        for what, hz, n, samples in (
            ("accelerometer", w.accel_hz, stats.accel_messages, stats.accel_samples),
            ("PPG", w.ppg_hz, stats.ppg_messages, stats.ppg_samples),
            ("ECG", w.ecg_hz, stats.ecg_messages, stats.ecg_samples),
        )
        if hz is not None
    ]
    return (
        f"published {stats.messages} messages ({stats.samples} samples) for {len(ward)} patients"
        f"{''.join(chunks)}, event time {stats.event_start:%Y-%m-%d %H:%M} → "
        f"{stats.event_end:%H:%M} UTC"
    )


def replay(settings: Settings, path: Path, *, speed: float, stop: threading.Event) -> str:
    n = sim_replay(path, settings.mqtt_url, speed=speed, stop=stop)
    return f"replayed {n} messages from {path}"


def record(settings: Settings, out: Path, *, minutes: float | None, stop: threading.Event) -> str:
    n = sim_record(settings.mqtt_url, out, minutes=minutes, stop=stop)
    return f"recorded {n} messages to {out}"


@dataclass(frozen=True, slots=True)
class Summary:
    readings_stored: int
    quarantined: int
    alerts_raised: int
    alerts_by_severity: dict[str, int]
    patients_alerted: int
    derived: dict[str, int] = field(default_factory=dict)  # metric -> readings from waveforms

    def __str__(self) -> str:
        by = ", ".join(f"{k} {v}" for k, v in sorted(self.alerts_by_severity.items())) or "none"
        derived = ", ".join(f"{k} {v}" for k, v in sorted(self.derived.items())) or "none yet"
        return (
            f"readings stored: {self.readings_stored}\n"
            f"derived from raw waveforms (readings): {derived}\n"
            f"quarantined: {self.quarantined}\n"
            f"alerts raised: {self.alerts_raised} ({by}) for {self.patients_alerted}"
            f" patient{'' if self.patients_alerted == 1 else 's'}"
        )


def summarise(database_url: str) -> Summary:
    """The demo's closing figures, read from the database: what really landed."""
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("select count(*) from readings").fetchone()
        quarantined = conn.execute("select count(*) from quarantine").fetchone()
        rows = conn.execute(
            "select severity, count(*), count(distinct patient_id) from alerts group by severity"
        ).fetchall()
        patients = conn.execute("select count(distinct patient_id) from alerts").fetchone()
        derived = conn.execute(
            "select metric, count(*) from readings where device_id like %s group by metric",
            ("%/derived",),
        ).fetchall()
    from alerts.model import Severity  # noqa: PLC0415

    return Summary(
        readings_stored=int(stored[0]) if stored else 0,
        quarantined=int(quarantined[0]) if quarantined else 0,
        alerts_raised=sum(int(n) for _, n, _ in rows),
        alerts_by_severity={Severity(int(s)).label: int(n) for s, n, _ in rows},
        patients_alerted=int(patients[0]) if patients else 0,
        derived={Metric(int(m)).name.lower(): int(n) for m, n in derived},
    )


def _simulate_until_done(
    ward: list[SimPatient],
    mqtt_url: str,
    speed: float,
    minutes: float | None,
    seed: int,
    stop: threading.Event,
    waveforms: Waveforms,
) -> None:
    """Run the simulator on its own thread so that Ctrl-C (``stop``) is noticed at once."""
    sim_stop = threading.Event()
    done = threading.Event()

    def simulate_ward() -> None:
        try:
            sim_run(
                ward,
                mqtt_url=mqtt_url,
                speed=speed,
                minutes=minutes,
                seed=seed,
                stop=sim_stop,
                **waveforms.kwargs(),
            )
        finally:
            done.set()

    sim = threading.Thread(target=simulate_ward, name="simulator", daemon=True)
    sim.start()
    while not stop.is_set() and not done.is_set():
        stop.wait(0.5)
    sim_stop.set()
    sim.join(30)


def run_demo(
    *,
    data_dir: Path,
    patients: int,
    speed: float,
    minutes: float | None,
    http_addr: str,
    seed: int,
    stop: threading.Event,
    prefer_installed: bool = True,
    waveforms: Waveforms | None = None,
) -> int:
    """Embedded broker and database, a simulated ward, the whole pipeline and the dashboard.

    ``waveforms``: with ``accel_hz``, the first ``accel_patients`` devices (None: all) also send
    their raw wrist accelerometer (``wardwatch demo`` asks for 2 at 10 Hz: light at the demo's
    60x); with ``ppg_hz`` the first ``ppg_patients`` stream their PPG and send no heart or
    breathing rate, which the derive jobs then compute (``wardwatch demo`` asks for 1 at 25 Hz);
    with ``ecg_hz`` the next ``ecg_patients`` wear an ECG patch (the demo: 1 at 125 Hz). The jobs
    run every ``DEMO_DERIVE_TICK_S`` instead of every minute: at 60x a minute is an hour of the
    ward's time, and those patients would show no heart rate for that long.
    """
    host, port = parse_http_addr(http_addr)
    data_dir.mkdir(parents=True, exist_ok=True)
    out = sys.stdout
    with embedded.services(data_dir.resolve(), prefer_installed=prefer_installed) as urls:
        print(f"broker: {urls.mqtt_kind} at {urls.mqtt_url}", file=out)
        print(f"database: {urls.database_kind} at {urls.database_url}", file=out)
        settings = Settings(urls.mqtt_url, urls.database_url, host, port)
        ward = make_ward(patients, seed=seed)
        enrol_ward(urls.database_url, ward, _event_start(speed, minutes))
        with contextlib.ExitStack() as stack:
            try:
                tick = DEMO_DERIVE_TICK_S
                options = Options(derive_tick_s=tick, motion_tick_s=tick)
                svc = stack.enter_context(running(settings, options))
            except ServerError as exc:  # e.g. the port is taken: say so plainly
                print(f"wardwatch demo: {exc}; try --http-addr 127.0.0.1:0", file=sys.stderr)
                return 1
            print(f"\ndashboard: {svc.dashboard_url}/  (Ctrl-C stops everything)\n", file=out)
            _simulate_until_done(ward, urls.mqtt_url, speed, minutes, seed, stop,
                                 waveforms or Waveforms())  # fmt: skip
            if not stop.is_set():
                # Let ingest take what is still queued before the summary.
                deadline = time.monotonic() + 30
                while svc.source.depth() > 0 and time.monotonic() < deadline:
                    time.sleep(0.2)
                time.sleep(2)
        print("\nwardwatch demo summary", file=out)
        print(summarise(urls.database_url), file=out)
    return 0
