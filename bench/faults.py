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
        "--rate", type=float, default=600.0, help="messages/s over all publishers; 0 = flat out"
    )
    parser.add_argument("--down", type=float, default=2.0, help="seconds each part stays down")
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
    print(f"wardwatch fault benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", flush=True)
    print(
        f"{workload.readings:,} readings, {args.publishers} publishers at "
        + (f"{args.rate:g} messages/s" if args.rate else "full speed"),
        flush=True,
    )
    timeouts = harness.Timeouts(
        fault_s=600, publish_s=1800, drain_s=1800, stall_s=60, start_s=60, stop_s=60
    )
    with harness.workdir("wardwatch-bench-faults-") as workdir:
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
    print("\nRESULT: " + ("stored set == published set" if outcome.ok else "FAILED"))
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
