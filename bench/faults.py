"""``python -m bench.faults``: a million readings through every fault in one run, with figures.

The long variant of ``tests/faults``: real Mosquitto (persistence on) and PostgreSQL (fsync on),
``wardwatch run`` as a child process, publishers as child processes at QoS 1. While they publish,
ingest is killed with SIGKILL twice, the broker is restarted, then PostgreSQL is restarted. Prints
readings/s through the faults, each fault's downtime and recovery, and the missing, extra and
doubled counts (all must be 0). Exit code 0 when the stored set equals the published set.
Record the figures in docs/delivery.md with the command that produced them.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import UTC, datetime

from tests.faults import harness
from tests.faults.workload import METRICS, Workload


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__)
    parser.add_argument("--readings", type=int, default=1_000_000, help="at least this many")
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--samples", type=int, default=25, help="samples per message")
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument(
        "--rate", type=float, default=400.0, help="messages/s over all publishers; 0 = flat out"
    )
    parser.add_argument("--down", type=float, default=2.0, help="seconds each part stays down")
    parser.add_argument(
        "--crash-postgresql",
        action="store_true",
        help="also crash PostgreSQL (immediate shutdown) at 85%%; nothing may be lost",
    )
    parser.add_argument(
        "--crash-broker",
        action="store_true",
        help="instead: kill -9 Mosquitto while ingest is down, to measure what a broker crash "
        "loses (expected: what it accepted since its last autosave)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder and its logs")
    args = parser.parse_args()

    per_device = args.samples * len(METRICS)
    messages_per_device = -(-args.readings // (args.devices * per_device))
    workload = Workload(
        run_id=uuid.uuid4().hex[:8],
        devices=args.devices,
        messages_per_device=messages_per_device,
        samples_per_message=args.samples,
        t0_s=int(time.time()) - 30 * 86_400,
    )
    faults = [
        harness.kill_ingest_at(0.15, args.down),
        harness.kill_ingest_at(0.30, args.down),
        harness.restart_broker_at(0.50, args.down),
        harness.restart_postgresql_at(0.70, args.down),
    ]
    if args.crash_postgresql:
        faults.append(harness.crash_postgresql_at(0.85, args.down))
    if args.crash_broker:
        faults = [harness.crash_broker_at(0.5, max(args.down, 5.0))]
    print(f"wardwatch fault benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", flush=True)
    print(
        f"{workload.readings:,} readings, {args.publishers} publishers at "
        + (f"{args.rate:g} messages/s" if args.rate else "full speed"),
        flush=True,
    )
    timeouts = harness.Timeouts(
        fault_s=600, publish_s=1800, drain_s=1800, stall_s=60, start_s=60, stop_s=60
    )
    with harness.workdir("wardwatch-bench-faults-", keep=args.keep) as workdir:
        outcome = harness.run(
            workdir,
            workload,
            faults,
            publishers=args.publishers,
            rate=args.rate,
            timeouts=timeouts,
            say=lambda line: print(line, flush=True),
        )
        print()
        print(outcome.report())
        if args.keep:
            print(f"work folder kept: {workdir}")
    if args.crash_broker:
        lost = len(outcome.verdict.missing)
        print(
            f"\nRESULT: the broker crash lost {lost:,} acknowledged readings: Mosquitto keeps its "
            "queue in memory and writes it to disk every autosave_interval (10 s) and on a clean "
            "stop (docs/delivery.md)"
        )
        return 0
    print("\nRESULT: " + ("stored set == published set" if outcome.ok else "FAILED"))
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
