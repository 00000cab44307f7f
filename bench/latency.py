"""``python -m bench.latency``: from a reading's arrival to the first notification, live.

The issue's target: with 5,000 simulated patients publishing live, the 99th percentile from the
reading's arrival to the first notification is below 1 s. This runs the real service
(``wardwatch.service.running``: ingest, scoring, alerts, the outbox dispatcher) against its own
Mosquitto and PostgreSQL (fsync on), with a local webhook receiver as the pager.

Load, in real time (not compressed): every patient's device sends one vitals message a minute
(HR, SpO2, RR, temperature; QoS 1), the patients' phases spread evenly over the minute, from
several publisher processes (a Python publisher tops out near 8,000 QoS 1 msg/s here; 5,000
patients is only ~83 msg/s, so the publishers are far from their limit). A known subset
deteriorates: from a planned minute on, its readings score NEWS2 11 (emergency), so each fires
one alert whose notifications go to the log channel and the webhook.

Per alert it measures (all on this machine's one clock):

- reading received → webhook receipt: ``readings.received_at`` of the reading that fired the
  alert (ingest's receipt from the broker) to the moment the webhook receiver got the POST;
- reading received → outbox ``sent_at``: the dispatcher's own record (taken as the tick starts,
  so a few ms earlier than the receipt);
- published → webhook receipt: including the device-to-broker hop.

Baseline in the same run: a bare QoS 1 subscriber (paho, TCP_NODELAY) on the same topics,
published → received for every message: the broker round trip any design pays.

What bounds the latency from below: ingest's micro-batch window (0.2 s), then the dispatcher,
which ingest wakes as soon as a batch commits (its ``dispatch_tick_s`` only catches what the
periodic jobs owe), and ``notify_group_wait`` (0 by default: a patient's alerts of one batch are
pending together and go out as one message without waiting). ``--runs`` measures other values
as labelled lines, e.g. ``1/10`` for a 10 s group wait, without changing the service's defaults.
Figures are printed, never asserted; record them in docs/benchmarks.md with the command.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import multiprocessing as mp
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path

import orjson
import psycopg

from alerts.report import percentile
from simulator.publish import Publisher, Subscriber
from storage import assignments, migrate
from wardwatch import embedded
from wardwatch.service import Options, running
from wardwatch.settings import Settings

WARD = "bench-latency"
TOPICS = "wardwatch/v1/devices/+/vitals"
#: A deteriorated patient's vitals: RR 28 (3), SpO2 88 % (3), HR 135 (3), 39.3 °C (2) = NEWS2 11,
#: an emergency under RCP NEWS2 2017's clinical response chart.
SICK = {"heart_rate": 135, "spo2": 88, "resp_rate": 28, "temperature": 39.3}


def device_id(i: int) -> str:
    return f"lat-dev-{i:05d}"


def patient_id(i: int) -> str:
    return f"lat-pt-{i:05d}"


@dataclass(frozen=True, slots=True)
class Plan:
    """Who publishes when: patient ``i`` sends at ``t0 + phase_i + 60 k`` for k < minutes.

    Phases spread the patients evenly over the minute, each jittered within its slot: devices
    are not synchronised, and a regular grid would alias with the dispatcher's tick.
    """

    patients: int
    minutes: int
    t0_s: float
    phase_s: tuple[float, ...]
    sick_from: dict[int, int]  # patient index -> first minute (k) of deteriorated readings

    def due_s(self, i: int, k: int) -> float:
        return self.t0_s + self.phase_s[i] + 60.0 * k


def plan(patients: int, minutes: int, sick_fraction: float, t0_s: float, seed: int) -> Plan:
    """Spread the deteriorating subset evenly over the patients and over minutes 1..minutes-1.

    Minute 0 is always normal, so each alert is fired by a reading arriving live, never by the
    first message of a device.
    """
    rng = random.Random(seed)
    n_sick = round(patients * sick_fraction)
    chosen = sorted(rng.sample(range(patients), n_sick))
    later = max(minutes - 1, 1)
    phases = tuple(60.0 * (i + rng.random()) / patients for i in range(patients))
    return Plan(patients, minutes, t0_s, phases, {i: 1 + j % later for j, i in enumerate(chosen)})


# --- child processes: publishers, the bare subscriber, the webhook receiver -------------------


def _vitals(rng: random.Random) -> dict[str, float]:
    """Vitals that score NEWS2 0 (RCP NEWS2 2017, Chart 1), jittered per message."""
    return {
        "heart_rate": rng.randint(58, 88),
        "spo2": rng.randint(96, 99),
        "resp_rate": rng.randint(12, 19),
        "temperature": round(rng.uniform(36.3, 37.6), 1),
    }


def publish_main(mqtt_url: str, the_plan: Plan, mine: Sequence[int], out: str) -> None:
    """Publish ``mine`` patients' messages at their due times; log (device, ts ms, sent µs)."""
    rng = random.Random(mine[0] if mine else 0)
    schedule = sorted((the_plan.due_s(i, k), i, k) for i in mine for k in range(the_plan.minutes))
    lines: list[str] = []
    with Publisher(mqtt_url, max_inflight=200, timeout_s=30) as publisher:
        for due, i, k in schedule:
            wait = due - time.time()
            if wait > 0:
                time.sleep(wait)
            ts_ms = round(due * 1000)
            sick_from = the_plan.sick_from.get(i)
            values = SICK if sick_from is not None and k >= sick_from else _vitals(rng)
            sample = {"ts": datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat(), **values}
            sent_us = time.time_ns() // 1000
            publisher.publish(f"wardwatch/v1/devices/{device_id(i)}/vitals", orjson.dumps([sample]))
            lines.append(f"{device_id(i)}\t{ts_ms}\t{sent_us}\n")
    Path(out).write_text("".join(lines))


