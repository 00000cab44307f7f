"""Retention: raw waveforms and message numbers are kept only as long as they are needed.

A 25 Hz PPG is 8.6 MB a day per device and a 25 Hz accelerometer 26 MB: a ward of a hundred
patients fills a disk within weeks if nothing is ever deleted. What wardwatch needs from them is
short-lived: the derive jobs turn each minute into readings within an hour, and the message-gap
check looks back an hour. Readings, scores and alerts (the clinical record) are never pruned here.

Deletion is in batches (one short transaction each), oldest first, so a first run over months of
backlog neither holds locks for minutes nor bloats one transaction. A PPG or accelerometer chunk
that one of its derive jobs has not yet passed is kept whatever its age: if a job was down, its
work is still there when it comes back. A job whose device reports the metric itself marks the
data passed without deriving it, so it never holds a chunk back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from storage.devices import DERIVE_JOBS_SQL

Conn = psycopg.Connection[tuple[object, ...]]

_PRUNE_WAVEFORMS = """
with doomed as (
    select w.device_id, w.kind, w.start_ts from waveforms w
    -- which jobs consume which kind (storage.devices.DERIVE_JOBS): the slowest of them decides
    left join lateral (
        select min(p.until_ts) as until_ts from derived_progress p
        where p.device_id = w.device_id
          and (w.kind, p.what) in (values {jobs})
    ) d on true
    where w.start_ts < %(before)s
      -- a chunk its derive jobs have not passed stays (no progress row: never derived, e.g. a
      -- kind no job reads, so age alone decides)
      and (d.until_ts is null or w.start_ts + w.n_samples / w.fs_hz * interval '1 second'
                                 <= d.until_ts)
    order by w.start_ts
    limit %(batch)s
)
delete from waveforms w using doomed
where w.device_id = doomed.device_id and w.kind = doomed.kind and w.start_ts = doomed.start_ts
""".replace("{jobs}", DERIVE_JOBS_SQL)

_PRUNE_SEQ = """
with doomed as (
    select device_id, stream, seq from message_seq
    where received_at < %(before)s order by received_at limit %(batch)s
)
delete from message_seq m using doomed
where m.device_id = doomed.device_id and m.stream = doomed.stream and m.seq = doomed.seq
"""


@dataclass(frozen=True, slots=True)
class Pruned:
    waveforms: int
    message_seq: int


def prune(
    conn: Conn,
    *,
    waveforms_before: datetime,
    seq_before: datetime,
    batch: int = 5000,
    max_batches: int = 200,
) -> Pruned:
    """Delete waveform chunks that start before ``waveforms_before`` (and are derived) and
    message numbers received before ``seq_before``; at most ``batch × max_batches`` rows of
    each per call, so one tick stays short and the next continues."""
    counts = []
    for sql, before in ((_PRUNE_WAVEFORMS, waveforms_before), (_PRUNE_SEQ, seq_before)):
        total = 0
        for _ in range(max_batches):
            with conn.transaction():
                n = conn.execute(sql, {"before": before, "batch": batch}).rowcount
            total += max(n, 0)
            if n < batch:
                break
        counts.append(total)
    return Pruned(waveforms=counts[0], message_seq=counts[1])
