"""The derive jobs: vital signs a device did not send, from the raw waveform it did.

Every minute, for each assigned device that streams a waveform: breathing rate
(``derive_resp_rate``) and heart rate with pulse intervals (``derive_pulse``) from a PPG, NN
intervals and heart rate from an ECG (``derive_beats``), activity, wear and sustained inactivity
from a raw accelerometer (``derive_motion``). The signal processing is ``signals.derived`` and
``signals.motion``; this module loads each device's new waveform, runs it, and stores
``<device>/derived`` readings with the device's progress in one transaction, so a run that is
repeated, interrupted or shared with another worker neither drops nor repeats a reading
(docs/waveforms.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg

from signals.activity import (
    STILL_WINDOW_S,
    Calibration,
    CalibrationError,
    fit_calibration,
    still_window_means,
)
from signals.derived import (
    DERIVABLE_FS_HZ,
    ECG_SETTLE_US,
    PPG_SETTLE_US,
    EcgBeats,
    PpgBeats,
    derivable,
    ecg_beats,
    ppg_beats,
    resp_rate_minutes,
)
from signals.motion import CONTEXT_US, merge_still_means, motion_minutes
from signals.vitals import F64, I64, Metric, Readings
from signals.waveforms import WaveformChunk, WaveformKind, join_chunks
from storage import assignments, devices
from storage import motion as motion_store
from storage import readings as readings_store

Conn = psycopg.Connection[tuple[object, ...]]

log = logging.getLogger(__name__)
_DERIVE_LOCK = 0x64657276  # "derv": one worker derives a device's vital signs at a time


def _utc(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, UTC)


def _utc_offset_min(conn: Conn, device_id: str) -> int:
    """The device's latest UTC offset: derived readings carry it, so local days stay local."""
    row = conn.execute(
        "select utc_offset_min from readings where device_id = %s order by ts desc limit 1",
        (device_id,),
    ).fetchone()
    return 0 if row is None else int(row[0])  # type: ignore[call-overload]


@dataclass(frozen=True, slots=True)
class _Stream:
    """One device's stored waveform of one kind, due for a derive job (see ``_derive_each``)."""

    contact: assignments.Contact
    since: datetime  # where the last run settled (or the lookback), the new work starts after
    segments: Sequence[WaveformChunk]  # continuous stretches, with context before ``since``
    cut_us: int | None = None  # this run's load stopped here (CATCH_UP_SPAN): more may follow

    @property
    def since_us(self) -> int:
        return int(self.since.timestamp() * 1_000_000)

    def continues(self, segment: WaveformChunk, quiet_from_us: int) -> bool:
        """Whether more of ``segment`` may come: the device is still sending (its data ends
        after ``quiet_from_us``) or this run's load was cut where the segment reaches."""
        cut = self.cut_us is not None and segment.end_us >= self.cut_us
        return segment.end_us > quiet_from_us or cut


#: How far back a device's waveform is still derived. A phone that was out of reach uploads
#: what its watch buffered when it reconnects, hours late; a job that looked back an hour of
#: wall-clock time left every minute of such an upload underived, silently. Older than this is
#: left underived, with a log line saying so.
LATE_LIMIT = timedelta(hours=24)
#: At most this much of one device's waveform per job and tick: a day-late upload, a restart
#: after downtime or a device enrolled with history catches up over a few ticks, with bounded
#: memory and transactions, while the other devices get their turn.
CATCH_UP_SPAN = timedelta(hours=3)


