"""Turn a simulated ward into the messages its devices would publish, paced by the timeline.

:func:`stream` is an iterator of :class:`Message` that sleeps until the next sample is due; it
needs no broker, so the pipeline or a test can consume a simulated ward directly, and
``simulator.publish.simulate`` only adds the MQTT client. Wire format: docs/wire-format.md.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from signals.vitals import Metric
from simulator.physiology import SCENARIOS, PatientModel, Samples
from simulator.timeline import Timeline
from simulator.ward import SimPatient

#: Longest a device message grows while a run catches up; live, a message carries one sample.
BATCH_MAX = 60
#: Least wall time between two rounds of publishing. At speed S a round covers S seconds of
#: event time, so a device's message carries about S/60 samples (one at speed <= 60).
TICK_S = 1.0
#: Longest single sleep, so that a stop request is noticed promptly.
MAX_SLEEP_S = 0.2

_INTEGERS = frozenset(
    {
        Metric.HEART_RATE,
        Metric.SPO2,
        Metric.RESP_RATE,
        Metric.SYSTOLIC_BP,
        Metric.DIASTOLIC_BP,
        Metric.STEPS,
        Metric.BATTERY,
    }
)


def topic_for(device_id: str) -> str:
    """The MQTT topic a device publishes its vital signs on."""
    return f"wardwatch/v1/devices/{device_id}/vitals"


def local_zone() -> tzinfo:
    """The zone devices stamp their samples in: UK time, or UTC where no tz database exists."""
    try:
        return ZoneInfo("Europe/London")
    except ZoneInfoNotFoundError:
        return UTC


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT message: a device's samples as a JSON array."""

    topic: str
    payload: bytes
    samples: int


def encode(samples: Samples, tz: tzinfo) -> bytes:
    """Serialise samples as a wire payload: a JSON array of sample objects, absent fields omitted.

    >>> import numpy as np
    >>> s = Samples(np.array([0]), {Metric.HEART_RATE: np.array([71.0]),
    ...                             Metric.SPO2: np.array([np.nan]),
    ...                             Metric.TEMPERATURE: np.array([36.75]),
    ...                             Metric.WORN: np.array([1.0])})
    >>> encode(s, UTC)
    b'[{"ts":"1970-01-01T00:00:00+00:00","heart_rate":71,"temperature":36.8,"worn":true}]'
    """
    rows: list[dict[str, Any]] = []
    columns = [(m, m.wire_name, v.tolist()) for m, v in samples.values.items()]
    for i, ts in enumerate(samples.ts_s.tolist()):
        row: dict[str, Any] = {"ts": datetime.fromtimestamp(ts, tz).isoformat()}
        for metric, name, column in columns:
            value = column[i]
            if math.isnan(value):
                continue
            if metric is Metric.WORN:
                row[name] = bool(value)
            elif metric in _INTEGERS:
                row[name] = int(value)
            else:
                row[name] = round(value, 1)
        if samples.rr_intervals_ms is not None and samples.rr_intervals_ms[i].size:
            row[Metric.RR_INTERVAL.wire_name] = samples.rr_intervals_ms[i].astype(int).tolist()
        rows.append(row)
    return orjson.dumps(rows)


def model_for(
    patient: SimPatient,
    *,
    seed: int,
    start_s: int,
    tz: tzinfo,
    rr_intervals: bool = False,
) -> PatientModel:
    """The physiology of ``patient`` on a timeline starting at event time ``start_s``."""
    onset_s = None if patient.onset is None else start_s + patient.onset.total_seconds()
    return PatientModel(
        SCENARIOS[patient.scenario],
        patient_seed=patient.seed,
        noise_seed=seed,
        start_s=start_s,
        tz=tz,
        onset_s=onset_s,
        rr_intervals=rr_intervals,
    )


def stream(
    patients: Sequence[SimPatient],
    *,
    timeline: Timeline,
    seed: int,
    stop: threading.Event,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    tz: tzinfo | None = None,
    rr_intervals: bool = False,
    batch_max: int = BATCH_MAX,
    tick_s: float = TICK_S,
) -> Iterator[Message]:
    """Yield each device's messages as their samples fall due; ends with a bounded run or ``stop``.

    A sample stamped ``ts`` is yielded once the timeline's event time has reached ``ts``, hence
    never before the wall clock does. Rounds of publishing are at least ``tick_s`` apart; in a
    round each device's due samples go out in messages of at most ``batch_max`` samples.
    """
    zone = local_zone() if tz is None else tz
    start_s = math.ceil(timeline.event_start_s)
    models = [
        (
            topic_for(p.device_id),
            model_for(p, seed=seed, start_s=start_s, tz=zone, rr_intervals=rr_intervals),
        )
        for p in patients
    ]
    cursor = start_s  # every sample stamped before the cursor has been yielded
    end_s = timeline.event_end_s
    last_round = -math.inf
    while not stop.is_set():
        due = [d for _, m in models if (d := m.next_due(cursor)) is not None]
        if not due or (end_s is not None and min(due) > end_s):
            return  # every device has fallen silent, or the run ends before the next sample
        elapsed = clock() - timeline.wall_start_s
        reached = math.floor(timeline.event_at(elapsed))
        if min(due) <= reached and elapsed - last_round >= tick_s:
            last_round = elapsed
            for topic, model in models:
                samples = model.samples(cursor, reached + 1)
                for first in range(0, len(samples), batch_max):
                    chunk = samples.take(slice(first, first + batch_max))
                    yield Message(topic, encode(chunk, zone), len(chunk))
                    if stop.is_set():
                        return
            cursor = reached + 1
            continue
        wake = timeline.elapsed_at(min(due))
        if wake is None:
            return
        delay = max(wake, last_round + tick_s) - elapsed
        sleep(min(max(delay, 1e-3), MAX_SLEEP_S))  # at least a little: never spin
