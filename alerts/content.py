"""What a notification says: who and where, what crossed which threshold, what to do, where to look.

Pure text from the grouped outbox rows; the channels only carry it. The patient id is the
pseudonymous one wardwatch stores; no names leave through a channel.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from urllib.parse import urlencode

from alerts.grouping import Group
from alerts.model import Rule, Severity
from signals.vitals import CONSCIOUSNESS_LEVELS, Metric

#: What the clinical response to each NEWS2 band is. Paraphrased (not quoted) from RCP NEWS2
#: 2017, Chart 4 "Clinical response to NEWS trigger thresholds"; an aggregate of 0 asks for a
#: ward-based response and 1-4 for assessment by a registered nurse, neither of which raises an
#: alert here. On a virtual ward "the medical team" is the virtual ward's clinical team.
NEWS2_RESPONSE: Mapping[Severity, str] = MappingProxyType(
    {
        Severity.REVIEW: (
            "NEWS2 response (a 3 in one parameter): urgent ward-based response. A registered"
            " nurse informs the medical team caring for the patient, who review and decide"
            " whether care must be escalated; observations at least hourly."
        ),
        Severity.URGENT: (
            "NEWS2 response (5-6): urgent response. A registered nurse informs the medical team"
            " at once and asks for urgent assessment by a clinician or team with competencies in"
            " caring for acutely ill patients; observations at least hourly."
        ),
        Severity.EMERGENCY: (
            "NEWS2 response (7 or more): emergency response. Inform the medical team at once (at"
            " least specialist registrar level); emergency assessment by a team with critical-care"
            " competencies, including advanced airway skills; consider transfer to level 2 or 3"
            " care; continuous monitoring."
        ),
    }
)

#: A value older than this, relative to the newest one, is left out of the message: the score
#: already calls it "not measured" (ingest's freshness default, ingest/pipeline.py).
VALUES_WITHIN = timedelta(minutes=60)

_VALUE_FORMATS: Mapping[Metric, str] = MappingProxyType(
    {
        Metric.RESP_RATE: "RR {:.0f}/min",
        Metric.SPO2: "SpO2 {:.0f} %",
        Metric.SYSTOLIC_BP: "SBP {:.0f} mmHg",
        Metric.HEART_RATE: "HR {:.0f}/min",
        Metric.TEMPERATURE: "Temp {:.1f} °C",
    }
)

#: The metrics whose values a NEWS2 notification shows.
NEWS2_VALUE_METRICS: tuple[Metric, ...] = (*_VALUE_FORMATS, Metric.ON_OXYGEN, Metric.CONSCIOUSNESS)


@dataclass(frozen=True, slots=True)
class Message:
    subject: str
    text: str
    link: str


def news2_response(rule: Rule, severity: Severity) -> str | None:
    """The RCP clinical response owed to a NEWS2 alert of this severity (None for other rules)."""
    return NEWS2_RESPONSE.get(severity) if rule is Rule.NEWS2 else None


def describe_values(latest: Mapping[Metric, tuple[int, float]]) -> str | None:
    """The measured values behind a score and when they were measured, e.g. for a NEWS2 alert.

    ``latest`` maps each metric to its newest (event time µs, value), as storage reads it.
    """
    if not latest:
        return None
    newest_us = max(t for t, _ in latest.values())
    cutoff_us = newest_us - int(VALUES_WITHIN.total_seconds() * 1_000_000)
    fresh = {m: tv for m, tv in latest.items() if tv[0] >= cutoff_us}
    parts = [fmt.format(fresh[m][1]) for m, fmt in _VALUE_FORMATS.items() if m in fresh]
    if Metric.ON_OXYGEN in fresh:
        parts.append("on oxygen" if fresh[Metric.ON_OXYGEN][1] >= 0.5 else "on air")
    if Metric.CONSCIOUSNESS in fresh:
        level = int(fresh[Metric.CONSCIOUSNESS][1])
        if 0 <= level < len(CONSCIOUSNESS_LEVELS):
            parts.append(f"ACVPU {CONSCIOUSNESS_LEVELS[level]}")
    if not parts:
        return None
    oldest_us = min(t for t, _ in fresh.values())
    when = _hhmm(newest_us)
    if _hhmm(oldest_us) != when:
        when = f"{_hhmm(oldest_us)}-{when}"
    return f"{', '.join(parts)} (measured {when} UTC)"


def _hhmm(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, UTC).strftime("%H:%M")


def patient_link(public_url: str, ward: str, patient_id: str) -> str:
    """Where the dashboard shows this patient's ward, with the patient named in the query."""
    return f"{public_url.rstrip('/')}/?{urlencode({'ward': ward, 'patient': patient_id})}"


def render(group: Group, *, public_url: str) -> Message:
    """One message for a group: the patient, the most severe alert first, what to do, a link."""
    first = group.items[0]
    where = f"ward {first.ward}" + (f", bed {first.bed}" if first.bed else "")
    count = len(group.items)
    subject = f"[{group.severity.label}] patient {group.patient_id}, {where}"
    if count > 1:
        subject += f": {count} alerts"
    lines = [f"Patient {group.patient_id}, {where}", f"For: {group.recipient}", ""]
    lines += [f"- {p.body}" for p in group.items]
    responses = [r for p in group.items if (r := news2_response(p.rule, p.severity))]
    if responses:
        lines += ["", responses[0]]
    link = patient_link(public_url, first.ward, group.patient_id)
    alert_ids = ", ".join(str(a) for a in dict.fromkeys(p.alert_id for p in group.items))
    lines += ["", f"Open: {link}", f"Alert {alert_ids}" if count == 1 else f"Alerts {alert_ids}"]
    return Message(subject, "\n".join(lines), link)
