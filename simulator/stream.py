"""Turn a simulated ward into the messages its devices would publish, paced by the timeline.

:func:`stream` is an iterator of :class:`Message` that sleeps until the next sample is due; it
needs no broker, so the pipeline or a test can consume a simulated ward directly, and
``simulator.publish.simulate`` only adds the MQTT client. Wire format: docs/wire-format.md; the
optional raw accelerometer (``accel_hz``) and PPG (``ppg_hz``) go out as waveform chunks,
docs/waveforms.md.
"""

from __future__ import annotations

import functools
import heapq
import math
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt
import orjson

from signals.vitals import Metric
from simulator.ecg import FS_RANGE_HZ as ECG_FS_RANGE_HZ
from simulator.ecg import ecg_block
from simulator.heart import HeartState
from simulator.motion import (
    FS_RANGE_HZ,
    WristProfile,
    WristState,
    draw_wrist,
    wrist_accel_block,
)
from simulator.physiology import SCENARIOS, PatientModel, Samples
from simulator.ppg import FS_RANGE_HZ as PPG_FS_RANGE_HZ
from simulator.ppg import ppg_block
from simulator.timeline import SAMPLE_INTERVAL_S, Timeline
from simulator.ward import SimPatient

#: Longest a device message grows while a run catches up; live, a message carries one sample.
BATCH_MAX = 60
#: Least wall time between two rounds of publishing. At speed S a round covers S seconds of
#: event time, so a device's message carries about S/60 samples (one at speed <= 60).
TICK_S = 1.0
#: Longest single sleep, so that a stop request is noticed promptly.
MAX_SLEEP_S = 0.2
#: Seconds of raw accelerometer per waveform message: 750 samples at 25 Hz (about 16 kB of
#: JSON), well inside ingest's 60 s and 1 MiB a chunk; two a minute, aligned with the minutes the
#: vitals summarise.
ACCEL_CHUNK_S = 30

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


def waveform_topic_for(device_id: str) -> str:
    """The MQTT topic a device publishes its waveform chunks (here the accelerometer) on."""
    return f"wardwatch/v1/devices/{device_id}/waveform"


