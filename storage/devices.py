"""What devices send besides readings: waveform chunks, status reports and message numbers.

Writes run inside the caller's transaction (one batch, one transaction) and are idempotent: a
redelivered chunk, report or message number is stored once, by the table's key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Final, cast

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg.rows import class_row

from alerts.rules import DeviceHealth
from signals.vitals import Metric
from signals.waveforms import MAX_CHUNK_S, DeviceStatus, WaveformChunk, WaveformKind

__all__ = [
    "RESTART_JUMP",
    "find_gaps",
    "insert_statuses",
    "insert_waveforms",
    "latest_status",
    "load_waveform",
    "record_seqs",
]

Conn = psycopg.Connection[tuple[object, ...]]

#: A forward jump in a device's message numbers larger than this is taken for a restart or a reset
#: counter, not for loss: 10,000 messages is hours of one device's traffic, and a device silent
#: for that long is the "no data" rule's business.
RESTART_JUMP: Final = 10_000

_US = "(timestamptz 'epoch' + {} * interval '1 microsecond')"  # exact, unlike to_timestamp(float)
_EPOCH_US = "(extract(epoch from {}) * 1000000)::int8"  # numeric on PostgreSQL 14+: exact
_SAMPLE = np.dtype("<f4")  # the bytea layout, whatever this machine's byte order


#: Which derive jobs (``wardwatch.derive``, their ``derived_progress.what``) read which kind of
#: waveform: retention keeps a chunk until all of them have passed it, and a chunk stored behind
#: one's progress rewinds it.
DERIVE_JOBS: Mapping[WaveformKind, tuple[str, ...]] = MappingProxyType(
    {
        WaveformKind.PPG: ("resp_rate", "pulse"),
        WaveformKind.ECG: ("beats",),
        WaveformKind.ACCEL: ("motion",),
    }
)
#: ``DERIVE_JOBS`` as SQL rows (kind, what), from the constant above (no outside input).
DERIVE_JOBS_SQL = ", ".join(f"('{k.value}', '{w}')" for k, ws in DERIVE_JOBS.items() for w in ws)


def insert_waveforms(conn: Conn, chunks: Iterable[WaveformChunk]) -> int:
    """Store chunks inside the caller's transaction; return how many were new.

    COPY into a temporary table, then one ``INSERT ... ON CONFLICT DO NOTHING``: redelivered
    chunks (same device, kind and start) are stored once, the first one kept. Every chunk must
    carry its ``received_us`` (a joined segment, which has none, is not stored).

    A new chunk that starts before where a derive job of its kind has got to for the device (it
    came out of order: a retry, a second path) moves that job back to the chunk's start, in the
    same statement, so the job derives it on its next run; what it had already stored stays (a
    derived reading is stored once), and the minutes the chunk completes are added.
    """
    chunks = list(chunks)
    if any(c.received_us is None for c in chunks):
        raise ValueError("a chunk to store needs its received_us")
    rows = [
        (
            c.device_id,
            c.kind.value,
            c.start_us,
            c.fs_hz,
            c.n_samples,
            c.kind.channels,
            c.unit,
            # C order, each sample's x, y, z together; converted only on a big-endian host.
            np.ascontiguousarray(c.values, dtype=_SAMPLE).tobytes(),
            c.received_us,
            c.seq,
        )
        for c in chunks
    ]
    if not rows:
        return 0
    # Per connection, no index, times as integer µs: COPY needs no datetime per row.
    conn.execute(
        "create temp table if not exists waveforms_in (device_id text, kind text, start_us int8,"
        " fs_hz float8, n_samples int4, channels int2, unit text, data bytea, received_us int8,"
        " seq int8) on commit delete rows"
    )
    with conn.cursor() as cur:
        with cur.copy("copy waveforms_in from stdin (format binary)") as copy:
            copy.set_types(
                ["text", "text", "int8", "float8", "int4", "int2", "text", "bytea", "int8", "int8"]
            )
            for row in rows:
                copy.write_row(row)
        counted = cur.execute(
            "with new as (insert into waveforms (device_id, kind, start_ts, fs_hz, n_samples,"
            f" channels, unit, data, received_at, seq) select device_id, kind,"
            f" {_US.format('start_us')}, fs_hz, n_samples, channels, unit, data,"
            f" {_US.format('received_us')}, seq from waveforms_in"
            " on conflict do nothing returning device_id, kind, start_ts),"
            f" jobs (kind, what) as (values {DERIVE_JOBS_SQL}),"
            " rewound as (update derived_progress p set until_ts = n.first_ts"
            "   from (select device_id, kind, min(start_ts) as first_ts from new group by 1, 2) n"
            "   join jobs j on j.kind = n.kind"
            "   where p.device_id = n.device_id and p.what = j.what and p.until_ts > n.first_ts)"
            " select count(*) from new"
        ).fetchone()
        cur.execute("truncate waveforms_in")
    return int(cast(tuple[int], counted)[0]) if counted else 0


def load_waveform(
    conn: Conn, device_id: str, kind: WaveformKind, start: datetime, end: datetime
) -> list[WaveformChunk]:
    """The device's chunks of ``kind`` that overlap ``[start, end)``, in time order, whole.

    Chunks are returned whole, not cut at ``start`` and ``end``: a filter wants the samples just
    outside its window too. ``signals.waveforms.join_chunks`` makes them one array per
    continuous stretch. The arrays are read-only views of the stored bytes.
    """
    with conn.cursor() as cur:
        rows = cur.execute(
            f"select {_EPOCH_US.format('start_ts')}, fs_hz, n_samples, unit, data, seq,"
            f" {_EPOCH_US.format('received_at')} from waveforms"
            " where device_id = %(device)s and kind = %(kind)s"
            # No chunk is longer than MAX_CHUNK_S: this bound keeps the scan on the key's range.
            "   and start_ts > %(start)s - %(longest)s * interval '1 second'"
            "   and start_ts < %(end)s"
            "   and start_ts + n_samples / fs_hz * interval '1 second' > %(start)s"
            " order by start_ts",
            {
                "device": device_id,
                "kind": kind.value,
                "start": start,
                "end": end,
                "longest": MAX_CHUNK_S,
            },
        ).fetchall()
    chunks = []
    for start_us, fs_hz, n, unit, data, seq, received_us in rows:
        values = np.frombuffer(cast(bytes, data), dtype=_SAMPLE).astype(np.float32, copy=False)
        if kind.channels > 1:
            values = values.reshape(cast(int, n), kind.channels)
        chunks.append(
            WaveformChunk(
                device_id,
                kind,
                cast(int, start_us),
                cast(float, fs_hz),
                values,
                cast(str, unit),
                cast("int | None", seq),
                cast(int, received_us),
            )
        )
    return chunks


def insert_statuses(conn: Conn, statuses: Sequence[DeviceStatus]) -> int:
    """Store status reports inside the caller's transaction; return how many were new.

    One ``INSERT ... SELECT FROM unnest(...)`` rather than COPY: reports are a few per device per
    hour, so one statement with arrays is one round trip and needs no staging table.
    """
    if not statuses:
        return 0
    with conn.cursor() as cur:
        cur.execute(
            "insert into device_status (device_id, ts, battery_pct, worn, firmware,"
            " clock_offset_s, seq, received_at)"
            f" select d, {_US.format('t')}, b, w, f, c, s, {_US.format('r')}"
            " from unnest(%s::text[], %s::int8[], %s::float4[], %s::bool[], %s::text[],"
            " %s::float4[], %s::int8[], %s::int8[]) u(d, t, b, w, f, c, s, r)"
            " on conflict do nothing",
            (
                [s.device_id for s in statuses],
                [s.ts_us for s in statuses],
                [s.battery_pct for s in statuses],
                [s.worn for s in statuses],
                [s.firmware for s in statuses],
                [s.clock_offset_s for s in statuses],
                [s.seq for s in statuses],
                [s.received_us for s in statuses],
            ),
        )
        return cur.rowcount


def latest_status(conn: Conn, device_ids: Iterable[str]) -> dict[str, DeviceStatus]:
    """Each device's latest report by event time; devices that never reported are left out.

    The latest report is taken whole: a field it did not carry is None even if an earlier report
    had it (battery and worn also live in readings, latest value per metric).
    """
    ids = list(device_ids)
    if not ids:
        return {}
    with conn.cursor(row_factory=class_row(DeviceStatus)) as cur:
        rows = cur.execute(
            "select s.device_id, "
            f" {_EPOCH_US.format('s.ts')} as ts_us, s.battery_pct::float8 as battery_pct, s.worn,"
            " s.firmware, s.clock_offset_s::float8 as clock_offset_s, s.seq,"
            f" {_EPOCH_US.format('s.received_at')} as received_us"
            " from unnest(%s::text[]) d(id) cross join lateral (select * from device_status"
            "   where device_id = d.id order by ts desc limit 1) s",
            (ids,),
        ).fetchall()
    return {s.device_id: s for s in rows}


def record_seqs(conn: Conn, rows: Sequence[tuple[str, str, int, datetime]]) -> None:
    """Record ``(device_id, stream, seq, received_at)`` of numbered messages; repeats ignored.

    A redelivered message keeps the receipt time of its first delivery.
    """
    if not rows:
        return
    device, stream, seq, received = (list(column) for column in zip(*rows, strict=True))
    conn.execute(
        "insert into message_seq (device_id, stream, seq, received_at)"
        " select * from unnest(%s::text[], %s::text[], %s::int8[], %s::timestamptz[])"
        " on conflict do nothing",
        (device, stream, seq, received),
    )


def find_gaps(
    conn: Conn, *, since: datetime, grace_until: datetime
) -> list[tuple[str, str, int, int]]:
    """Return ``(device_id, stream, first_missing, last_missing)`` of each run of lost messages.

    Looks at the message numbers received since ``since``, in number order per device and stream.
    A hole between two numbers is a gap only if

    - the number after it was received before ``grace_until`` (set it a little before now):
      until then a late, reordered message may still fill the hole;
    - it spans at most ``RESTART_JUMP`` numbers: a bigger jump is a restart or a reset counter;
    - the number after it arrived no earlier than the number before it. Otherwise the count went
      *down* in arrival order across the hole: a device that restarted and began again at 0, its
      new low numbers arriving after its old high ones.

    A gap whose missing messages were all rejected is still a gap: nothing of them was stored.
    """
    with conn.cursor() as cur:
        rows = cur.execute(
            "select device_id, stream, seq + 1, next_seq - 1 from ("
            "  select device_id, stream, seq, received_at,"
            "   lead(seq) over w as next_seq, lead(received_at) over w as next_received_at"
            "  from message_seq where received_at >= %(since)s"
            "  window w as (partition by device_id, stream order by seq)"
            " ) s"
            " where next_seq > seq + 1 and next_seq - seq <= %(jump)s"
            "   and next_received_at >= received_at and next_received_at < %(grace_until)s"
            " order by device_id, stream, seq",
            {"since": since, "grace_until": grace_until, "jump": RESTART_JUMP},
        ).fetchall()
    return [
        (cast(str, d), cast(str, s), cast(int, first), cast(int, last))
        for d, s, first, last in rows
    ]


def health(conn: Conn, device_ids: Iterable[str], *, now: datetime) -> dict[str, DeviceHealth]:
    """What each device last said about itself, for the technical rules (alerts.rules).

    Battery and worn come from readings (both the vitals and the status topics write them);
    the clock offset from the latest status report; refusals from the quarantine. Off-body time
    runs from the first "off" after the last "on" within a day, by the device's own clock.

    A device with no wear sensor of its own that streams raw acceleration has its wear judged
    from the motion (``<device>/derived`` worn minutes, wardwatch.derive.derive_motion): then
    the newer of the two says whether it is worn, and its off-body time runs on the derived
    minutes' own timeline (they settle an hour behind the data, so a device put down for 30 min
    is reported about an hour later; the device's other, live, readings must not stretch it).
    """
    ids = list(device_ids)
    if not ids:
        return {}
    params = {
        "ids": ids,
        "worn": int(Metric.WORN),
        "battery": int(Metric.BATTERY),
        "any": [int(Metric.WORN), int(Metric.BATTERY), int(Metric.HEART_RATE)],
        "day": now - timedelta(days=1),
        "hour": now - timedelta(hours=1),
    }
    rows = conn.execute(
        "select d.id, b.value, w.value, w.ts, " + _OFF_SINCE_SQL + ","
        " (select max(ts) from readings where device_id = d.id and ts > %(day)s"
        "   and metric = any(%(any)s)),"
        " (select clock_offset_s::float8 from device_status where device_id = d.id"
        "   and ts > %(day)s order by ts desc limit 1),"
        " (select count(*) from quarantine where device_id = d.id"
        "   and reason = 'future timestamp' and received_at > %(hour)s)"
        " from unnest(%(ids)s::text[]) d(id)"
        " left join lateral (select value from readings where device_id = d.id"
        "   and metric = %(battery)s order by ts desc limit 1) b on true" + _LATEST_WORN_SQL,
        params,
    ).fetchall()
    derived = {
        str(r[0]).removesuffix(DERIVED_SUFFIX): r[1:]
        for r in conn.execute(
            "select d.id, w.value, w.ts, "
            + _OFF_SINCE_SQL
            + " from unnest(%(ids)s::text[]) d(id)"
            + _LATEST_WORN_SQL,
            params | {"ids": [d + DERIVED_SUFFIX for d in ids]},
        ).fetchall()
    }
    out = {}
    for row in rows:
        device, battery, worn, worn_ts, off_since, latest, offset, refused = row
        d_worn, d_worn_ts, d_off_since = derived[str(device)]
        # The derived minutes speak when they are newer than the device's own wear reports.
        inferred = d_worn_ts is not None and (worn_ts is None or d_worn_ts > worn_ts)  # type: ignore[operator]
        if inferred:  # on their own timeline: live readings must not stretch the off time
            worn, worn_ts, off_since, latest = d_worn, d_worn_ts, d_off_since, d_worn_ts
        off = worn is not None and float(worn) < 0.5  # type: ignore[arg-type]
        out[str(device)] = DeviceHealth(
            battery_pct=None if battery is None else float(battery),  # type: ignore[arg-type]
            off_body_since=(off_since or worn_ts) if off else None,  # type: ignore[arg-type]
            latest_at=latest,  # type: ignore[arg-type]
            clock_offset_s=None if offset is None else float(offset),  # type: ignore[arg-type]
            future_refused=int(refused),  # type: ignore[call-overload]
            off_body_inferred=off and inferred,
        )
    return out


#: How far behind its data a heart-rate derive job may settle (beats, pulse: a minute or two).
HEART_DERIVE_LAG = timedelta(minutes=5)
#: The derive job that finds heartbeats in each kind of waveform.
_HEART_JOB = {WaveformKind.ECG: "beats", WaveformKind.PPG: "pulse"}


def unusable_heart_signal(
    conn: Conn, device_ids: Iterable[str], *, now: datetime, span: timedelta
) -> dict[str, WaveformKind]:
    """Devices streaming an ECG or PPG that gave no heart rate over its last ``span``.

    Electrodes that came off a chest patch, or a watch lying on a table, keep streaming a
    waveform, so the device is not silent ("no data" stays quiet), yet no beat can be found in
    it: the heart rate is simply not measured, and nobody is told. Counted only when the
    waveform covers at least 80 % of the span, ended within it, was derived to within
    ``HEART_DERIVE_LAG`` of its end (a job catching up has not looked yet), and neither the
    device nor the derivation stored a heart rate in it.
    """
    ids = list(device_ids)
    if not ids:
        return {}
    rows = conn.execute(
        "select d.id, k.kind from unnest(%(ids)s::text[]) d(id)"
        " cross join (values ('ecg', %(ecg_job)s), ('ppg', %(ppg_job)s)) k(kind, job)"
        " join lateral (select start_ts + n_samples / fs_hz * interval '1 second' as last_end"
        "   from waveforms where device_id = d.id and kind = k.kind"
        "   order by start_ts desc limit 1) e on e.last_end > %(now)s - %(span)s"
        " where (select coalesce(sum(n_samples / fs_hz), 0) from waveforms w"
        "     where w.device_id = d.id and w.kind = k.kind"
        "     and w.start_ts >= e.last_end - %(span)s) >= 0.8 * %(span_s)s"
        " and exists (select 1 from derived_progress p where p.device_id = d.id"
        "     and p.what = k.job and p.until_ts >= e.last_end - %(lag)s)"
        " and not exists (select 1 from readings r where r.device_id = d.id"
        "     and r.metric = %(hr)s and r.ts > e.last_end - %(span)s)"
        " and not exists (select 1 from readings r where r.device_id = d.id || %(derived)s"
        "     and r.metric = %(hr)s and r.ts > e.last_end - %(span)s)",
        {
            "ids": ids,
            "ecg_job": _HEART_JOB[WaveformKind.ECG],
            "ppg_job": _HEART_JOB[WaveformKind.PPG],
            "now": now,
            "span": span,
            "span_s": span.total_seconds(),
            "lag": HEART_DERIVE_LAG,
            "hr": int(Metric.HEART_RATE),
            "derived": DERIVED_SUFFIX,
        },
    ).fetchall()
    return {str(device): WaveformKind(kind) for device, kind in rows}


#: The device's latest wear report (``w.value``, ``w.ts``), joined to ``unnest(...) d(id)``.
_LATEST_WORN_SQL = (
    " left join lateral (select value, ts from readings where device_id = d.id"
    "   and metric = %(worn)s order by ts desc limit 1) w on true"
)
#: When the device went off the body: its first wear report after the last "on" within a day.
_OFF_SINCE_SQL = (
    "(select min(ts) from readings where device_id = d.id and metric = %(worn)s"
    "   and ts > coalesce((select max(ts) from readings where device_id = d.id"
    "     and metric = %(worn)s and value >= 0.5 and ts > %(day)s), %(day)s))"
)


#: Readings derived from a device's waveform are stored under this suffix of its id, so their
#: source stays visible and "does the device report this itself?" stays answerable.
DERIVED_SUFFIX = "/derived"


def with_waveform_due(
    conn: Conn, device_ids: Sequence[str], kind: WaveformKind, what: str
) -> set[str]:
    """Those of ``device_ids`` with a ``kind`` chunk ending after derive job ``what``'s progress
    (any chunk, for a device the job has not started): the only devices the job can have work
    for. One statement, an index probe per device, instead of a transaction and three queries
    per enrolled device per job and tick: most devices in a ward send no waveform at all."""
    rows = conn.execute(
        "select c.device_id from unnest(%(ids)s::text[]) as c(device_id)"
        " left join derived_progress p on p.device_id = c.device_id and p.what = %(what)s"
        " where exists (select 1 from waveforms w where w.device_id = c.device_id"
        " and w.kind = %(kind)s"
        " and w.start_ts > coalesce(p.until_ts, '-infinity') - %(longest)s * interval '1 second'"
        " and w.start_ts + w.n_samples / w.fs_hz * interval '1 second'"
        " > coalesce(p.until_ts, '-infinity'))",
        {"ids": list(device_ids), "what": what, "kind": kind.value, "longest": MAX_CHUNK_S},
    ).fetchall()
    return {str(r[0]) for r in rows}


def first_waveform_after(
    conn: Conn, device_id: str, kind: WaveformKind, after: datetime, before: datetime
) -> datetime | None:
    """Start of the device's first chunk of ``kind`` that ends after ``after`` and starts before
    ``before``: where derivation resumes when the data has a gap longer than one load."""
    row = conn.execute(
        "select min(start_ts) from waveforms where device_id = %(device)s and kind = %(kind)s"
        " and start_ts > %(after)s - %(longest)s * interval '1 second' and start_ts < %(before)s"
        " and start_ts + n_samples / fs_hz * interval '1 second' > %(after)s",
        {"device": device_id, "kind": kind.value, "after": after, "before": before,
         "longest": MAX_CHUNK_S},
    ).fetchone()  # fmt: skip
    return None if row is None else row[0]  # type: ignore[return-value]


def derived_until(conn: Conn, device_id: str, what: str) -> datetime | None:
    row = conn.execute(
        "select until_ts from derived_progress where device_id = %s and what = %s",
        (device_id, what),
    ).fetchone()
    return None if row is None else row[0]  # type: ignore[return-value]


def set_derived_until(conn: Conn, device_id: str, what: str, until: datetime) -> None:
    conn.execute(
        "insert into derived_progress (device_id, what, until_ts) values (%s, %s, %s)"
        " on conflict (device_id, what) do update"
        " set until_ts = greatest(derived_progress.until_ts, excluded.until_ts)",
        (device_id, what, until),
    )


def reports(conn: Conn, device_id: str, metric: Metric, since: datetime, until: datetime) -> bool:
    """Whether the device itself sent ``metric`` in ``[since, until)`` (derived rows excluded)."""
    row = conn.execute(
        "select exists (select 1 from readings where device_id = %s and metric = %s"
        " and ts >= %s and ts < %s)",
        (device_id, int(metric), since, until),
    ).fetchone()
    return bool(row and row[0])


def recent_series(
    conn: Conn, device_id: str, metrics: Sequence[Metric], *, span: timedelta
) -> dict[Metric, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]:
    """Each metric's readings over the ``span`` before the device's latest one (event time)."""
    codes = [int(m) for m in metrics]
    rows = conn.execute(
        f"select metric, {_EPOCH_US.format('ts')}, value from readings"
        " where device_id = %(d)s and metric = any(%(m)s) and ts > (select max(ts)"
        "   from readings where device_id = %(d)s and metric = any(%(m)s)) - %(span)s"
        " order by ts",
        {"d": device_id, "m": codes, "span": span},
    ).fetchall()
    out: dict[Metric, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = {}
    for m in metrics:
        mine = [(t, v) for code, t, v in rows if code == int(m)]
        out[m] = (
            np.array([t for t, _ in mine], dtype=np.int64),
            np.array([v for _, v in mine], dtype=np.float64),
        )
    return out


Series = dict[Metric, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]


def recent_series_many(
    conn: Conn, device_ids: Iterable[str], metrics: Sequence[Metric], *, span: timedelta
) -> dict[str, Series]:
    """``recent_series`` of many devices in one query: what it returns for each device.

    Each device's readings of ``metrics`` over the ``span`` before that device's own latest one
    (event time), in time order, as one pair of arrays per metric; every device asked for is in
    the result, and every metric, empty where there was nothing. The latest reading is found per
    metric on the key's index (one short backward scan each) and each metric's rows are
    aggregated into arrays in the database, so the rows cross as a few arrays per device.
    """
    ids = list(dict.fromkeys(device_ids))
    codes = list(dict.fromkeys(int(m) for m in metrics))
    out: dict[str, Series] = {
        d: {m: (np.empty(0, np.int64), np.empty(0, np.float64)) for m in metrics} for d in ids
    }
    if not ids or not codes:
        return out
    with conn.cursor(binary=True) as cur:
        # The planner cannot know that an hour is a sliver of each device's rows and, past a few
        # days of history, JIT-compiles this cheap query (~0.1 s, three times the query on a ward
        # of 200). Off for this statement only; the setting is put back as it was.
        jit = cur.execute("select current_setting('jit'), set_config('jit', 'off', true)")
        was = cast(tuple[str, str], jit.fetchone())[0]
        rows = cur.execute(
            "select d.id, m.code, s.ts, s.value from unnest(%(d)s::text[]) d(id)"
            " cross join lateral (select max(x.ts) as last from unnest(%(m)s::int2[]) l(code)"
            "   cross join lateral (select max(ts) as ts from readings"
            "     where device_id = d.id and metric = l.code) x) latest"
            " cross join unnest(%(m)s::int2[]) m(code)"
            f" cross join lateral (select array_agg({_EPOCH_US.format('ts')} order by ts) as ts,"
            "   array_agg(value order by ts) as value from readings"
            "   where device_id = d.id and metric = m.code and ts > latest.last - %(span)s) s"
            " where latest.last is not null and s.ts is not null",
            {"d": ids, "m": codes, "span": span},
        ).fetchall()
        cur.execute("select set_config('jit', %s, true)", (was,))
    for device, code, ts, values in rows:
        out[cast(str, device)][Metric(cast(int, code))] = (
            np.array(ts, dtype=np.int64),
            np.array(values, dtype=np.float64),
        )
    return out


def set_sensor_faults(
    conn: Conn, patient_id: str, device_id: str, faults: Mapping[Metric, str], *, now: datetime
) -> None:
    """Record the faults ``device_id`` shows for the patient (metric → label); clear the others
    *of this device*: a patient wearing a watch and an oximeter keeps the oximeter's stuck SpO2
    when the watch is checked after it."""
    conn.execute(
        "delete from sensor_faults where patient_id = %s and device_id = %s"
        " and not (metric = any(%s))",
        (patient_id, device_id, [int(m) for m in faults]),
    )
    for metric, label in faults.items():
        conn.execute(
            "insert into sensor_faults (patient_id, metric, device_id, label, since)"
            " values (%s, %s, %s, %s, %s) on conflict (patient_id, metric) do update"
            " set label = excluded.label, device_id = excluded.device_id,"
            " since = case when sensor_faults.label = excluded.label"
            "   then sensor_faults.since else excluded.since end",
            (patient_id, int(metric), device_id, label, now),
        )


def clear_sensor_faults_except(conn: Conn, current: Iterable[tuple[str, str]]) -> int:
    """Drop faults of devices no longer assigned to the patient: a returned oximeter's frozen
    SpO2 must not keep the patient's SpO2 "not measured". ``current``: (patient, device) pairs."""
    pairs = list(current)
    return conn.execute(
        "delete from sensor_faults where (patient_id, device_id) not in"
        " (select * from unnest(%s::text[], %s::text[]))",
        ([p for p, _ in pairs], [d for _, d in pairs]),
    ).rowcount


def sensor_faults(conn: Conn, patient_ids: Iterable[str]) -> dict[str, dict[Metric, str]]:
    """Each patient's sensors currently found faulty: metric → 'stuck' or 'noisy'."""
    out: dict[str, dict[Metric, str]] = {}
    for pid, code, label in conn.execute(
        "select patient_id, metric, label from sensor_faults where patient_id = any(%s)",
        (list(patient_ids),),
    ).fetchall():
        out.setdefault(str(pid), {})[Metric(int(code))] = str(label)  # type: ignore[call-overload]
    return out
