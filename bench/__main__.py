"""``make bench``: wardwatch's hot paths, each against a baseline measured in the same run.

Figures are printed, never asserted: performance targets live here, not in unit tests.
Record what you measured in docs/benchmarks.md with the command that produced it.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg
from prometheus_client import CollectorRegistry

from ingest import pipeline as pipe
from ingest.codec import decode_batch
from signals.news2 import news2_from_latest
from signals.vitals import Metric
from storage import assignments, migrate
from wardwatch import embedded

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """Best wall time of ``repeat`` runs: the least disturbed by the other core's work."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def messages(
    n: int, devices: int, samples_per_message: int, start: datetime = T0
) -> list[tuple[str, bytes, int]]:
    out = []
    received = int(time.time() * 1e6)
    for i in range(n):
        dev = f"bench-{i % devices:04d}"
        base = start + timedelta(minutes=(i // devices) * samples_per_message)
        samples = [
            {
                "ts": (base + timedelta(minutes=k)).isoformat(),
                "heart_rate": 60 + (i + k) % 40,
                "spo2": 95 + k % 4,
                "resp_rate": 14 + k % 6,
                "temperature": 36.8,
                "steps": k,
            }
            for k in range(samples_per_message)
        ]
        out.append((f"wardwatch/v1/devices/{dev}/vitals", orjson.dumps(samples), received))
    return out


def bench_codec(n: int, repeat: int) -> None:
    print("\n## codec: decode_batch against orjson.loads of the same payloads (baseline)")
    print(
        f"{'samples/msg':>12} {'msgs/s':>10} {'readings/s':>11} {'parse-only msgs/s':>18} "
        f"{'cost vs parse':>14}"
    )
    for spm in (1, 5, 60):
        msgs = messages(n // spm, 50, spm)
        decode_s = best_of(lambda m=msgs: decode_batch(m, max_future_us=10**15), repeat)
        parse_s = best_of(lambda m=msgs: [orjson.loads(p) for _, p, _ in m], repeat)
        rows = len(decode_batch(msgs, max_future_us=10**15).readings)
        print(
            f"{spm:>12} {len(msgs) / decode_s:>10,.0f} {rows / decode_s:>11,.0f} "
            f"{len(msgs) / parse_s:>18,.0f} {decode_s / parse_s:>13.1f}x"
        )


def bench_news2(repeat: int) -> None:
    print("\n## NEWS2 from latest values: per-patient scoring cost")
    now = int(T0.timestamp() * 1e6)
    latest = {
        Metric.HEART_RATE: (now, 92.0),
        Metric.SPO2: (now, 94.0),
        Metric.RESP_RATE: (now, 21.0),
        Metric.TEMPERATURE: (now, 38.2),
        Metric.SYSTOLIC_BP: (now - 10**9, 118.0),
    }
    n = 20_000
    spent = best_of(
        lambda: [
            news2_from_latest(latest, at_us=now, freshness_us=3_600_000_000) for _ in range(n)
        ],
        repeat,
    )
    print(f"news2_from_latest: {spent / n * 1e6:.1f} µs per patient ({n / spent:,.0f} scores/s)")


def bench_store(url: str, n: int, batch: int, start: datetime) -> None:
    print(
        f"\n## pipeline.process (decode → COPY → dedup → score → alerts → commit), "
        f"batches of {batch} messages, against a bare binary COPY of the same rows (baseline)"
    )
    devices = 200
    with psycopg.connect(url) as conn:
        for d in range(devices):
            assignments.enrol(
                conn,
                device_id=f"bench-{d:04d}",
                patient_id=f"bench-pt-{d:04d}",
                ward="bench",
                valid_from=T0 - timedelta(days=1),
            )
    msgs = messages(n, devices, 1, start)
    p = pipe.Pipeline(
        url,
        settings=pipe.Settings(max_future=timedelta(days=3650)),
        metrics=pipe.PipelineMetrics.create(CollectorRegistry()),
        clock=lambda: datetime.now(UTC),
    )
    start = time.perf_counter()
    stored = 0
    for i in range(0, n, batch):
        stored += p.process(msgs[i : i + batch]).stored
    spent = time.perf_counter() - start
    again = time.perf_counter()
    dup = sum(p.process(msgs[i : i + batch]).stored for i in range(0, n, batch))
    redelivery = time.perf_counter() - again
    p.close()

    decoded = decode_batch(msgs, max_future_us=10**15).readings
    rows = list(
        zip(
            decoded.device_id.tolist(),
            decoded.metric.tolist(),
            decoded.ts_us.tolist(),
            decoded.value.tolist(),
            strict=True,
        )
    )
    with psycopg.connect(url) as conn:
        conn.execute("drop table if exists copy_baseline")
        conn.execute(
            "create unlogged table copy_baseline"
            " (device_id text, metric int2, ts_us int8, value float8)"
        )
        start = time.perf_counter()
        with conn.cursor().copy("copy copy_baseline from stdin (format binary)") as copy:
            copy.set_types(["text", "int2", "int8", "float8"])
            for r in rows:
                copy.write_row(r)
        conn.commit()
        copy_s = time.perf_counter() - start
    print(
        f"pipeline: {n / spent:,.0f} msgs/s, {stored / spent:,.0f} readings/s stored "
        f"({stored:,} rows)"
    )
    print(f"redelivery of the same {n:,} messages: {n / redelivery:,.0f} msgs/s, {dup} stored")
    print(
        f"baseline bare COPY: {len(rows) / copy_s:,.0f} rows/s; pipeline costs "
        f"{spent / copy_s:.1f}x the bare COPY of its rows"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--messages", type=int, default=60_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"wardwatch benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    bench_codec(args.messages, args.repeat)
    bench_news2(args.repeat)
    base = Path(tempfile.mkdtemp(prefix="wardwatch-bench-", dir="/tmp"))
    try:
        with embedded.postgresql(base / "pg", durable=True) as url:
            migrate.upgrade(url)
            for run, batch in enumerate((200, 2000)):
                bench_store(url, args.messages // 2, batch, T0 + timedelta(days=30 * run))
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