def local_zone() -> tzinfo:
    """The zone devices stamp their samples in: UK time, or UTC where no tz database exists."""
    try:
        return ZoneInfo("Europe/London")
    except ZoneInfoNotFoundError:
        return UTC


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT message: a device's samples as a JSON array, or one waveform chunk.

    ``samples`` counts vital-sign samples (0 for a chunk); ``accel_samples``, ``ppg_samples``
    and ``ecg_samples`` a chunk's samples.
    """

    topic: str
    payload: bytes
    samples: int
    accel_samples: int = 0
    ppg_samples: int = 0
    ecg_samples: int = 0


#: What a device that streams its PPG leaves to the receiving end (wardwatch derives them).
LEFT_TO_PPG: frozenset[Metric] = frozenset({Metric.HEART_RATE, Metric.RESP_RATE})
#: Seconds of PPG per waveform message, as for the accelerometer.
PPG_CHUNK_S = 30
#: What a chest patch that streams its ECG leaves to the receiving end: the heart rate (and the
#: beat-to-beat intervals, which wardwatch derives as NN intervals), and whether it is on the
#: body (it has no lead-off detection: electrodes that come off show only in the ECG). Its
#: breathing rate, from chest impedance, it still reports.
LEFT_TO_ECG: frozenset[Metric] = frozenset({Metric.HEART_RATE, Metric.WORN})
#: Seconds of ECG per waveform message.
ECG_CHUNK_S = 30


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


def encode_waveform(
    kind: str, unit: str, start_s: int, fs_hz: float, values: npt.NDArray[np.float32], seq: int,
    tz: tzinfo,
) -> bytes:  # fmt: skip
    """Serialise a waveform chunk as a waveform payload (docs/waveforms.md), values to 3 decimals.

    >>> encode_waveform("ppg", "au", 0, 25, np.array([0.51234, -0.2], np.float32), 3, UTC)
    b'{"ts":"1970-01-01T00:00:00+00:00","kind":"ppg","fs_hz":25,"unit":"au","seq":3,"samples":[0.512,-0.2]}'
    """
    rate: float | int = int(fs_hz) if float(fs_hz).is_integer() else float(fs_hz)
    return orjson.dumps(
        {
            "ts": datetime.fromtimestamp(start_s, tz).isoformat(),
            "kind": kind,
            "fs_hz": rate,
            "unit": unit,
            "seq": seq,
            # float64 after rounding, so 0.012 is written "0.012", not float32's 0.0120000001.
            "samples": np.ascontiguousarray(np.round(values.astype(np.float64), 3)),
        },
        option=orjson.OPT_SERIALIZE_NUMPY,
    )


def encode_accel(
    start_s: int, fs_hz: float, values: npt.NDArray[np.float32], seq: int, tz: tzinfo
) -> bytes:
    """An accelerometer chunk, values in g to the mg.

    >>> encode_accel(0, 25, np.array([[0.0121, -0.5, 0.99949]], np.float32), 7, UTC)
    b'{"ts":"1970-01-01T00:00:00+00:00","kind":"accel","fs_hz":25,"unit":"g","seq":7,"samples":[[0.012,-0.5,0.999]]}'
    """
    return encode_waveform("accel", "g", start_s, fs_hz, values, seq, tz)


def encode_ppg(
    start_s: int, fs_hz: float, values: npt.NDArray[np.float32], seq: int, tz: tzinfo
) -> bytes:
    """A PPG chunk, in arbitrary units (an AC-coupled PPG has no physical unit)."""
    return encode_waveform("ppg", "au", start_s, fs_hz, values, seq, tz)


def encode_ecg(
    start_s: int, fs_hz: float, values: npt.NDArray[np.float32], seq: int, tz: tzinfo
) -> bytes:
    """An ECG chunk, in millivolts to the microvolt."""
    return encode_waveform("ecg", "mV", start_s, fs_hz, values, seq, tz)


def _check_rate(what: str, fs_hz: float, fs_range: tuple[float, float], chunk_s: int) -> float:
    low, high = fs_range
    if not (math.isfinite(fs_hz) and low <= fs_hz <= high and float(fs_hz * chunk_s).is_integer()):
        raise ValueError(
            f"{what} rate must be {low:g}-{high:g} Hz with a whole number of samples in"
            f" {chunk_s} s, not {fs_hz!r}"
        )
    return float(fs_hz)


def check_ppg_hz(fs_hz: float) -> float:
    """Return ``fs_hz`` if the simulator can sample the PPG at it (20-100 Hz, a whole number of
    samples in each chunk), else ValueError."""
    return _check_rate("PPG", fs_hz, PPG_FS_RANGE_HZ, PPG_CHUNK_S)


def check_ecg_hz(fs_hz: float) -> float:
    """Return ``fs_hz`` if the simulator can sample the ECG at it (120-500 Hz, a whole number of
    samples in each chunk), else ValueError."""
    return _check_rate("ECG", fs_hz, ECG_FS_RANGE_HZ, ECG_CHUNK_S)


def check_accel_hz(fs_hz: float) -> float:
    """Return ``fs_hz`` if the simulator can sample the accelerometer at it, else ValueError.

    5-100 Hz, with a whole number of samples in each chunk.
    """
    return _check_rate("accelerometer", fs_hz, FS_RANGE_HZ, ACCEL_CHUNK_S)


class _WaveformDevice:
    """One device's waveform, as chunks of ``chunk_s`` seconds, generated an hour at a time.

    Minute ``m`` of the minute model (the minute before the sample stamped ``60·m + offset``)
    becomes ``60 · fs_hz`` samples over exactly that minute, so the waveform and the vitals
    describe the same minutes. Hours are generated in order, each continuing from where the one
    before left off (``_generate``). Chunks are numbered from 0 (``seq``); the first starts at or
    after the model's start, and none is sent past the moment the device falls silent.
    """

    chunk_s: int
    encoder: Callable[[int, float, npt.NDArray[np.float32], int, tzinfo], bytes]
    check_rate: Callable[[float], float]

    def __init__(
        self,
        model: PatientModel,
        *,
        device_id: str,
        fs_hz: float,
        patient_seed: int,
        noise_seed: int,
        tz: tzinfo,
    ) -> None:
        self.model = model
        self.topic = waveform_topic_for(device_id)
        self.fs_hz = type(self).check_rate(fs_hz)
        self._patient_seed = patient_seed
        self._seeds = (noise_seed, patient_seed)  # each hour's noise: these and the hour
        self._tz = tz
        # Minutes run from 60·m + offset - 60, so chunks start at offset (mod chunk_s).
        self._origin_s = model.profile.offset_s - SAMPLE_INTERVAL_S
        ahead = (model.start_s - self._origin_s) % self.chunk_s
        self.next_start_s = model.start_s + (self.chunk_s - ahead) % self.chunk_s
        self.seq = 0
        self._hour = self._hour_of(self.next_start_s)  # the next hour to generate
        self._blocks: dict[int, npt.NDArray[np.float32]] = {}

    def next_due(self) -> int | None:
        """Event time at which the next chunk is complete; None once the device is silent."""
        end = self.next_start_s + self.chunk_s
        silent = self.model.silent_from_s
        return None if silent is not None and end > silent else end

    def messages(self, reached: int) -> Iterator[tuple[int, Message]]:
        """``(end time, message)`` of each chunk complete by event time ``reached``, in order."""
        while (end := self.next_due()) is not None and end <= reached:
            start = self.next_start_s
            hour = self._hour_of(start)
            first = round((start - self._hour_start(hour)) * self.fs_hz)
            values = self._block(hour)[first : first + round(self.chunk_s * self.fs_hz)]
            payload = type(self).encoder(start, self.fs_hz, values, self.seq, self._tz)
            self.seq += 1
            self.next_start_s = end
            yield end, self._message(payload, len(values))

    def _message(self, payload: bytes, n_samples: int) -> Message:
        raise NotImplementedError

    def _generate(self, hour: int) -> npt.NDArray[np.float32]:
        """The hour's samples, continuing the hour before (called once per hour, in order)."""
        raise NotImplementedError

    def _hour_of(self, t_s: int) -> int:
        return (t_s - self._origin_s) // 3600

    def _hour_start(self, hour: int) -> int:
        return self._origin_s + 3600 * hour

    def _block(self, hour: int) -> npt.NDArray[np.float32]:
        """The hour's samples, generating the hours up to it in order (each continues the last)."""
        if hour < self._hour and hour not in self._blocks:
            raise ValueError(f"hour {hour} of the waveform is gone: it only goes forward")
        while self._hour <= hour:
            values = self._generate(self._hour)
            self._blocks = {self._hour: values} | {
                h: v for h, v in self._blocks.items() if h == self._hour - 1
            }
            self._hour += 1
        return self._blocks[hour]


