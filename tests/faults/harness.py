"""A fault run: real Mosquitto and PostgreSQL, ``wardwatch run`` as a child process, publishers as
child processes, and faults struck while they publish; then the stored readings are compared with
the published set, key by key.

Used by ``tests/faults/test_faults.py`` (120,000 readings per fault) and
``python -m bench.faults`` (a million, every fault in one run). Every process started here is
stopped when ``run`` returns or raises.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import psycopg

from ingest.mqtt import MqttEndpoint, make_client
from storage import assignments, migrate
from tests.faults import workload as wl
from wardwatch import embedded

ROOT = Path(__file__).resolve().parents[2]
Say = Callable[[str], None]


class HarnessError(RuntimeError):
    """The run could not be carried out (a service would not start, a wait timed out)."""


def _until(what: str, check: Callable[[], object], timeout_s: float, every_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise HarnessError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(every_s)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text[-lines:])


def _connect(url: str, statement_timeout_s: float = 5) -> psycopg.Connection[tuple[Any, ...]]:
    """An autocommit connection that neither waits nor hangs long on a database that is away."""
    return psycopg.connect(
        url,
        connect_timeout=2,
        autocommit=True,
        options=f"-c statement_timeout={int(statement_timeout_s * 1000)}",
    )


# --- the parts ---------------------------------------------------------------------------------


class Service:
    """An embedded service stopped and started again on the same port and data folder."""

    def __init__(self, name: str, factory: Callable[[], contextlib.AbstractContextManager[str]]):
        self.name = name
        self._factory = factory
        self._stack: contextlib.ExitStack | None = None
        self.url = ""

    def start(self) -> str:
        stack = contextlib.ExitStack()
        self.url = stack.enter_context(self._factory())
        self._stack = stack
        return self.url

    def stop(self) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            stack.close()


class Ingest:
    """``python -m wardwatch run`` as a child process, so that it can be killed with SIGKILL."""

    def __init__(self, mqtt_url: str, database_url: str, log_path: Path) -> None:
        self._args = [
            sys.executable,
            "-m",
            "wardwatch",
            "-v",
            "run",
            "--mqtt-url",
            mqtt_url,
            "--database-url",
            database_url,
            "--http-addr",
            "127.0.0.1:0",
        ]
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts} ---\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self._args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=_child_env()
            )

    def exited(self) -> int | None:
        """The exit code if the process has ended (on its own, when nobody stopped it)."""
        return None if self.proc is None else self.proc.poll()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout_s: float) -> int | None:
        """SIGTERM and wait: the exit code, or None if it had to be killed after ``timeout_s``."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        return self.proc.returncode


def _child_env() -> dict[str, str]:
    # ROOT first on the path: the publisher imports ``tests.faults``, not an installed package.
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


class Publisher:
    """One ``tests.faults.publisher`` process publishing every ``of``-th device of the workload."""

    def __init__(
        self,
        workload: wl.Workload,
        mqtt_url: str,
        *,
        index: int,
        of: int,
        rate: float,
        deadline_s: float,
        log_path: Path,
    ) -> None:
        self.acked = 0
        self.stats: dict[str, Any] | None = None
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.faults.publisher",
                    "--mqtt-url",
                    mqtt_url,
                    "--workload",
                    workload.to_json(),
                    "--index",
                    str(index),
                    "--of",
                    str(of),
                    "--rate",
                    str(rate),
                    "--deadline",
                    str(deadline_s),
                ],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=log,
                env=_child_env(),
                text=True,
            )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout as out:
            for line in out:
                word, _, rest = line.strip().partition(" ")
                if word == "progress":
                    self.acked = int(rest)
                elif word == "done":
                    self.stats = orjson.loads(rest)

    def wait(self, timeout_s: float) -> int | None:
        try:
            code = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(5)