def _derive_each(
    conn: Conn,
    *,
    now: datetime,
    what: str,
    kind: WaveformKind,
    lookback: timedelta,
    context: timedelta,
    work: Callable[[_Stream], int],
    catch_up: timedelta = CATCH_UP_SPAN,
) -> int:
    """Run ``work`` on each assigned device's ``kind`` waveform since its derive job ``what``
    last settled; return the sum of what ``work`` returned (readings stored).

    Shared by the derive jobs: only devices with a ``kind`` chunk past the job's progress are
    visited (``storage.devices.with_waveform_due``); one transaction per device (whatever the
    connection held open is committed first, so that a tick over many devices is many short
    transactions, not one long one holding every device's lock), under a per-device advisory lock
    (another worker's run skips the device), continuing from ``derived_progress`` (else from the
    device's enrolment) but at most ``lookback`` back, event time, however late the data came,
    with ``context`` before that loaded too and at most ``catch_up`` of data after it. ``work``
    runs inside that device's transaction, so its readings and its progress commit together, and
    a device whose work fails is rolled back and logged with the traceback while the others go
    on (a database error still ends the run: the tick is retried).
    """
    stored = 0
    contacts = assignments.current_contacts(conn, now)
    due = devices.with_waveform_due(conn, [c.device_id for c in contacts], kind, what)
    conn.commit()
    for c in contacts:
        if c.device_id not in due:
            continue
        try:
            with conn.transaction():
                stream = _load_stream(conn, c, now=now, what=what, kind=kind,
                                      lookback=lookback, context=context,
                                      catch_up=catch_up)  # fmt: skip
                if stream is not None:
                    stored += work(stream)
        except psycopg.Error:
            raise
        except Exception:
            log.exception("device %s: %s failed; the other devices go on", c.device_id, what)
    return stored


def _load_stream(
    conn: Conn,
    c: assignments.Contact,
    *,
    now: datetime,
    what: str,
    kind: WaveformKind,
    lookback: timedelta,
    context: timedelta,
    catch_up: timedelta,
) -> _Stream | None:
    """The device's waveform due for ``what``, or None (locked elsewhere, nothing new, or only
    rates no derivation accepts: said, and passed)."""
    got = conn.execute(
        "select pg_try_advisory_xact_lock(%s, hashtext(%s))",
        (_DERIVE_LOCK, f"{c.device_id}:{what}"),
    ).fetchone()
    if not (got and got[0]):
        return None
    done = devices.derived_until(conn, c.device_id, what)
    floor = max(now - lookback, c.valid_from)
    if done is not None and done < now - lookback:
        _say_too_late(conn, c.device_id, kind, what, done, floor)
    since = max(done, floor) if done is not None else floor
    first = devices.first_waveform_after(conn, c.device_id, kind, since, now)
    if first is None:
        return None
    # Skip a gap: resume at the first data after ``since``, and load at most ``catch_up``.
    end = min(now, max(since, first) + catch_up)
    chunks = devices.load_waveform(conn, c.device_id, kind, since - context, end)
    if not chunks:
        return None
    cut_us = int(end.timestamp() * 1_000_000) if end < now else None
    segments = join_chunks(chunks).segments
    usable = [seg for seg in segments if derivable(seg)]
    since_us = int(since.timestamp() * 1_000_000)
    odd = [seg for seg in segments if not derivable(seg) and seg.end_us > since_us]
    if odd:
        # Stored, but no derivation accepts its rate: say so and move past it, so that one odd
        # device neither stops the job for the others nor is retried forever.
        low, high = DERIVABLE_FS_HZ[kind]
        rates = ", ".join(f"{f:g}" for f in sorted({seg.fs_hz for seg in odd}))
        log.warning(
            "device %s: %s at %s Hz is stored but not derived (%s needs %g-%g Hz)",
            c.device_id, kind.value, rates, what, low, high,
        )  # fmt: skip
        if not usable:
            devices.set_derived_until(conn, c.device_id, what, _utc(max(seg.end_us for seg in odd)))
            return None
    return _Stream(c, since, usable, cut_us) if usable else None


def _say_too_late(
    conn: Conn, device_id: str, kind: WaveformKind, what: str, done: datetime, floor: datetime
) -> None:
    """A waveform stored but past ``LATE_LIMIT`` when first due: log it, once per gap."""
    older = conn.execute(
        "select count(*) from waveforms where device_id = %s and kind = %s"
        " and start_ts >= %s and start_ts < %s",
        (device_id, kind.value, done, floor),
    ).fetchone()
    if older and older[0]:
        devices.set_derived_until(conn, device_id, what, floor)  # passed: said once, not again
        log.warning(
            "device %s: %d %s chunks between %s and %s arrived or came due more than %s late;"
            " they are stored but not derived for %s",
            device_id, older[0], kind.value, done.isoformat(), floor.isoformat(), LATE_LIMIT,
            what,
        )  # fmt: skip