class AccelDevice(_WaveformDevice):
    """One device's raw wrist accelerometer, as chunks of :data:`ACCEL_CHUNK_S` seconds.

    Each hour's noise comes from ``(noise seed, patient seed, hour)``, the wearer's habits and the
    sensor's calibration error from the patient seed alone (``simulator.motion``).
    """

    chunk_s = ACCEL_CHUNK_S
    encoder = staticmethod(encode_accel)
    check_rate = staticmethod(check_accel_hz)
    _state: WristState | None = None

    @functools.cached_property
    def wrist(self) -> WristProfile:
        """The wearer's habits and the sensor's calibration error: the patient seed's alone."""
        return draw_wrist([self._patient_seed, 0xACC])

    def _message(self, payload: bytes, n_samples: int) -> Message:
        return Message(self.topic, payload, 0, accel_samples=n_samples)

    def _generate(self, hour: int) -> npt.NDArray[np.float32]:
        states = self.model.minute_states(hour)
        values, self._state = wrist_accel_block(
            np.random.default_rng([*self._seeds, hour, 0xACC]),
            fs_hz=self.fs_hz,
            asleep=states.asleep,
            walking=states.walking,
            worn=states.worn,
            steps=states.steps,
            severity=states.severity,
            wrist=self.wrist,
            state=self._state,
        )
        return values


