"""The run loop: batches in, each processed until it commits, then acknowledged.

One loop consumes any iterable of batches (the live MQTT queue, a recording, a test list). A
database outage retries the same batch; any other failure splits the batch to find the one
message that fails, quarantines it, and stores the rest, so ingest never stalls on one message.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator

import psycopg

from ingest.pipeline import BatchResult, Item, Pipeline

log = logging.getLogger(__name__)


def run(
    pipeline: Pipeline,
    batches: Iterable[list[Item]],
    *,
    on_committed: Callable[[int], None] = lambda _i: None,
    stop: threading.Event,
    retry_delays: Iterator[float] | None = None,
) -> BatchResult:
    """Process batches until they end or ``stop``; a database outage retries the same batch.

    ``on_committed(i)`` is called with the batch's index once it is durable, e.g. to acknowledge
    its messages to the broker. Nothing is acknowledged or dropped while the database is away.
    """
    total = BatchResult()
    for index, batch in enumerate(batches):
        delay = 0.5
        while True:
            try:
                result = _process_or_isolate(pipeline, batch)
                break
            except psycopg.OperationalError as exc:
                pipeline.close()
                if stop.is_set():
                    return total
                log.warning(
                    "database unavailable (%s); retrying batch in %.1f s", type(exc).__name__, delay
                )
                stop.wait(next(retry_delays) if retry_delays else delay)
                delay = min(delay * 2, 5.0)  # back within seconds once the database is
        on_committed(index)
        total.add(result)
        if stop.is_set():
            break
    return total


def _process_or_isolate(pipeline: Pipeline, batch: list[Item]) -> BatchResult:
    """Process a batch; if it fails for any reason but an outage, find the message that fails.

    One poisonous message (a bug, or a value the database refuses) must neither stop ingest nor
    take its batch-mates down with it: the others are stored, it is quarantined with a reason.
    """
    try:
        return pipeline.process(batch)
    except psycopg.OperationalError:
        raise
    except Exception:
        log.exception("a batch of %d messages failed; processing them one by one", len(batch))
        pipeline.close()
    total = BatchResult()
    for item in batch:
        try:
            total.add(pipeline.process([item]))
        except psycopg.OperationalError:
            raise
        except Exception as exc:
            pipeline.close()
            pipeline.quarantine_failed(item, exc)
            total.add(BatchResult(messages=1, quarantined=1))
    return total