def subscribe_main(mqtt_url: str, expected: int, until_s: float, out: str, ready: MpEvent) -> None:
    """The baseline: receive every device message as a bare QoS 1 subscriber; log receipt."""
    lines: list[str] = []
    with Subscriber(mqtt_url, TOPICS, queue_size=100_000) as sub:
        ready.set()
        while len(lines) < expected and time.time() < until_s:
            got = sub.get(0.5)
            if got is None:
                continue
            topic, payload, received_s = got
            ts = datetime.fromisoformat(orjson.loads(payload)[0]["ts"])
            device = topic.split("/")[3]
            lines.append(f"{device}\t{round(ts.timestamp() * 1000)}\t{int(received_s * 1e6)}\n")
    Path(out).write_text("".join(lines))


def receive_main(port: int, out: str, ready: MpEvent) -> None:
    """A pager gateway: answer every POST with 200 and log (alert id, receipt µs)."""
    log_file = open(out, "a", buffering=1)  # noqa: SIM115 - lives as long as the process

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received_us = time.time_ns() // 1000
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            notice = orjson.loads(body)
            # A grouped message carries several alerts (alert_ids); one alone, alert_id.
            for alert_id in notice.get("alert_ids") or [notice["alert_id"]]:
                log_file.write(f"{alert_id}\t{received_us}\n")
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    ready.set()
    server.serve_forever()


# --- the run ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Measured:
    """One run's figures, in milliseconds."""

    patients: int
    tick_s: float
    group_wait_s: float
    published: int
    stored: int
    expected_alerts: int
    alerts: int
    other_alerts: int
    received_to_webhook: list[float]
    received_to_sent_at: list[float]
    published_to_webhook: list[float]
    broker_baseline: list[float]


def _lines(path: Path) -> Iterator[list[str]]:
    if path.exists():
        for line in path.read_text().splitlines():
            yield line.split("\t")


@contextlib.contextmanager
def _child(target: Callable[..., object], *args: object) -> Iterator[mp.process.BaseProcess]:
    proc = mp.get_context("spawn").Process(target=target, args=args, daemon=True)
    proc.start()
    try:
        yield proc
    finally:
        if proc.is_alive():
            proc.terminate()
        proc.join(10)