class StoredCounter:
    """Counts the run's stored readings several times a second, through every outage."""

    def __init__(self, database_url: str, prefix: str, every_s: float = 0.2) -> None:
        self._url = database_url
        self._prefix = prefix
        self._every_s = every_s
        self.samples: list[tuple[float, int]] = []  # (monotonic time, count)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    @property
    def latest(self) -> int:
        return self.samples[-1][1] if self.samples else 0

    def _run(self) -> None:
        conn: psycopg.Connection[tuple[Any, ...]] | None = None
        while not self._stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = _connect(self._url)
                row = conn.execute(
                    "select count(*) from readings where device_id like %s", (self._prefix + "%",)
                ).fetchone()
                assert row is not None
                self.samples.append((time.monotonic(), int(row[0])))
            except psycopg.Error:
                if conn is not None:
                    conn.close()
                conn = None
            self._stop.wait(self._every_s)
        if conn is not None:
            conn.close()

    def first_after(self, t: float, predicate: Callable[[int], bool]) -> float | None:
        """Seconds from ``t`` to the first count at or after ``t`` satisfying ``predicate``."""
        for at, count in self.samples:
            if at >= t and predicate(count):
                return at - t
        return None

    def longest_stall(self, begin: float, end: float) -> float:
        """Longest time without a commit, from the last commit before ``begin`` to ``end``."""
        commits = [
            at
            for (at, n), (_, before) in zip(self.samples[1:], self.samples, strict=False)
            if n > before
        ]
        last = max((at for at in commits if at < begin), default=begin)
        longest = 0.0
        for at in (at for at in commits if at >= begin):
            longest, last = max(longest, at - last), at
            if at >= end:
                break
        return longest

    def at(self, t: float) -> int:
        """The last count taken at or before ``t``."""
        before = [count for at, count in self.samples if at <= t]
        return before[-1] if before else 0


@dataclass(slots=True)
class Rig:
    """What a fault acts on."""

    broker: Service
    database: Service
    ingest: Ingest
    workdir: Path


# --- faults ------------------------------------------------------------------------------------


def kill_ingest(rig: Rig, down_s: float) -> None:
    """``kill -9`` the ingest process mid-stream, then start it again on the same MQTT session."""
    rig.ingest.kill()
    time.sleep(down_s)
    rig.ingest.start()


def restart_broker(rig: Rig, down_s: float) -> None:
    """Stop Mosquitto (it saves its persistence file) and start it on the same port and data."""
    rig.broker.stop()
    time.sleep(down_s)
    rig.broker.start()


def restart_postgresql(rig: Rig, down_s: float) -> None:
    """Stop PostgreSQL (fast shutdown: open transactions roll back) and start it again."""
    rig.database.stop()
    time.sleep(down_s)
    rig.database.start()


def crash_postgresql(rig: Rig, down_s: float) -> None:
    """Crash PostgreSQL (immediate shutdown: no checkpoint; WAL replay on start), start it again."""
    pid_file = rig.workdir / "pg" / "pgdata" / "postmaster.pid"
    os.kill(int(pid_file.read_text().split()[0]), signal.SIGQUIT)
    rig.database.stop()
    time.sleep(down_s)
    rig.database.start()


def crash_broker_with_ingest_down(rig: Rig, down_s: float) -> None:
    """``kill -9`` Mosquitto while it queues for a stopped ingest: it loses what it accepted
    since its last save (``autosave_interval``). Expected to lose readings: see docs/delivery.md.
    """
    rig.ingest.kill()
    time.sleep(down_s)
    conf = str(rig.workdir / "mqtt" / "mosquitto.conf")
    os.kill(_child_running(conf), signal.SIGKILL)
    rig.broker.stop()
    rig.broker.start()
    rig.ingest.start()


