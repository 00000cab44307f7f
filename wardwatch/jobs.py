"""The periodic work APScheduler ticks: escalation, the "no data" rule, sending notifications.

Each job is a plain function of a connection and ``now``; the state lives in PostgreSQL, so a job
that runs twice, or after a restart, neither drops nor repeats anything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
from prometheus_client import CollectorRegistry, Counter

from alerts import content, grouping
from alerts.grouping import DEFAULT_GROUP_WAIT, RetryPolicy
from alerts.model import Condition, Rule
from alerts.notify import Channel, Notice, NotifyError
from alerts.policy import Policy, WardPolicy
from alerts.rules import (
    SENSOR_FAULTS,
    SENSOR_METRICS,
    battery_condition,
    battery_critical_condition,
    clock_skew_condition,
    gap_condition,
    no_data_condition,
    not_worn_condition,
    risk_condition,
    sensor_condition,
)
from signals.activity import (
    STILL_WINDOW_S,
    Calibration,
    CalibrationError,
    fit_calibration,
    still_window_means,
)
from signals.daily import daily_features, day_of, day_window
from signals.derived import (
    DERIVABLE_FS_HZ,
    ECG_SETTLE_US,
    PPG_SETTLE_US,
    derivable,
    ecg_beats,
    ppg_beats,
    resp_rate_minutes,
)
from signals.motion import CONTEXT_US, merge_still_means, motion_minutes
from signals.quality import Quality, label_windows
from signals.risk import PatientRisk
from signals.vitals import F64, I64, Metric, Readings
from signals.waveforms import WaveformChunk, WaveformKind, join_chunks
from storage import alerts as alert_store
from storage import assignments, devices, retention
from storage import motion as motion_store
from storage import policy as policy_store
from storage import readings as readings_store
from storage import risk as risk_store

log = logging.getLogger(__name__)
_SILENCE_LOCK = 0x6E6F6461  # "noda": serialises the "no data" check across workers
_GAP_LOCK = 0x67617073  # "gaps"
_DEVICE_LOCK = 0x64657663  # "devc"
_SENSOR_LOCK = 0x73656E73  # "sens"
#: How much of each vital sign a sensor check looks at: an hour, the stuck-run length for HR.
SENSOR_SPAN = timedelta(hours=1)
_DERIVE_LOCK = 0x64657276  # "derv": one worker derives a device's vital signs at a time
_RISK_LOCK = 0x7269736B  # "risk": with the patient's hash, one worker scores a patient at a time
#: A day is scored once the patient's readings have reached this far past its end (event time),
#: so that a watch syncing its buffer an hour late still lands in the right day.
RISK_DAY_GRACE = timedelta(hours=2)
#: Days scored per patient per tick: a patient enrolled with weeks of history catches up over a
#: few ticks instead of holding one transaction for minutes.
RISK_DAYS_PER_TICK = 7
Conn = psycopg.Connection[tuple[object, ...]]


def escalate(conn: Conn, *, now: datetime, policy: Policy) -> int:
    with conn.transaction():
        return len(alert_store.escalate_due(conn, now=now, policy=policy))


def check_silence(
    conn: Conn, *, now: datetime, policy: Policy, raised: Counter | None = None
) -> int:
    """Open, or resolve, the "no data" alert of every currently assigned device."""

    def condition(c: assignments.Contact) -> Condition | None:
        return no_data_condition(
            c.patient_id,
            c.device_id,
            last_received=c.last_received_at,
            enrolled_at=c.valid_from,
            now=now,
            silent_after=policy.for_ward(c.ward).thresholds.no_data_silent_after,
        )

    return _device_rules(conn, [(Rule.NO_DATA, condition)], _SILENCE_LOCK, now, policy, raised)


def check_gaps(conn: Conn, *, now: datetime, policy: Policy, raised: Counter | None = None) -> int:
    """Raise, or resolve, the "message gap" alert of every assigned device from its seq numbers.

    A gap counts once the message after it has waited the grace for reordered ones to arrive;
    it keeps the alert open while it lies within the window (the default ward's thresholds:
    one query finds every device's gaps).
    """
    limits = policy.default.thresholds
    found: dict[str, list[tuple[str, int, int]]] = {}
    with conn.transaction():
        for device, stream, first, last in devices.find_gaps(
            conn,
            since=now - limits.message_gap_window,
            grace_until=now - limits.message_gap_grace,
        ):
            found.setdefault(device, []).append((stream, first, last))

    def condition(c: assignments.Contact) -> Condition | None:
        return gap_condition(c.patient_id, c.device_id, found.get(c.device_id, []))

    return _device_rules(conn, [(Rule.MESSAGE_GAP, condition)], _GAP_LOCK, now, policy, raised)


def check_devices(
    conn: Conn, *, now: datetime, policy: Policy, raised: Counter | None = None
) -> int:
    """Battery low and critical, not worn, clock skew: what each assigned device says of itself.

    Each device is judged by its patient's ward's thresholds.
    """
    with conn.transaction():
        contacts = assignments.current_contacts(conn, now)
        health = devices.health(conn, [c.device_id for c in contacts], now=now)

    def judge(c: assignments.Contact, rule: Rule) -> Condition | None:
        h = health.get(c.device_id)
        if h is None:
            return None
        t = policy.for_ward(c.ward).thresholds
        pid, dev = c.patient_id, c.device_id
        match rule:
            case Rule.BATTERY:
                return battery_condition(pid, dev, h, low_pct=t.battery_low_pct,
                                         critical_pct=t.battery_critical_pct)  # fmt: skip
            case Rule.BATTERY_CRITICAL:
                return battery_critical_condition(pid, dev, h, critical_pct=t.battery_critical_pct)
            case Rule.NOT_WORN:
                return not_worn_condition(pid, dev, h, after=t.not_worn_after)
            case _:
                return clock_skew_condition(
                    pid, dev, h, tolerance_s=t.clock_skew_tolerance.total_seconds()
                )

    rules = (Rule.BATTERY, Rule.BATTERY_CRITICAL, Rule.NOT_WORN, Rule.CLOCK_SKEW)
    return _device_rules(
        conn,
        [(r, lambda c, r=r: judge(c, r)) for r in rules],  # type: ignore[misc]
        _DEVICE_LOCK,
        now,
        policy,
        raised,
    )


def check_sensors(
    conn: Conn, *, now: datetime, policy: Policy, raised: Counter | None = None
) -> int:
    """Label each assigned device's last hour of each vital sign (signals.quality); a stuck or
    noisy sensor is recorded (ingest then scores it as not measured) and raises the technical
    "sensor" alert, resolved when the sensor recovers.

    One query reads every assigned device's last hour (``devices.recent_series_many``, the same
    rows as ``recent_series`` per device); each device is then labelled here, one at a time.
    """
    found: dict[str, dict[Metric, Quality]] = {}
    with conn.transaction():
        contacts = assignments.current_contacts(conn, now)
        recent = devices.recent_series_many(
            conn, [c.device_id for c in contacts], SENSOR_METRICS, span=SENSOR_SPAN
        )
        for c in contacts:
            labels: dict[Metric, Quality] = {}
            for metric, (ts, values) in recent[c.device_id].items():
                if ts.size == 0:
                    continue
                start = int(ts.max()) + 1 - int(SENSOR_SPAN.total_seconds() * 1e6)
                window = label_windows(
                    ts, values, metric=metric, start_us=start,
                    window_s=SENSOR_SPAN.total_seconds(), n_windows=1,
                )  # fmt: skip
                labels[metric] = Quality(int(window[0]))
            found[c.device_id] = labels
            bad = {m: q.label for m, q in labels.items() if q in SENSOR_FAULTS}
            devices.set_sensor_faults(conn, c.patient_id, c.device_id, bad, now=now)
        devices.clear_sensor_faults_except(conn, [(c.patient_id, c.device_id) for c in contacts])

    def condition(c: assignments.Contact) -> Condition | None:
        return sensor_condition(c.patient_id, c.device_id, found.get(c.device_id, {}))

    return _device_rules(conn, [(Rule.SENSOR, condition)], _SENSOR_LOCK, now, policy, raised)


def _device_rules(
    conn: Conn,
    rules: Sequence[tuple[Rule, Callable[[assignments.Contact], Condition | None]]],
    lock: int,
    now: datetime,
    policy: Policy,
    raised: Counter | None,
) -> int:
    """Bring technical rules' alerts in line for every currently assigned device.

    The ward's policy says whether each rule is on and how long a condition must last; by
    default a device problem resolves as soon as the device works again (no hold-down). One
    worker runs a set of rules at a time; another worker's tick simply skips.
    """
    changes = 0
    with conn.transaction():
        got = conn.execute("select pg_try_advisory_xact_lock(%s)", (lock,)).fetchone()
        if not (got and got[0]):
            return 0
        contacts = assignments.current_contacts(conn, now)
        patients = {c.patient_id for c in contacts}
        current = alert_store.open_alerts(conn, patients)
        waiting = alert_store.pending(conn, patients)
        for c in contacts:
            for rule, condition in rules:
                outcome = alert_store.evaluate(
                    conn,
                    patient_id=c.patient_id,
                    ward=c.ward,
                    rule=rule,
                    condition=condition(c),
                    current=current.get((c.patient_id, rule)),
                    pending_since=waiting.get((c.patient_id, rule)),
                    at=now,
                    now=now,
                    policy=policy.for_ward(c.ward),
                )
                if outcome is None:
                    continue
                if raised is not None and outcome.kind == "fired":
                    raised.labels(severity=outcome.severity.label).inc()
                changes += 1
    return changes


def assess_risk(conn: Conn, *, now: datetime, policy: Policy, raised: Counter | None = None) -> int:
    """Score each monitored patient's completed days and raise, or resolve, the "risk" alert.

    Days are taken in order from where the patient's stored model state left off, in event time
    (a day is complete when the readings have passed its end by ``RISK_DAY_GRACE``), so a replay
    at any speed scores the same days the same way. One transaction per patient: a patient whose
    day fails to score does not hold back the others. Returns the number of days scored.
    """
    scored = 0
    patients = {c.patient_id: c.ward for c in assignments.current_contacts(conn, now)}
    for patient_id, ward in sorted(patients.items()):
        try:
            with conn.transaction():
                got = conn.execute(
                    "select pg_try_advisory_xact_lock(%s, hashtext(%s))", (_RISK_LOCK, patient_id)
                ).fetchone()
                if not (got and got[0]):
                    continue
                scored += _assess_patient(
                    conn, patient_id, ward, now, policy.for_ward(ward), raised
                )
        except psycopg.Error:
            raise  # the database: the tick is retried
        except Exception:
            log.exception("patient %s: risk not assessed; the other patients go on", patient_id)
    return scored


def _assess_patient(
    conn: Conn,
    patient_id: str,
    ward: str,
    now: datetime,
    policy: WardPolicy,
    raised: Counter | None,
) -> int:
    span = risk_store.event_span(conn, patient_id)
    if span is None:
        return 0
    first_us, last_us, offset_min = span
    last = risk_store.last_state(conn, patient_id)
    if last is None:
        model, day = PatientRisk(), day_of(first_us, offset_min)
    else:
        model, day = PatientRisk.restore(last[1]), last[0] + timedelta(days=1)
    grace_us = int(RISK_DAY_GRACE.total_seconds()) * 1_000_000
    # The CUSUM is the hysteresis (it falls a little a day): no hold-down unless a ward sets one.
    settings = replace(policy.rule(Rule.RISK), hold_down=timedelta(0))
    done = 0
    while done < RISK_DAYS_PER_TICK:
        window = day_window(day, offset_min)
        if window.end_us + grace_us > last_us:
            break
        features = daily_features(
            risk_store.readings_between(conn, patient_id, window.start_us, window.end_us), window
        )
        assessment = model.step(features)
        risk_store.save_day(conn, patient_id, day, features, assessment, model.snapshot(), now=now)
        scored, day, done = day, day + timedelta(days=1), done + 1
        pause = policy_store.pauses(conn, [patient_id]).get(patient_id)
        if pause is not None and pause.covers(_utc(window.end_us)):
            continue  # paused by a clinician: the day is scored and kept, no alert changes
        outcome = alert_store.evaluate(
            conn,
            patient_id=patient_id,
            ward=ward,
            rule=Rule.RISK,
            condition=risk_condition(patient_id, scored, assessment),
            current=alert_store.open_alerts(conn, [patient_id]).get((patient_id, Rule.RISK)),
            pending_since=alert_store.pending(conn, [patient_id]).get((patient_id, Rule.RISK)),
            at=now,
            now=now,
            policy=policy,
            settings=settings,
        )
        if raised is not None and outcome is not None and outcome.kind == "fired":
            raised.labels(severity=outcome.severity.label).inc()
    return done


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

    @property
    def since_us(self) -> int:
        return int(self.since.timestamp() * 1_000_000)


def _derive_each(
    conn: Conn,
    *,
    now: datetime,
    what: str,
    kind: WaveformKind,
    lookback: timedelta,
    context: timedelta,
    work: Callable[[_Stream], int],
) -> int:
    """Run ``work`` on each assigned device's ``kind`` waveform since its derive job ``what``
    last settled; return the sum of what ``work`` returned (readings stored).

    Shared by the derive jobs: one transaction per device, under a per-device advisory lock
    (another worker's run skips the device), continuing from ``derived_progress`` but at most
    ``lookback`` back, with ``context`` before that loaded too. ``work`` runs inside that
    device's transaction, so its readings and its progress commit together, and a device whose
    work fails is rolled back and logged with the traceback while the others go on (a database
    error still ends the run: the tick is retried).
    """
    stored = 0
    for c in assignments.current_contacts(conn, now):
        try:
            with conn.transaction():
                stream = _load_stream(conn, c, now=now, what=what, kind=kind,
                                      lookback=lookback, context=context)  # fmt: skip
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
    since = max(done or now - lookback, now - lookback, c.valid_from)
    chunks = devices.load_waveform(conn, c.device_id, kind, since - context, now)
    if not chunks:
        return None
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
    return _Stream(c, since, usable) if usable else None


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


def derive_resp_rate(conn: Conn, *, now: datetime, lookback: timedelta = timedelta(hours=1)) -> int:
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
                        lookback=lookback, context=timedelta(minutes=2), work=work)  # fmt: skip


def _settled_spans(
    stream: _Stream, quiet_from_us: int, settle_us: int
) -> list[tuple[WaveformChunk, int]]:
    """Each segment with new work and how far it is final: ``settle_us`` before its end while
    the device may still send more (its data ends after ``quiet_from_us``), else its end."""
    spans = []
    for segment in stream.segments:
        end = segment.end_us
        settled_to = end - settle_us if end > quiet_from_us else end
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


def derive_pulse(conn: Conn, *, now: datetime, lookback: timedelta = timedelta(hours=1)) -> int:
    """Heart rate per minute and pulse intervals from the PPG of each device that streams one.

    A watch or ring may leave the heart rate to the receiving end; NEWS2 needs it, and the
    nightly HRV needs beat-to-beat intervals. One rate per whole clock minute from the pulses in
    the PPG's acceptable 10-s windows, and the pulse intervals counted in it
    (``signals.derived.ppg_beats``), stored under ``<device>/derived``; a minute of motion gets
    neither. What the device reports itself (its heart rate, its RR intervals) is not derived.
    Each run continues from where the last settled, with 70 s before it as context. Returns the
    readings stored.
    """
    quiet_from = int((now - PPG_QUIET).timestamp() * 1_000_000)

    def work(s: _Stream) -> int:
        wanted = [m for m in (Metric.HEART_RATE, Metric.RR_INTERVAL) if not _own(conn, s, m, now)]
        if not wanted:
            _pass_over(conn, s, "pulse")
            return 0
        parts: list[tuple[Metric, I64, F64]] = []
        spans = _settled_spans(s, quiet_from, PPG_SETTLE_US)
        for segment, settled_to in spans:
            b = ppg_beats(segment, after_us=s.since_us, settled_to_us=settled_to)
            found = {
                Metric.HEART_RATE: (b.hr_ts_us, b.hr_bpm),
                Metric.RR_INTERVAL: (b.ibi_ts_us, b.ibi_ms),
            }
            parts += [(m, *found[m]) for m in wanted]
        stored = _store(conn, s, now, parts)
        if spans:
            settled = _utc(max(t for _, t in spans))
            devices.set_derived_until(conn, s.contact.device_id, "pulse", settled)
        return stored

    return _derive_each(conn, now=now, what="pulse", kind=WaveformKind.PPG,
                        lookback=lookback, context=timedelta(seconds=70), work=work)  # fmt: skip


#: An ECG segment that ended this long ago is finished (the device stopped sending): its last
#: beats are final and need no more waiting.
ECG_QUIET = timedelta(minutes=2)


#: Loaded before where the last run settled: an interval needs its first beat, and a beat's
#: shape is judged against the whole clock minute before its own (signals.derived), which this
#: always covers with 10 s to spare for the filters.
ECG_CONTEXT = timedelta(seconds=130)


def derive_beats(conn: Conn, *, now: datetime, lookback: timedelta = timedelta(hours=1)) -> int:
    """Beat-to-beat intervals and heart rate from each device's raw ECG (signals.derived).

    An ECG patch may stream the waveform and nothing else: its R peaks (``ecg_r_peaks``) give
    the RR intervals the nightly HRV needs and a heart rate per minute for NEWS2, stored under
    ``<device>/derived``. What the device reports itself (its own RR intervals, its own heart
    rate) is not derived again. Each run continues from where the last settled, with
    ``ECG_CONTEXT`` before it. The intervals stored are NN: those into and out of a beat of
    another shape (a ventricular ectopic) are left out. Returns the readings stored.
    """
    quiet_from = int((now - ECG_QUIET).timestamp() * 1_000_000)

    def work(s: _Stream) -> int:
        wanted = [m for m in (Metric.RR_INTERVAL, Metric.HEART_RATE)
                  if not _own(conn, s, m, now)]  # fmt: skip
        parts: list[tuple[Metric, I64, F64]] = []
        spans = _settled_spans(s, quiet_from, ECG_SETTLE_US)
        for segment, settled_to in spans:
            b = ecg_beats(segment, after_us=s.since_us, settled_to_us=settled_to)
            found = {
                Metric.RR_INTERVAL: (b.rr_ts_us, b.rr_ms),
                Metric.HEART_RATE: (b.hr_ts_us, b.hr_bpm),
            }
            parts += [(m, *found[m]) for m in wanted]
        stored = _store(conn, s, now, parts)
        if spans:
            settled = _utc(max(t for _, t in spans))
            devices.set_derived_until(conn, s.contact.device_id, "beats", settled)
        return stored

    return _derive_each(conn, now=now, what="beats", kind=WaveformKind.ECG,
                        lookback=lookback, context=ECG_CONTEXT, work=work)  # fmt: skip


#: Motion minutes are derived this long after the data that settles them has arrived (a bout may
#: continue, a non-wear window extends past the minute): an hour behind real time, well within
#: the risk job's grace before it scores a day (RISK_DAY_GRACE).
MOTION_LAG = timedelta(microseconds=CONTEXT_US)


def derive_motion(conn: Conn, *, now: datetime, lookback: timedelta = timedelta(hours=2)) -> int:
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
            settled_to = end - CONTEXT_US if end > quiet_from else end
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
                        context=MOTION_LAG + timedelta(minutes=1), work=work)  # fmt: skip


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


def make_pruned_counter(registry: CollectorRegistry) -> Counter:
    return Counter(
        "wardwatch_rows_pruned",
        "Raw rows deleted by retention (waveform chunks, message numbers); readings never",
        ["table"],
        registry=registry,
    )


def prune_raw(
    conn: Conn,
    *,
    now: datetime,
    waveforms_for: timedelta,
    seq_for: timedelta,
    pruned: Counter | None = None,
) -> retention.Pruned:
    """Delete raw waveforms older than ``waveforms_for`` once derived, and message numbers older
    than ``seq_for`` (storage.retention); the clinical record is never pruned."""
    done = retention.prune(conn, waveforms_before=now - waveforms_for, seq_before=now - seq_for)
    if pruned is not None:
        pruned.labels(table="waveforms").inc(done.waveforms)
        pruned.labels(table="message_seq").inc(done.message_seq)
    if done.waveforms or done.message_seq:
        log.info("retention: %d waveform chunks, %d message numbers deleted",
                 done.waveforms, done.message_seq)  # fmt: skip
    return done


def make_sent_counter(registry: CollectorRegistry) -> Counter:
    return Counter(
        "wardwatch_notifications_sent",
        "Notification messages delivered, by channel (a grouped message counts once).",
        ["channel"],
        registry=registry,
    )


def make_dead_letter_counter(registry: CollectorRegistry) -> Counter:
    return Counter(
        "wardwatch_notifications_dead_lettered",
        "Notifications given up on (refused for good, or out of attempts), by channel.",
        ["channel"],
        registry=registry,
    )


#: How long a sender holds the notifications it is sending. Sends happen outside any transaction
#: (a slow channel must hold no lock that ingest or an acknowledgement needs); this lease keeps
#: other workers off those rows meanwhile, and after a crash they fall due again.
SEND_LEASE = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class _Sent:
    outcome: str


@dataclass(frozen=True, slots=True)
class _Deferred:
    """Not tried: the channel failed on an earlier message of this tick."""


_Result = _Sent | NotifyError | _Deferred


def dispatch(
    conn: Conn,
    *,
    now: datetime,
    channels: Mapping[str, Channel],
    sent: Counter,
    public_url: str,
    dead_lettered: Counter | None = None,
    group_wait: timedelta = DEFAULT_GROUP_WAIT,
    retry: RetryPolicy | None = None,
) -> int:
    """Send what the outbox owes by ``now``, grouped and inhibited; return messages delivered.

    Three short transactions, none open while a channel is talked to: claim (deciding groups and
    inhibitions, leasing what is sent), then the sends, each channel in its own thread, then one
    transaction per message recording its outcome in each alert's history.
    """
    retry = retry or RetryPolicy()
    with conn.transaction():
        due = alert_store.claim_pending(conn, now=now)
        if not due:
            return 0
        current = alert_store.open_alerts(conn, {p.patient_id for p in due}).values()
        decided = grouping.plan(due, current, now=now, group_wait=group_wait)
        for muted in decided.inhibited:
            alert_store.record_inhibited(conn, muted, now=now)
            log.info("notification %d inhibited by alert %d", muted.pending.id, muted.by.id)
        for group in decided.send:
            alert_store.postpone(conn, group.ids, now + SEND_LEASE, message_id=group.message_id)
    delivered = 0
    for group, result in _send_all(decided.send, channels, public_url):
        with conn.transaction():
            delivered += _record(conn, group, result, now, retry, sent, dead_lettered)
    return delivered


def _notice(group: grouping.Group, public_url: str) -> Notice:
    message = content.render(group, public_url=public_url)
    first = group.items[0]
    return Notice(
        first.alert_id,
        group.recipient,
        message.text,
        subject=message.subject,
        patient_id=group.patient_id,
        ward=first.ward,
        severity=group.severity,
        alert_ids=tuple(dict.fromkeys(p.alert_id for p in group.items)),
        link=message.link,
        message_id=group.message_id,
    )


def _send_channel(
    channel: Channel | None, name: str, groups: Sequence[grouping.Group], public_url: str
) -> list[tuple[grouping.Group, _Result]]:
    """Send one channel's messages in order; after a recoverable failure, defer the rest.

    A channel that is down then costs one timeout per tick, not one per message.
    """
    results: list[tuple[grouping.Group, _Result]] = []
    down = False
    for group in groups:
        if channel is None:
            results.append(
                (group, NotifyError(f"no channel {name!r} configured", recoverable=False))
            )
            continue
        if down:
            results.append((group, _Deferred()))
            continue
        try:
            results.append((group, _Sent(channel.send(_notice(group, public_url)))))
        except NotifyError as exc:
            log.warning("notifications %s via %s failed: %s", list(group.ids), name, exc)
            results.append((group, exc))
            down = exc.recoverable
        except Exception as exc:  # a channel's bug must not lose the other channels' outcomes
            # The type only: an exception's message may quote the notice (patient data).
            log.error("notifications %s via %s: %s", list(group.ids), name, type(exc).__name__)
            results.append(
                (group, NotifyError(f"{name} failed: {type(exc).__name__}", recoverable=True))
            )
            down = True
    return results


def _send_all(
    groups: Sequence[grouping.Group], channels: Mapping[str, Channel], public_url: str
) -> list[tuple[grouping.Group, _Result]]:
    """Send every group, each channel in its own thread: a channel that hangs delays no other."""
    by_channel: dict[str, list[grouping.Group]] = {}
    for group in groups:
        by_channel.setdefault(group.channel, []).append(group)
    if len(by_channel) <= 1:
        return [
            r
            for name, gs in by_channel.items()
            for r in _send_channel(channels.get(name), name, gs, public_url)
        ]
    with ThreadPoolExecutor(len(by_channel), thread_name_prefix="notify") as pool:
        futures = [
            pool.submit(_send_channel, channels.get(name), name, gs, public_url)
            for name, gs in by_channel.items()
        ]
        return [r for f in futures for r in f.result()]


def _record(
    conn: Conn,
    group: grouping.Group,
    result: _Result,
    now: datetime,
    retry: RetryPolicy,
    sent: Counter,
    dead_lettered: Counter | None,
) -> int:
    """Record one message's outcome for each notification it carried; 1 if it was delivered."""
    if isinstance(result, _Deferred):
        alert_store.postpone(conn, group.ids, now + retry.first_delay)
        return 0
    together = ""
    if len(group.items) > 1:
        others = ", ".join(str(p.id) for p in group.items)
        together = f" (one message for notifications {others})"
    for n in group.items:
        if isinstance(result, _Sent):
            alert_store.record_delivery(
                conn, n, now=now, ok=True, outcome=result.outcome + together
            )
            continue
        retry_at = retry.next_attempt(n.attempts + 1, now) if result.recoverable else None
        kind = alert_store.record_delivery(
            conn, n, now=now, ok=False, outcome=str(result), retry_at=retry_at
        )
        if kind == "notify_dead_letter":
            log.error(
                "notification %d (alert %d) via %s dead-lettered", n.id, n.alert_id, n.channel
            )
            if dead_lettered is not None:
                dead_lettered.labels(channel=n.channel).inc()
    if isinstance(result, _Sent):
        sent.labels(channel=group.channel).inc()
        return 1
    return 0