#: A device that sent a metric itself within this span is one that reports it: a watch that sends
#: its heart rate every 5 or 10 minutes must not get derived minutes between its own.
OWN_METRIC_SPAN = timedelta(hours=1)


def _own(conn: Conn, stream: _Stream, metric: Metric, now: datetime) -> bool:
    """Whether the stream's device reports ``metric`` itself (so it is not derived for it)."""
    since = min(stream.since, now - OWN_METRIC_SPAN)
    return devices.reports(conn, stream.contact.device_id, metric, since, now)


def _store(
    conn: Conn, stream: _Stream, now: datetime, parts: Sequence[tuple[Metric, I64, F64]]
) -> int:
    """Store derived readings for the stream's device and patient; return how many were new."""
    derived = _Derived(stream.contact.device_id, stream.contact.patient_id,
                       _utc_offset_min(conn, stream.contact.device_id), now)  # fmt: skip
    batch = Readings.concat([derived.readings(m, ts, v) for m, ts, v in parts if ts.size])
    return readings_store.insert_readings(conn, batch).stored if len(batch) else 0


def derive_resp_rate(
    conn: Conn,
    *,
    now: datetime,
    lookback: timedelta = LATE_LIMIT,
    catch_up: timedelta = CATCH_UP_SPAN,
) -> int:
    """Breathing rate from the PPG of each assigned device that sends a PPG but no breathing rate.

    One estimate per whole minute (signals.derived), stored under ``<device>/derived`` for the
    device's patient, where NEWS2 finds them like any other. A device that reports its own
    respiratory rate is left alone. Returns the readings stored.
    """

    def work(s: _Stream) -> int:
        if _own(conn, s, Metric.RESP_RATE, now):
            _pass_over(conn, s, "resp_rate")
            return 0
        found = [resp_rate_minutes(seg, after_us=s.since_us) for seg in s.segments]
        ts = np.concatenate([t for t, _ in found])
        if ts.size == 0:
            return 0
        rates = np.concatenate([r for _, r in found])
        stored = _store(conn, s, now, [(Metric.RESP_RATE, ts, rates)])
        devices.set_derived_until(conn, s.contact.device_id, "resp_rate", _utc(int(ts.max())))
        return stored

    return _derive_each(conn, now=now, what="resp_rate", kind=WaveformKind.PPG,
                        lookback=lookback, context=timedelta(minutes=2), work=work,
                        catch_up=catch_up)  # fmt: skip


def _settled_spans(
    stream: _Stream, quiet_from_us: int, settle_us: int
) -> list[tuple[WaveformChunk, int]]:
    """Each segment with new work and how far it is final: ``settle_us`` before its end while
    the device may still send more (its data ends after ``quiet_from_us``), else its end."""
    spans = []
    for segment in stream.segments:
        end = segment.end_us
        settled_to = end - settle_us if stream.continues(segment, quiet_from_us) else end
        if settled_to > stream.since_us:
            spans.append((segment, settled_to))
    return spans


def _pass_over(conn: Conn, stream: _Stream, what: str) -> None:
    """Mark the stream's data done without deriving it (the device reports the metric itself),
    so that retention (storage.retention) need not keep it waiting for this job."""
    end = max(segment.end_us for segment in stream.segments)
    if end > stream.since_us:
        devices.set_derived_until(conn, stream.contact.device_id, what, _utc(end))


#: A PPG segment that ended this long ago is finished: its last pulses are final.
PPG_QUIET = timedelta(minutes=2)