class _HeartDevice(_WaveformDevice):
    """A waveform drawn on the patient's own heartbeats and breath, minute by minute
    (``simulator.heart``): each hour continues the beats and breath of the one before."""

    block: Callable[..., tuple[npt.NDArray[np.float32], HeartState]]
    seed_tag: int
    _state: HeartState | None = None

    def _generate(self, hour: int) -> npt.NDArray[np.float32]:
        vitals = self.model.hour_samples(hour).values
        states = self.model.minute_states(hour)
        values, self._state = type(self).block(
            np.random.default_rng([*self._seeds, hour, self.seed_tag]),
            fs_hz=self.fs_hz,
            heart_rate=vitals[Metric.HEART_RATE],
            resp_rate=vitals[Metric.RESP_RATE],
            worn=states.worn,
            walking=states.walking,
            state=self._state,
        )
        return values


class PpgDevice(_HeartDevice):
    """One device's PPG, as chunks of :data:`PPG_CHUNK_S` seconds, following the patient's own
    heart and breathing rates minute by minute (``simulator.ppg``).

    The device sends no heart or breathing rate of its own (``LEFT_TO_PPG``): wardwatch derives
    them.
    """

    chunk_s = PPG_CHUNK_S
    encoder = staticmethod(encode_ppg)
    check_rate = staticmethod(check_ppg_hz)
    block = staticmethod(ppg_block)
    seed_tag = 0x99C

    def _message(self, payload: bytes, n_samples: int) -> Message:
        return Message(self.topic, payload, 0, ppg_samples=n_samples)


class EcgDevice(_HeartDevice):
    """One chest patch's ECG, as chunks of :data:`ECG_CHUNK_S` seconds, its beats drawn as a
    PPG's are from the patient's own heart and breathing rates (``simulator.ecg``).

    The patch sends no heart rate or intervals of its own (``LEFT_TO_ECG``): wardwatch derives
    them. Its "not worn" minutes are electrodes off: mains hum and noise, no heart.
    """

    chunk_s = ECG_CHUNK_S
    encoder = staticmethod(encode_ecg)
    check_rate = staticmethod(check_ecg_hz)
    block = staticmethod(ecg_block)
    seed_tag = 0xEC6

    def _message(self, payload: bytes, n_samples: int) -> Message:
        return Message(self.topic, payload, 0, ecg_samples=n_samples)


