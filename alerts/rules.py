"""Where an alert is raised: each rule turns a patient's current state into a ``Condition`` or None.

Pure functions of their inputs; the caller supplies scores, last-contact times and ``now``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from alerts.model import Condition, Rule, Severity
from signals.news2 import News2
from signals.quality import Quality
from signals.risk import Assessment, reasons
from signals.vitals import Metric

# RCP NEWS2 2017, clinical response chart ("Chart 4"): thresholds that trigger a response.
NEWS2_EMERGENCY_TOTAL = 7  # 7 or more: emergency response, continuous monitoring
NEWS2_URGENT_TOTAL = 5  # 5-6: urgent response, at least hourly observations
# and a score of 3 in any single parameter: urgent ward-based review (severity REVIEW)

_LABELS = {
    "resp_rate": "RR",
    "spo2": "SpO2",
    "on_oxygen": "O2",
    "systolic_bp": "SBP",
    "heart_rate": "HR",
    "consciousness": "ACVPU",
    "temperature": "Temp",
}


def describe(score: News2, faulty: Mapping[str, str] | None = None) -> str:
    """A line a nurse reads: total, risk, the parameters that scored, and what was not measured.

    ``faulty`` names parameters kept out because their sensor is stuck or noisy (by NEWS2
    parameter name), so "not measured" says why: "HR (sensor stuck)".
    """
    faulty = faulty or {}
    parts = [f"{_LABELS[k]} {v}" for k, v in score.scores.items() if v > 0]
    text = f"NEWS2 {score.total} ({score.risk})"
    if parts:
        text += ": " + ", ".join(parts)
    if score.missing:
        text += "; not measured: " + ", ".join(
            f"{_LABELS[m]} (sensor {faulty[m]})" if m in faulty else _LABELS[m]
            for m in score.missing
        )
    return text


def news2_condition(
    patient_id: str, score: News2, faulty: Mapping[str, str] | None = None
) -> Condition | None:
    """NEWS2 response bands; an incomplete score still fires on what it has (never understates)."""
    if score.total >= NEWS2_EMERGENCY_TOTAL:
        severity = Severity.EMERGENCY
    elif score.total >= NEWS2_URGENT_TOTAL:
        severity = Severity.URGENT
    elif score.single_param_3:
        severity = Severity.REVIEW
    else:
        return None
    return Condition(patient_id, Rule.NEWS2, severity, describe(score, faulty))


def gap_condition(
    patient_id: str, device_id: str, gaps: list[tuple[str, int, int]]
) -> Condition | None:
    """Messages a device numbered but we never received: loss in the phone app, gateway or broker.

    ``gaps`` are (stream, first missing, last missing). Such loss is invisible in the data
    itself, so it is raised to whoever runs the devices, like a silent device.
    """
    if not gaps:
        return None
    missing = sum(last - first + 1 for _, first, last in gaps)
    where = ", ".join(
        f"{stream} #{first}" if first == last else f"{stream} #{first}–{last}"
        for stream, first, last in gaps[:3]
    )
    more = f" and {len(gaps) - 3} more gaps" if len(gaps) > 3 else ""
    return Condition(
        patient_id,
        Rule.MESSAGE_GAP,
        Severity.TECHNICAL,
        f"{missing} message{'s' if missing != 1 else ''} from device {device_id} never arrived"
        f" ({where}{more})",
    )


def no_data_condition(
    patient_id: str,
    device_id: str,
    *,
    last_received: datetime | None,
    enrolled_at: datetime,
    now: datetime,
    silent_after: timedelta,
) -> Condition | None:
    """A device silent for ``silent_after`` (wall clock): the patient is no longer monitored."""
    since = last_received if last_received is not None else enrolled_at
    silent_for = now - since
    if silent_for < silent_after:
        return None
    minutes = int(silent_for.total_seconds() // 60)
    never = " (nothing received since enrolment)" if last_received is None else ""
    return Condition(
        patient_id,
        Rule.NO_DATA,
        Severity.TECHNICAL,
        f"no data from device {device_id} for {minutes} min{never}",
    )


def risk_condition(patient_id: str, day: date, assessment: Assessment) -> Condition | None:
    """A sustained deviation from the patient's own baseline asks for a review, never more.

    The behaviour-based score is an early, soft signal (days, not minutes; docs/risk.md): it asks
    a nurse to look and perhaps call the patient, and it never outranks NEWS2, which measures
    the patient's state against fixed clinical thresholds.
    """
    if not assessment.alarm:
        return None
    risk = assessment.risk
    told = reasons(risk.contributions)
    text = f"behaviour risk {risk.score:.0f}/100 on {day.isoformat()}, sustained over days"
    if assessment.alone and not assessment.alarm_by_mean:
        # The score is a mean over every feature measured; a lone feature's own chart can
        # alarm while the mean stays low, so the nurse is told which feature it is.
        names = ", ".join(f.value for f in assessment.alone)
        text += (
            f" ({names} by itself)" if len(assessment.alone) == 1 else f" ({names}, each by itself)"
        )
    if told:
        text += ": " + "; ".join(told)
    if risk.missing:
        text += "; not measured: " + ", ".join(f.value for f in risk.missing)
    return Condition(patient_id, Rule.RISK, Severity.REVIEW, text)


# --- device health: technical alerts for whoever looks after the devices ---------------------

#: Battery thresholds: most wrist wearables warn their wearer at 20 % and enter low-power mode
#: (vital-sign sensors off) around 10 %, so 20 % leaves a day to charge and 10 % means hours.
BATTERY_LOW_PCT = 20.0
BATTERY_CRITICAL_PCT = 10.0
#: Off the body this long (the wearable's own flag): the patient is not being monitored. Longer
#: than a wash (10-20 min) so a shower does not page, short enough to catch a forgotten watch.
NOT_WORN_AFTER = timedelta(minutes=30)
#: A device clock this far off ours makes its readings' times unreliable; beyond 5 minutes ahead
#: ingest refuses them as future-dated (ingest.codec), so they are lost until the clock is set.
CLOCK_SKEW_TOLERANCE_S = 120.0


@dataclass(frozen=True, slots=True)
class DeviceHealth:
    """What a device last said about itself (event times), for the technical rules."""

    battery_pct: float | None = None
    off_body_since: datetime | None = None  # set while its latest worn report says "off"
    latest_at: datetime | None = None  # its latest report of any kind
    clock_offset_s: float | None = None  # device minus receipt, from its latest status report
    future_refused: int = 0  # readings refused as future-dated in the last hour
    # Off the body by its accelerometer's stillness (derived, an hour behind), not by its own
    # wear sensor: said in the alert, so the device team knows why it came late.
    off_body_inferred: bool = False


def battery_condition(
    patient_id: str,
    device_id: str,
    h: DeviceHealth,
    *,
    low_pct: float = BATTERY_LOW_PCT,
    critical_pct: float = BATTERY_CRITICAL_PCT,
) -> Condition | None:
    """Low but not yet critical (critical is its own alert, so each says one clear thing)."""
    pct = h.battery_pct
    if pct is None or pct > low_pct or pct <= critical_pct:
        return None
    return Condition(
        patient_id,
        Rule.BATTERY,
        Severity.TECHNICAL,
        f"battery of device {device_id} at {pct:.0f} %: ask the patient to charge it today",
    )


def battery_critical_condition(
    patient_id: str,
    device_id: str,
    h: DeviceHealth,
    *,
    critical_pct: float = BATTERY_CRITICAL_PCT,
) -> Condition | None:
    pct = h.battery_pct
    if pct is None or pct > critical_pct:
        return None
    return Condition(
        patient_id,
        Rule.BATTERY_CRITICAL,
        Severity.TECHNICAL,
        f"battery of device {device_id} at {pct:.0f} %: monitoring stops within hours "
        "unless it is charged now",
    )


def not_worn_condition(
    patient_id: str, device_id: str, h: DeviceHealth, *, after: timedelta = NOT_WORN_AFTER
) -> Condition | None:
    """Off the body for ``after`` by the device's own clock (its latest report, not ours), or by
    the minutes derived from its accelerometer when it has no wear sensor (storage.devices)."""
    if h.off_body_since is None or h.latest_at is None:
        return None
    off_for = h.latest_at - h.off_body_since
    if off_for < after:
        return None
    how = " (judged from its accelerometer, about an hour behind)" if h.off_body_inferred else ""
    return Condition(
        patient_id,
        Rule.NOT_WORN,
        Severity.TECHNICAL,
        f"device {device_id} off the body for {int(off_for.total_seconds() // 60)} min{how}: "
        "no vital signs are being measured",
    )


def clock_skew_condition(
    patient_id: str,
    device_id: str,
    h: DeviceHealth,
    *,
    tolerance_s: float = CLOCK_SKEW_TOLERANCE_S,
) -> Condition | None:
    parts = []
    if h.clock_offset_s is not None and abs(h.clock_offset_s) > tolerance_s:
        way = "ahead" if h.clock_offset_s > 0 else "behind"
        parts.append(f"clock {abs(h.clock_offset_s):.0f} s {way}")
    if h.future_refused:
        parts.append(f"{h.future_refused} readings refused as future-dated in the last hour")
    if not parts:
        return None
    return Condition(
        patient_id,
        Rule.CLOCK_SKEW,
        Severity.TECHNICAL,
        f"device {device_id}: " + "; ".join(parts) + " (set its clock or check its time sync)",
    )


# --- sensor faults: bad data kept out of the score, and said so --------------------------------

#: The vital signs whose sensors are checked (signals.quality over the last hour): those NEWS2
#: scores from a wearable. A frozen SpO2 reading 97 % would hide a falling saturation.
SENSOR_METRICS: tuple[Metric, ...] = (
    Metric.HEART_RATE,
    Metric.SPO2,
    Metric.RESP_RATE,
    Metric.TEMPERATURE,
)
SENSOR_FAULTS = frozenset({Quality.STUCK, Quality.NOISY})
_SENSOR_NAMES = {
    Metric.HEART_RATE: "heart rate",
    Metric.SPO2: "SpO2",
    Metric.RESP_RATE: "respiratory rate",
    Metric.TEMPERATURE: "temperature",
}


#: What to check when a waveform gives no heart rate, by the waveform's kind.
_NO_BEATS = {
    "ecg": "no heartbeat found in its ECG over the last hour: heart rate not measured"
    " (electrodes loose or off?)",
    "ppg": "no pulse found in its PPG over the last hour: heart rate not measured"
    " (off the wrist, loose, or moving all the time?)",
}


def sensor_condition(
    patient_id: str,
    device_id: str,
    faults: Mapping[Metric, Quality],
    *,
    no_beats_in: str | None = None,
) -> Condition | None:
    """A device whose sensors give frozen or implausibly jumpy values over the last hour, or
    whose streamed waveform (``no_beats_in``: "ecg" or "ppg") gave no heart rate in it.

    Technical: the device team fixes it (refit the watch, replace the probe). Clinically the
    affected parameters are scored as not measured meanwhile (ingest.pipeline), never as normal.
    """
    bad = {m: q for m, q in faults.items() if q in SENSOR_FAULTS}
    if not bad and no_beats_in is None:
        return None
    said = []
    if bad:
        faulty = "; ".join(f"{_SENSOR_NAMES[m]} {q.label}" for m, q in sorted(bad.items()))
        said.append(f"{faulty} over the last hour (kept out of NEWS2 until it recovers)")
    if no_beats_in is not None:
        said.append(_NO_BEATS[no_beats_in])
    return Condition(
        patient_id, Rule.SENSOR, Severity.TECHNICAL, f"device {device_id}: " + "; ".join(said)
    )