def measure(
    *,
    patients: int,
    minutes: int,
    publishers: int,
    tick_s: float,
    group_wait_s: float,
    sick: float,
    seed: int,
) -> Measured:
    """Start everything, publish ``minutes`` of live load, and read the latencies back."""
    base = Path(tempfile.mkdtemp(prefix="wardwatch-bench-latency-", dir="/tmp"))
    spawn = mp.get_context("spawn")
    try:
        with contextlib.ExitStack() as stack:
            mqtt_url = stack.enter_context(embedded.mosquitto(base / "mqtt", persistence=False))
            db_url = stack.enter_context(embedded.postgresql(base / "pg", durable=True))
            migrate.upgrade(db_url)
            enrolled_at = datetime.now(UTC) - timedelta(seconds=5)
            started = time.perf_counter()
            with psycopg.connect(db_url) as conn:
                for i in range(patients):
                    assignments.enrol(
                        conn,
                        device_id=device_id(i),
                        patient_id=patient_id(i),
                        ward=WARD,
                        valid_from=enrolled_at,
                    )
            print(f"  enrolled {patients:,} in {time.perf_counter() - started:.1f} s", flush=True)

            hook_port = embedded.free_port()
            hook_log = base / "webhook.tsv"
            ready = spawn.Event()
            stack.enter_context(_child(receive_main, hook_port, str(hook_log), ready))
            if not ready.wait(30):
                raise RuntimeError("webhook receiver did not start")

            the_plan = plan(patients, minutes, sick, time.time() + 8.0, seed)
            end_s = the_plan.t0_s + 60.0 * minutes + 30.0
            expected = patients * minutes
            sub_log = base / "subscriber.tsv"
            sub_ready = spawn.Event()
            subscriber = stack.enter_context(
                _child(subscribe_main, mqtt_url, expected, end_s, str(sub_log), sub_ready)
            )
            if not sub_ready.wait(30):
                raise RuntimeError("baseline subscriber did not start")

            settings = Settings(
                mqtt_url=mqtt_url,
                database_url=db_url,
                http_host="127.0.0.1",
                http_port=embedded.free_port(),
                webhook_url=f"http://127.0.0.1:{hook_port}/page",
                client_id=f"bench-latency-{seed}",
            )
            options = Options(
                dispatch_tick_s=tick_s, notify_group_wait=timedelta(seconds=group_wait_s)
            )
            with running(settings, options) as svc:
                if not svc.source.subscribed.wait(30):
                    raise RuntimeError("the service did not subscribe")
                pub_logs = [base / f"publisher-{p}.tsv" for p in range(publishers)]
                procs = [
                    spawn.Process(
                        target=publish_main,
                        args=(mqtt_url, the_plan, range(p, patients, publishers), str(out)),
                        daemon=True,
                    )
                    for p, out in enumerate(pub_logs)
                ]
                for proc in procs:
                    proc.start()
                for proc in procs:
                    proc.join(the_plan.t0_s + 60.0 * minutes + 120 - time.time())
                    if proc.exitcode != 0:
                        raise RuntimeError(f"a publisher failed (exit code {proc.exitcode})")
                # Let the last alerts reach the pager: at most 30 s.
                deadline = time.monotonic() + 30 + group_wait_s
                while time.monotonic() < deadline:
                    if len({r[0] for r in _lines(hook_log)}) >= len(the_plan.sick_from):
                        break
                    time.sleep(0.2)
                time.sleep(2 * tick_s)
            subscriber.join(max(end_s - time.time(), 1))
            return _read_back(db_url, the_plan, options, pub_logs, hook_log, sub_log)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _read_back(
    db_url: str,
    the_plan: Plan,
    options: Options,
    pub_logs: list[Path],
    hook_log: Path,
    sub_log: Path,
) -> Measured:
    published = {(d, int(ts)): int(us) for p in pub_logs for d, ts, us in _lines(p)}
    baseline = [
        (int(us) - published[(d, int(ts))]) / 1000
        for d, ts, us in _lines(sub_log)
        if (d, int(ts)) in published
    ]
    first_hook: dict[int, int] = {}
    for alert_id, us in _lines(hook_log):
        first_hook.setdefault(int(alert_id), int(us))
    sick_patients = {patient_id(i) for i in the_plan.sick_from}
    with psycopg.connect(db_url) as conn:
        stored = conn.execute("select count(distinct (device_id, ts)) from readings").fetchone()
        rows = conn.execute(
            "select a.id, a.patient_id, a.rule, r.device_id, r.ts, r.received_at,"
            " (select min(n.sent_at) from notifications n where n.alert_id = a.id)"
            " from alerts a left join lateral ("
            "   select device_id, ts, received_at from readings"
            "   where patient_id = a.patient_id and received_at <= a.opened_at"
            "   order by received_at desc, ts desc limit 1) r on true"
        ).fetchall()
    to_hook, to_sent, pub_to_hook = [], [], []
    ours = other = 0
    for alert_id, pid, rule, device, ts, received_at, sent_at in rows:
        if pid not in sick_patients or rule != "news2" or received_at is None:
            other += 1
            continue
        ours += 1
        received_us = received_at.timestamp() * 1e6
        if alert_id in first_hook:
            to_hook.append((first_hook[alert_id] - received_us) / 1000)
            sent_us = published.get((device, round(ts.timestamp() * 1000)))
            if sent_us is not None:
                pub_to_hook.append((first_hook[alert_id] - sent_us) / 1000)
        if sent_at is not None:
            to_sent.append((sent_at.timestamp() * 1e6 - received_us) / 1000)
    assert stored is not None
    return Measured(
        patients=the_plan.patients,
        tick_s=options.dispatch_tick_s,
        group_wait_s=options.notify_group_wait.total_seconds(),
        published=len(published),
        stored=int(stored[0]),
        expected_alerts=len(the_plan.sick_from),
        alerts=ours,
        other_alerts=other,
        received_to_webhook=to_hook,
        received_to_sent_at=to_sent,
        published_to_webhook=pub_to_hook,
        broker_baseline=baseline,
    )