def without(samples: Samples, left: frozenset[Metric]) -> Samples:
    """The vitals a waveform-streaming device sends: none of ``left`` (wardwatch derives them
    from the waveform), and no beat-to-beat intervals."""
    kept = {m: v for m, v in samples.values.items() if m not in left}
    return Samples(samples.ts_s, kept, None)


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
    accel_hz: float | None = None,
    accel_patients: int | None = None,
    ppg_hz: float | None = None,
    ppg_patients: int | None = None,
    ecg_hz: float | None = None,
    ecg_patients: int | None = None,
) -> Iterator[Message]:
    """Yield each device's messages as their samples fall due; ends with a bounded run or ``stop``.

    A sample stamped ``ts`` is yielded once the timeline's event time has reached ``ts``, hence
    never before the wall clock does. Rounds of publishing are at least ``tick_s`` apart; in a
    round each device's due samples go out in messages of at most ``batch_max`` samples.

    With ``accel_hz``, the first ``accel_patients`` devices (None: all) also send their raw wrist
    accelerometer at that rate (:class:`AccelDevice`): a chunk once its last sample's time is
    reached, in time order with the device's vitals messages. With ``ppg_hz``, the first
    ``ppg_patients`` devices (None: all) stream their PPG (:class:`PpgDevice`) and send no heart
    or breathing rate of their own, as a ring that leaves them to the receiving end. With
    ``ecg_hz``, the next ``ecg_patients`` (None: all the rest) wear a chest patch that streams
    its ECG (:class:`EcgDevice`) and sends no heart rate of its own.
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
    pairs = [(p, m) for p, (_, m) in zip(patients, models, strict=True)]
    accels = _waveform_devices(AccelDevice, pairs, accel_hz, accel_patients, "accel_patients",
                               seed=seed, tz=zone)  # fmt: skip
    ppgs = _waveform_devices(PpgDevice, pairs, ppg_hz, ppg_patients, "ppg_patients",
                             seed=seed, tz=zone)  # fmt: skip
    # The patches go to the patients after those with a PPG: one device per patient.
    n_ppg = sum(g is not None for g in ppgs)
    ecgs = [None] * n_ppg + _waveform_devices(EcgDevice, pairs[n_ppg:], ecg_hz, ecg_patients,
                                              "ecg_patients", seed=seed, tz=zone)  # fmt: skip
    cursor = start_s  # every sample stamped before the cursor has been yielded
    end_s = timeline.event_end_s
    last_round = -math.inf
    while not stop.is_set():
        due = [d for _, m in models if (d := m.next_due(cursor)) is not None]
        due += [d for a in accels if a is not None and (d := a.next_due()) is not None]
        due += [d for g in (*ppgs, *ecgs) if g is not None and (d := g.next_due()) is not None]
        if not due or (end_s is not None and min(due) > end_s):
            return  # every device has fallen silent, or the run ends before the next sample
        elapsed = clock() - timeline.wall_start_s
        reached = math.floor(timeline.event_at(elapsed))
        if min(due) <= reached and elapsed - last_round >= tick_s:
            last_round = elapsed
            for (topic, model), accel, ppg, ecg in zip(models, accels, ppgs, ecgs, strict=True):
                samples = model.samples(cursor, reached + 1)
                if ppg is not None:
                    samples = without(samples, LEFT_TO_PPG)
                if ecg is not None:
                    samples = without(samples, LEFT_TO_ECG)
                messages: Iterable[Message] = _vitals_messages(topic, samples, zone, batch_max)
                chunks = [w.messages(reached) for w in (accel, ppg, ecg) if w is not None]
                if chunks:
                    messages = _in_time_order(
                        _timed_vitals(topic, samples, zone, batch_max), *chunks
                    )
                for message in messages:
                    yield message
                    if stop.is_set():
                        return
            cursor = reached + 1
            continue
        wake = timeline.elapsed_at(min(due))
        if wake is None:
            return
        delay = max(wake, last_round + tick_s) - elapsed
        sleep(min(max(delay, 1e-3), MAX_SLEEP_S))  # at least a little: never spin


_Device = TypeVar("_Device", "AccelDevice", "PpgDevice", "EcgDevice")


def _waveform_devices(
    kind: type[_Device],
    pairs: Sequence[tuple[SimPatient, PatientModel]],
    fs_hz: float | None,
    count: int | None,
    name: str,
    *,
    seed: int,
    tz: tzinfo,
) -> list[_Device | None]:
    """One waveform device per patient for the first ``count`` (None: all), if ``fs_hz``."""
    if count is not None and count < 0:
        raise ValueError(f"{name} must be 0 or more, not {count}")
    out: list[_Device | None] = [None] * len(pairs)
    if fs_hz is not None:
        kind.check_rate(fs_hz)  # even when no patient streams it: a bad rate is the caller's
        for i, (p, model) in enumerate(pairs[:count]):
            out[i] = kind(model, device_id=p.device_id, fs_hz=fs_hz, patient_seed=p.seed,
                          noise_seed=seed, tz=tz)  # fmt: skip
    return out


def _vitals_messages(topic: str, samples: Samples, tz: tzinfo, batch_max: int) -> Iterator[Message]:
    for _, message in _timed_vitals(topic, samples, tz, batch_max):
        yield message


def _timed_vitals(
    topic: str, samples: Samples, tz: tzinfo, batch_max: int
) -> Iterator[tuple[int, Message]]:
    """A device's due samples in messages of at most ``batch_max``, each with its last stamp."""
    for first in range(0, len(samples), batch_max):
        chunk = samples.take(slice(first, first + batch_max))
        yield int(chunk.ts_s[-1]), Message(topic, encode(chunk, tz), len(chunk))


def _in_time_order(
    vitals: Iterator[tuple[int, Message]], *chunks: Iterator[tuple[int, Message]]
) -> Iterator[Message]:
    """Merge by time; at a tie the vitals sample first (it summarises the minute just ended),
    then the waveforms in the order given."""
    tagged = [((t, 0, m) for t, m in vitals)]
    tagged += [((t, k, m) for t, m in c) for k, c in enumerate(chunks, start=1)]
    for _, _, message in heapq.merge(*tagged, key=lambda x: (x[0], x[1])):
        yield message