def derive_pulse(
    conn: Conn,
    *,
    now: datetime,
    lookback: timedelta = LATE_LIMIT,
    catch_up: timedelta = CATCH_UP_SPAN,
) -> int:
    """Heart rate per minute and pulse intervals from the PPG of each device that streams one.

    A watch or ring may leave the heart rate to the receiving end; NEWS2 needs it, and the
    nightly HRV needs beat-to-beat intervals. One rate per whole clock minute from the pulses in
    the PPG's acceptable 10-s windows, and the pulse intervals counted in it
    (``signals.derived.ppg_beats``), stored under ``<device>/derived``; a minute of motion gets
    neither. What the device reports itself (its heart rate, its RR intervals) is not derived.
    Each run continues from where the last settled, with 70 s before it as context. Returns the
    readings stored.
    """
    return _derive_beats(conn, now=now, lookback=lookback, what="pulse", kind=WaveformKind.PPG,
                         context=timedelta(seconds=70), quiet=PPG_QUIET,
                         settle_us=PPG_SETTLE_US, beats=ppg_beats, catch_up=catch_up)  # fmt: skip


#: An ECG segment that ended this long ago is finished (the device stopped sending): its last
#: beats are final and need no more waiting.
ECG_QUIET = timedelta(minutes=2)


#: Loaded before where the last run settled: an interval needs its first beat, and a beat's
#: shape is judged against the whole clock minute before its own (signals.derived), which this
#: always covers with 10 s to spare for the filters.
ECG_CONTEXT = timedelta(seconds=130)


def derive_beats(
    conn: Conn,
    *,
    now: datetime,
    lookback: timedelta = LATE_LIMIT,
    catch_up: timedelta = CATCH_UP_SPAN,
) -> int:
    """Beat-to-beat intervals and heart rate from each device's raw ECG (signals.derived).

    An ECG patch may stream the waveform and nothing else: its R peaks (``ecg_r_peaks``) give
    the RR intervals the nightly HRV needs and a heart rate per minute for NEWS2, stored under
    ``<device>/derived``. What the device reports itself (its own RR intervals, its own heart
    rate) is not derived again. Each run continues from where the last settled, with
    ``ECG_CONTEXT`` before it. The intervals stored are NN: those into and out of a beat of
    another shape (a ventricular ectopic) are left out. Returns the readings stored.
    """
    return _derive_beats(conn, now=now, lookback=lookback, what="beats", kind=WaveformKind.ECG,
                         context=ECG_CONTEXT, quiet=ECG_QUIET, settle_us=ECG_SETTLE_US,
                         beats=ecg_beats, catch_up=catch_up)  # fmt: skip


def _derive_beats(
    conn: Conn,
    *,
    now: datetime,
    lookback: timedelta,
    what: str,
    kind: WaveformKind,
    context: timedelta,
    quiet: timedelta,
    settle_us: int,
    beats: Callable[..., EcgBeats | PpgBeats],
    catch_up: timedelta = CATCH_UP_SPAN,
) -> int:
    """Heart rate per minute and beat intervals from a waveform, as ECG and PPG share it.

    Only what the device does not report itself (in the last ``OWN_METRIC_SPAN``); if it reports
    both, its stream is passed. Each segment is taken as far as it is final (``settle_us``
    before its end while the device may still send, all of it once it has been quiet for
    ``quiet``).
    """
    quiet_from = int((now - quiet).timestamp() * 1_000_000)

    def work(s: _Stream) -> int:
        wanted = [m for m in (Metric.HEART_RATE, Metric.RR_INTERVAL) if not _own(conn, s, m, now)]
        if not wanted:
            _pass_over(conn, s, what)
            return 0
        parts: list[tuple[Metric, I64, F64]] = []
        spans = _settled_spans(s, quiet_from, settle_us)
        for segment, settled_to in spans:
            b = beats(segment, after_us=s.since_us, settled_to_us=settled_to)
            found = {
                Metric.HEART_RATE: (b.hr_ts_us, b.hr_bpm),
                Metric.RR_INTERVAL: (b.rr_ts_us, b.rr_ms),
            }
            parts += [(m, *found[m]) for m in wanted]
        stored = _store(conn, s, now, parts)
        if spans:
            settled = _utc(max(t for _, t in spans))
            devices.set_derived_until(conn, s.contact.device_id, what, settled)
        return stored

    return _derive_each(conn, now=now, what=what, kind=kind, lookback=lookback,
                        context=context, work=work, catch_up=catch_up)  # fmt: skip