def _row(label: str, values: list[float]) -> str:
    if not values:
        return f"{label:<44} {0:>7}        -"
    p50, p90, p99 = (percentile(values, q) for q in (50, 90, 99))
    return f"{label:<44} {len(values):>7,} {p50:>8.1f} {p90:>8.1f} {p99:>8.1f} {max(values):>8.1f}"


def report(m: Measured, *, minutes: int, publishers: int) -> str:
    defaults = Options()
    default = (
        m.tick_s == defaults.dispatch_tick_s
        and m.group_wait_s == defaults.notify_group_wait.total_seconds()
    )
    lines = [
        f"\n## latency, {m.patients:,} patients live (1 msg/patient/min, real time, "
        f"{minutes} min, {publishers} publishers), dispatch tick {m.tick_s:g} s, "
        f"group wait {m.group_wait_s:g} s" + (" (the service's defaults)" if default else ""),
        f"messages: {m.published:,} published, {m.stored:,} stored; alerts: {m.alerts} of "
        f"{m.expected_alerts} planned, {m.other_alerts} other",
        f"{'ms':<44} {'n':>7} {'median':>8} {'p90':>8} {'p99':>8} {'max':>8}",
        _row("reading received -> webhook receipt", m.received_to_webhook),
        _row("reading received -> outbox sent_at", m.received_to_sent_at),
        _row("published -> webhook receipt", m.published_to_webhook),
        _row("baseline: published -> bare subscriber", m.broker_baseline),
    ]
    if m.received_to_webhook and m.broker_baseline:
        ratio50 = percentile(m.received_to_webhook, 50) / percentile(m.broker_baseline, 50)
        ratio99 = percentile(m.received_to_webhook, 99) / percentile(m.broker_baseline, 99)
        p99 = percentile(m.received_to_webhook, 99)
        lines.append(
            f"alert latency / broker round trip: median {ratio50:,.0f}x, p99 {ratio99:,.0f}x; "
            f"p99 {p99 / 1000:.2f} s {'<' if p99 < 1000 else '>='} 1 s target"
        )
    return "\n".join(lines)


def _runs(text: str) -> list[tuple[float, float]]:
    """``TICK/GROUP_WAIT,...`` in seconds; ``default`` for the service's own defaults."""
    defaults = Options()
    out = []
    for item in text.split(","):
        if item == "default":
            out.append((defaults.dispatch_tick_s, defaults.notify_group_wait.total_seconds()))
        else:
            tick, _, wait = item.partition("/")
            out.append((float(tick), float(wait or 0)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.latency",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--patients", default="5000", help="comma-separated sizes, e.g. 1000,2000,5000"
    )
    parser.add_argument(
        "--runs",
        default="default,1/10",
        help="comma-separated DISPATCH_TICK/GROUP_WAIT seconds to measure, or 'default' for the "
        "service's (default: %(default)s)",
    )
    parser.add_argument("--minutes", type=int, default=3, help="minutes of live load per run")
    parser.add_argument("--publishers", type=int, default=4)
    parser.add_argument("--sick", type=float, default=0.05, help="fraction that deteriorates")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    # The log channel writes every page as a warning; the figures are the output here.
    logging.getLogger("wardwatch.notify").setLevel(logging.ERROR)
    # A 0.1 s tick sometimes finds the previous send still running; APScheduler warns each time.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    print(f"wardwatch latency benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", flush=True)
    for n in (int(x) for x in args.patients.split(",")):
        for tick, wait in _runs(args.runs):
            m = measure(
                patients=n,
                minutes=args.minutes,
                publishers=args.publishers,
                tick_s=tick,
                group_wait_s=wait,
                sick=args.sick,
                seed=args.seed,
            )
            print(report(m, minutes=args.minutes, publishers=args.publishers), flush=True)


if __name__ == "__main__":
    main()