def _child_running(argument: str) -> int:
    """The pid of our own child process whose command line holds ``argument``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and argument.encode() in argv:
            return int(entry.name)
    raise HarnessError(f"no child process of ours runs with {argument}")


@dataclass(frozen=True, slots=True)
class Fault:
    name: str
    strike: Callable[[Rig, float], None]
    at: float  # fraction of the workload both acknowledged to publishers and stored
    down_s: float = 1.0


def kill_ingest_at(at: float, down_s: float = 0.5) -> Fault:
    return Fault("kill -9 ingest", kill_ingest, at, down_s)


def restart_broker_at(at: float, down_s: float = 1.0) -> Fault:
    return Fault("restart broker", restart_broker, at, down_s)


def restart_postgresql_at(at: float, down_s: float = 1.0) -> Fault:
    return Fault("restart PostgreSQL", restart_postgresql, at, down_s)


def crash_postgresql_at(at: float, down_s: float = 1.0) -> Fault:
    return Fault("crash PostgreSQL", crash_postgresql, at, down_s)


def crash_broker_at(at: float, down_s: float = 5.0) -> Fault:
    return Fault("kill -9 broker", crash_broker_with_ingest_down, at, down_s)


# --- the outcome -------------------------------------------------------------------------------


@dataclass(slots=True)
class Struck:
    """When a fault struck and how ingest came back from it (seconds from publishing's start)."""

    name: str
    at: float  # fraction of the workload acknowledged to publishers when it struck
    struck_s: float
    down_s: float  # until the part was running again
    acked_readings: int  # readings acknowledged to publishers when it struck
    stored_readings: int  # readings stored when it struck
    recovered_s: float | None = None  # back → a reading published after that is stored
    recovered_at: float = 1.0  # fraction of the workload acknowledged by then
    stalled_s: float | None = None  # longest time without a commit, strike to recovery

    def line(self) -> str:
        recovered = "never" if self.recovered_s is None else f"{self.recovered_s:.1f} s"
        stalled = "-" if self.stalled_s is None else f"{self.stalled_s:.1f} s"
        return (
            f"{self.name:<18} at {self.at:4.0%} (t={self.struck_s:5.1f} s): down "
            f"{self.down_s:4.1f} s, recovered {recovered} after that, no commit for {stalled} "
            f"(when struck: {self.acked_readings:,} readings acked, {self.stored_readings:,} "
            "stored)"
        )


@dataclass(slots=True)
class Verdict:
    """The stored set against the published set."""

    expected: int
    stored_rows: int
    missing: np.ndarray  # keys published, not stored
    extra: list[tuple[str, int, datetime]]  # stored, never published
    doubled: list[tuple[str, int, datetime, int]]  # (device, metric, ts, rows) with rows > 1
    wrong_values: list[tuple[int, float, float]]  # (key, stored, published)

    @property
    def ok(self) -> bool:
        return (
            len(self.missing) == 0
            and not self.extra
            and not self.doubled
            and not self.wrong_values
            and self.stored_rows == self.expected
        )


@dataclass(slots=True)
class Outcome:
    workload: wl.Workload
    faults: list[Struck]
    verdict: Verdict
    publishers: list[dict[str, Any] | None]
    publisher_exits: list[int | None]
    ingest_exit: int | None  # exit code of the last ingest process after SIGTERM; None = hung
    ingest_starts: int
    ingest_died: list[int] = field(default_factory=list)  # codes of unexpected exits
    quarantined: dict[str, int] = field(default_factory=dict)
    publish_s: float = 0.0  # publishers' start → last PUBACK
    stored_s: float | None = None  # publishers' start → every reading stored
    log_path: Path | None = None

    @property
    def readings_per_s(self) -> float | None:
        return self.workload.readings / self.stored_s if self.stored_s else None

    @property
    def ok(self) -> bool:
        return (
            self.verdict.ok
            and not self.quarantined
            and self.ingest_exit == 0
            and not self.ingest_died
            and all(code == 0 for code in self.publisher_exits)
        )

    def report(self) -> str:
        w, v = self.workload, self.verdict
        stored = "never" if self.stored_s is None else f"{self.stored_s:.1f} s"
        rate = f"{self.readings_per_s:,.0f}" if self.readings_per_s else "-"
        lines = [
            f"{w.readings:,} readings in {w.messages:,} messages from {w.devices} devices "
            f"({w.samples_per_message} samples × {len(wl.METRICS)} metrics per message)",
            f"published (all PUBACKed) in {self.publish_s:.1f} s; all stored after {stored} "
            f"({rate} readings/s through the faults)",
            *("  " + s.line() for s in self.faults),
            f"stored {v.stored_rows:,} rows of {v.expected:,} published: missing "
            f"{len(v.missing):,}, extra {len(v.extra):,}, doubled {len(v.doubled):,}, "
            f"wrong value {len(v.wrong_values):,}",
        ]
        if len(v.missing):
            lines.append("  missing: " + _describe_missing(w, v.missing, self.faults))
        if v.extra:
            lines.append(f"  extra (first 5): {v.extra[:5]}")
        if v.doubled:
            lines.append(f"  doubled (first 5): {v.doubled[:5]}")
        if v.wrong_values:
            shown = [(_show_key(w, k), s, p) for k, s, p in v.wrong_values[:5]]
            lines.append(f"  wrong values (key, stored, published; first 5): {shown}")
        if self.quarantined:
            lines.append(f"  quarantined instead of stored, by reason: {self.quarantined}")
        lines.append(
            f"ingest: started {self.ingest_starts}×, died on its own with codes "
            f"{self.ingest_died or 'never'}, exit after SIGTERM: "
            + (
                "hung (killed after the timeout)"
                if self.ingest_exit is None
                else str(self.ingest_exit)
            )
        )
        for i, (stats, code) in enumerate(zip(self.publishers, self.publisher_exits, strict=True)):
            lines.append(f"publisher {i}: exit {code}, {stats}")
        if not self.ok and self.log_path is not None:
            lines.append(f"ingest log ({self.log_path}), last lines:\n{_tail(self.log_path)}")
        return "\n".join(lines)


def _show_key(w: wl.Workload, k: int) -> str:
    device, metric, second = wl.unpack(int(k))
    ts = datetime.fromtimestamp(w.t0_s + second, UTC)
    return f"{w.device_id(device)}/{metric.wire_name}@{ts:%H:%M:%S}"


def _describe_missing(w: wl.Workload, missing: np.ndarray, faults: Sequence[Struck]) -> str:
    """Where in the run the missing readings were published, to tie them to a fault."""
    messages = sorted({int(k & 0xFFFFFFFF) // w.samples_per_message for k in missing.tolist()})
    low, high = messages[0] / w.messages_per_device, (messages[-1] + 1) / w.messages_per_device
    devices = sorted({wl.unpack(int(k))[0] for k in missing.tolist()})
    near = [
        f"{f.name} (struck at {f.at:.0%}, recovered by {f.recovered_at:.0%})"
        for f in faults
        if f.at - 0.05 <= high and low <= f.recovered_at + 0.05
    ]
    examples = ", ".join(_show_key(w, k) for k in missing[:5].tolist())
    return (
        f"{len(missing):,} readings of {len(messages)} message rounds published between "
        f"{low:.0%} and {high:.0%} of the run, on {len(devices)} devices; near faults: "
        f"{near or 'none'}; e.g. {examples}"
    )


def verify(database_url: str, workload: wl.Workload) -> tuple[Verdict, dict[str, int]]:
    """Compare every stored (device, metric, ts) and value with the published set."""
    expected_keys, expected_values = workload.expected()
    index = {workload.device_id(d): d for d in range(workload.devices)}
    pattern = workload.device_prefix + "%"
    with _connect(database_url, statement_timeout_s=120) as conn:
        rows = conn.execute(
            "select device_id, metric, ts, value from readings where device_id like %s",
            (pattern,),
        ).fetchall()
        doubled = conn.execute(
            "select device_id, metric, ts, count(*) from readings where device_id like %s"
            " group by device_id, metric, ts having count(*) > 1 limit 100",
            (pattern,),
        ).fetchall()
        quarantined = dict(
            conn.execute("select reason, count(*) from quarantine group by reason").fetchall()
        )
    keys, values, extra = [], [], []
    for device_id, metric, ts, value in rows:
        second = (ts - datetime.fromtimestamp(workload.t0_s, UTC)) / timedelta(seconds=1)
        device = index.get(device_id)
        if device is None or second != int(second) or not 0 <= second < 2**32:
            extra.append((device_id, metric, ts))
            continue
        keys.append(int(wl.key(device, metric, int(second))))
        values.append(value)
    stored_keys = np.array(keys, dtype=np.int64)
    stored_values = np.array(values, dtype=np.float64)
    missing = np.setdiff1d(expected_keys, stored_keys, assume_unique=True)
    unexpected = np.setdiff1d(stored_keys, expected_keys)
    for k in unexpected.tolist():
        device, metric, second = wl.unpack(k)
        extra.append(
            (
                workload.device_id(device),
                int(metric),
                datetime.fromtimestamp(workload.t0_s + second, UTC),
            )
        )
    common, in_stored, in_expected = np.intersect1d(
        stored_keys, expected_keys, assume_unique=True, return_indices=True
    )
    differ = stored_values[in_stored] != expected_values[in_expected]
    wrong = list(
        zip(
            common[differ].tolist(),
            stored_values[in_stored][differ].tolist(),
            expected_values[in_expected][differ].tolist(),
            strict=True,
        )
    )
    verdict = Verdict(
        expected=len(expected_keys),
        stored_rows=len(rows),
        missing=missing,
        extra=extra,
        doubled=[(str(d), int(m), t, int(n)) for d, m, t, n in doubled],
        wrong_values=wrong,
    )
    return verdict, {str(r): int(n) for r, n in quarantined.items()}


# --- the run -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timeouts:
    start_s: float = 30  # ingest takes its first message after starting
    fault_s: float = 120  # publishers reach a fault's moment
    publish_s: float = 300  # publishers get every PUBACK
    drain_s: float = 120  # everything acknowledged is stored
    recover_s: float = 60  # a reading published after a fault is stored
    stall_s: float = 20  # no reading stored for this long after publishing ended: give up
    stop_s: float = 40  # ingest exits after SIGTERM


def run(
    workdir: Path,
    workload: wl.Workload,
    faults: Sequence[Fault],
    *,
    publishers: int = 2,
    rate: float = 0.0,
    timeouts: Timeouts = Timeouts(),
    say: Say = lambda _line: None,
) -> Outcome:
    """Publish the workload while striking ``faults`` in order; stop everything; verify."""
    workdir.mkdir(parents=True, exist_ok=True)
    mqtt_port, pg_port = embedded.free_port(), embedded.free_port()
    with contextlib.ExitStack() as stack:
        database = Service(
            "postgresql", lambda: embedded.postgresql(workdir / "pg", pg_port, durable=True)
        )
        stack.callback(database.stop)
        db_url = database.start()
        migrate.upgrade(db_url)
        _enrol(db_url, workload)
        broker = Service(
            "mosquitto",
            lambda: embedded.mosquitto(workdir / "mqtt", mqtt_port, persistence=True),
        )
        stack.callback(broker.stop)
        mqtt_url = broker.start()
        ingest = Ingest(mqtt_url, db_url, workdir / "ingest.log")
        stack.callback(ingest.kill)
        ingest.start()
        say(f"services up: {mqtt_url}, {db_url}; waiting for ingest")
        probe = Probe(mqtt_url, db_url, _probe_device(workload))
        stack.callback(probe.close)
        if probe.stored_after(timeouts.start_s, lambda: _check_started(ingest)) is None:
            raise HarnessError(
                f"ingest stored no probe reading in {timeouts.start_s:.0f} s:\n"
                + _tail(ingest.log_path)
            )

        counter = StoredCounter(db_url, workload.device_prefix)
        counter.start()
        stack.callback(counter.stop)
        pubs: list[Publisher] = []
        start = time.monotonic()
        for i in range(publishers):
            pub = Publisher(
                workload,
                mqtt_url,
                index=i,
                of=publishers,
                rate=rate / publishers,
                deadline_s=timeouts.publish_s,
                log_path=workdir / f"publisher-{i}.log",
            )
            stack.callback(pub.kill)
            pubs.append(pub)
        per_message = workload.readings_per_message

        def acked() -> int:
            return sum(p.acked for p in pubs)

        died: list[int] = []

        def watch_ingest() -> None:
            code = ingest.exited()
            if code is not None:
                died.append(code)
                raise HarnessError(
                    f"ingest exited on its own with code {code}:\n{_tail(ingest.log_path)}"
                )

        struck: list[Struck] = []
        for fault in faults:

            def reached(f: Fault = fault) -> bool:
                # Both published and stored: with publishers faster than ingest, faults still
                # strike while ingest works through the workload rather than after it.
                watch_ingest()
                done = min(acked() * per_message, counter.latest) / workload.readings
                return done >= f.at

            _until(
                f"publishers to reach {fault.at:.0%} for {fault.name}", reached, timeouts.fault_s
            )
            t, at_acked = time.monotonic(), acked()
            say(f"{t - start:6.1f} s  {fault.name} at {at_acked / workload.messages:.0%}")
            fault.strike(Rig(broker, database, ingest, workdir), fault.down_s)
            back = time.monotonic()
            hit = Struck(
                name=fault.name,
                at=at_acked / workload.messages,
                struck_s=t - start,
                down_s=back - t,
                acked_readings=at_acked * per_message,
                stored_readings=counter.at(t),
            )
            struck.append(hit)
            # The next fault strikes a recovered system: one at a time, each attributable.
            hit.recovered_s = probe.stored_after(timeouts.recover_s, watch_ingest)
            hit.recovered_at = acked() / workload.messages
            rec = "never" if hit.recovered_s is None else f"{hit.recovered_s:.1f} s after"
            say(f"{time.monotonic() - start:6.1f} s  recovered {rec} it was back")

        codes = [p.wait(timeouts.publish_s) for p in pubs]
        publish_s = max((p.stats or {}).get("seconds", 0.0) for p in pubs)
        say(f"publishers finished after {publish_s:.1f} s: exit codes {codes}")
        stored_s = _drain(counter, workload.readings, timeouts, say, start)
        say(
            f"{time.monotonic() - start:6.1f} s  {counter.latest:,} of {workload.readings:,} stored"
        )
        code = ingest.exited()
        if code is not None:
            died.append(code)
        ingest_exit = ingest.stop(timeouts.stop_s)
        counter.stop()
        for hit in struck:
            if hit.recovered_s is not None:
                t = start + hit.struck_s
                hit.stalled_s = counter.longest_stall(t, t + hit.down_s + hit.recovered_s)
        verdict, quarantined = verify(db_url, workload)
        return Outcome(
            workload=workload,
            faults=struck,
            verdict=verdict,
            publishers=[p.stats for p in pubs],
            publisher_exits=codes,
            ingest_exit=ingest_exit,
            ingest_starts=ingest.starts,
            ingest_died=died,
            quarantined=quarantined,
            publish_s=publish_s,
            stored_s=stored_s,
            log_path=ingest.log_path,
        )
    raise AssertionError("unreachable")  # pragma: no cover - the with block returns


def _drain(
    counter: StoredCounter, total: int, timeouts: Timeouts, say: Say, start: float
) -> float | None:
    """Wait until every reading is stored; give up when nothing is stored for ``stall_s``."""
    deadline = time.monotonic() + timeouts.drain_s
    last, last_change = counter.latest, time.monotonic()
    while time.monotonic() < deadline:
        now, count = time.monotonic(), counter.latest
        if count >= total:
            return counter.first_after(start, lambda n: n >= total)
        if count != last:
            last, last_change = count, now
        elif now - last_change > timeouts.stall_s:
            say(f"nothing stored for {timeouts.stall_s:.0f} s at {count:,} of {total:,}")
            return None
        time.sleep(0.1)
    return None


def _enrol(database_url: str, workload: wl.Workload) -> None:
    since = datetime.fromtimestamp(workload.t0_s, UTC) - timedelta(days=1)
    with psycopg.connect(database_url, connect_timeout=10) as conn:
        for device in [*range(workload.devices), -1]:
            device_id = _probe_device(workload) if device < 0 else workload.device_id(device)
            assignments.enrol(
                conn,
                device_id=device_id,
                patient_id=f"pt-{device_id}",
                ward="faults",
                valid_from=since,
            )


def _probe_device(workload: wl.Workload) -> str:
    return f"probe-{workload.run_id}"


def _check_started(ingest: Ingest) -> None:
    code = ingest.exited()
    if code is not None:
        raise HarnessError(
            f"ingest exited with code {code} while starting:\n{_tail(ingest.log_path)}"
        )


class Probe:
    """A device of the harness's own: a reading it publishes after a fault times the recovery.

    The reading queues behind whatever the broker holds for ingest, so it is stored only once
    ingest is connected again, has drained the backlog, and commits.
    """

    def __init__(self, mqtt_url: str, database_url: str, device_id: str) -> None:
        self._db_url = database_url
        self._device = device_id
        self._topic = f"wardwatch/v1/devices/{device_id}/vitals"
        endpoint = MqttEndpoint.from_url(mqtt_url)
        self._client = make_client(endpoint, f"{device_id}-pub")
        self._client.connect_async(endpoint.host, endpoint.port, keepalive=10)
        self._client.loop_start()
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
        if self._conn is not None:
            self._conn.close()

    def stored_after(self, timeout_s: float, check: Callable[[], None]) -> float | None:
        """Publish a reading now (again every second); seconds until one is stored, or None.

        paho keeps and resends what the broker did not acknowledge; publishing again covers a
        broker that had no subscriber yet (the first start) and any message lost in a restart.
        """
        begin = time.monotonic()
        sent_from = time.time() - 0.001  # the stored time keeps whole microseconds
        next_send = begin
        while time.monotonic() - begin < timeout_s:
            check()
            if time.monotonic() >= next_send:
                self._client.publish(
                    self._topic, orjson.dumps({"ts": time.time(), "heart_rate": 70}), qos=1
                )
                next_send += 1.0
            if self._latest() >= sent_from:
                return time.monotonic() - begin
            time.sleep(0.05)
        return None

    def _latest(self) -> float:
        try:
            if self._conn is None or self._conn.closed:
                self._conn = _connect(self._db_url)
            row = self._conn.execute(
                "select extract(epoch from max(ts))::float8 from readings where device_id = %s",
                (self._device,),
            ).fetchone()
        except psycopg.Error:
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            return 0.0
        return float(row[0]) if row and row[0] is not None else 0.0


@contextlib.contextmanager
def workdir(prefix: str, *, keep: bool = False) -> Iterator[Path]:
    """A fresh folder under /tmp that PostgreSQL's user can reach; removed unless ``keep``."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)