#: Motion minutes are derived this long after the data that settles them has arrived (a bout may
#: continue, a non-wear window extends past the minute): an hour behind real time, well within
#: the risk job's grace before it scores a day (jobs.RISK_DAY_GRACE).
MOTION_LAG = timedelta(microseconds=CONTEXT_US)


def derive_motion(
    conn: Conn,
    *,
    now: datetime,
    lookback: timedelta = LATE_LIMIT,
    catch_up: timedelta = CATCH_UP_SPAN,
) -> int:
    """Activity, wear and sustained inactivity per minute from each device's raw accelerometer.

    For devices that stream raw acceleration (signals.motion): each run continues from where the
    last stopped, with the hour before as context, and stores every minute whose labels are final
    (``MOTION_LAG`` behind the data, or the data's end when the device went quiet) under
    ``<device>/derived``: mean ENMO, the sustained-inactivity flag and, unless the device sends
    its own, the worn flag. Returns the readings stored.
    """
    quiet_from = int((now - MOTION_LAG).timestamp() * 1_000_000)

    def work(s: _Stream) -> int:
        device = s.contact.device_id
        calibration = _accel_calibration(conn, device, s.segments, now)
        minutes = []
        for segment in s.segments:
            m = motion_minutes(segment, calibration)
            # Final once the context after it has arrived, or where the data stops.
            end = segment.end_us
            settled_to = end - CONTEXT_US if s.continues(segment, quiet_from) else end
            m = m.take((m.end_us > s.since_us) & (m.end_us <= settled_to))
            if len(m):
                minutes.append(m)
        if not minutes:
            return 0
        columns = [(Metric.ACTIVITY_MG, "enmo_mg"), (Metric.INACTIVE, "inactive")]
        if not _own(conn, s, Metric.WORN, now):
            columns.append((Metric.WORN, "worn"))  # a device's own wear sensor knows better
        parts = [(metric, m.end_us, np.asarray(getattr(m, col), dtype=np.float64))
                 for m in minutes for metric, col in columns]  # fmt: skip
        stored = _store(conn, s, now, parts)
        last = max(int(m.end_us.max()) for m in minutes)
        devices.set_derived_until(conn, device, "motion", _utc(last))
        return stored

    return _derive_each(conn, now=now, what="motion", kind=WaveformKind.ACCEL, lookback=lookback,
                        context=MOTION_LAG + timedelta(minutes=1), work=work,
                        catch_up=catch_up)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Derived:
    """Where a derived reading is stored: ``<device>/derived``, for the device's patient."""

    device_id: str
    patient_id: str
    utc_offset_min: int
    now: datetime

    def readings(self, metric: Metric, ts_us: I64, values: F64) -> Readings:
        n = int(ts_us.size)
        return Readings(
            device_id=np.full(n, self.device_id + devices.DERIVED_SUFFIX, dtype=object),
            patient_id=np.full(n, self.patient_id, dtype=object),
            metric=np.full(n, int(metric), np.int16),
            ts_us=ts_us,
            value=np.asarray(values, dtype=np.float64),
            utc_offset_min=np.full(n, self.utc_offset_min, np.int16),
            received_us=np.full(n, int(self.now.timestamp() * 1_000_000), np.int64),
        )


def _accel_calibration(
    conn: Conn, device_id: str, segments: Sequence[WaveformChunk], now: datetime
) -> Calibration | None:
    """The device's calibration, refitted as still windows from new orientations accumulate.

    A fit needs still windows beyond ±0.3 g on every axis (signals.activity), which a wrist
    reaches over a day but rarely within an hour, so the windows are kept per device
    (storage.motion) and the last good fit serves until a new one succeeds. Before the first,
    ENMO carries the sensor's offset error; the log says so.
    """
    means, last_good = motion_store.load_calibration(conn, device_id)
    for segment in segments:
        if segment.fs_hz * STILL_WINDOW_S >= 2:
            means = merge_still_means(means, still_window_means(segment.values, segment.fs_hz))
    fitted: Calibration | None = None
    try:
        fitted = fit_calibration(means)
    except CalibrationError:
        if last_good is None:
            log.info("device %s: accelerometer not calibrated yet", device_id)
    motion_store.save_calibration(conn, device_id, means, fitted, now=now)
    return fitted or last_good
