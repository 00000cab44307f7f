"""The domain vocabulary every stage shares: metrics, their units and ranges, and columnar batches.

Kept in ``signals`` because it is the pure core: ingest, storage and alerts all import it, and it
imports nothing of ours and no I/O library.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


class Metric(enum.IntEnum):
    """A measured quantity; the integer is its stable storage code (never renumber)."""

    HEART_RATE = 1  # beats/min
    SPO2 = 2  # % oxygen saturation
    RESP_RATE = 3  # breaths/min
    TEMPERATURE = 4  # °C
    SYSTOLIC_BP = 5  # mmHg
    DIASTOLIC_BP = 6  # mmHg
    STEPS = 7  # count since the previous sample
    ON_OXYGEN = 8  # 1 = supplemental oxygen, 0 = air
    CONSCIOUSNESS = 9  # ACVPU as 0..4 (see CONSCIOUSNESS_LEVELS)
    BATTERY = 10  # % charge
    WORN = 11  # 1 = on body, 0 = off body
    RR_INTERVAL = 12  # ms between two successive beats, stamped at the second beat
    SLEEP_MINUTES = 13  # minutes asleep in the episode or interval ending at ts
    ACTIVITY_MG = 14  # mean ENMO (mg) of the minute ending at ts, from raw acceleration
    INACTIVE = 15  # 1 = the minute ending at ts is in a sustained inactivity bout (signals.motion)

    @property
    def wire_name(self) -> str:
        """Name of the field on the wire (docs/wire-format.md)."""
        return _WIRE_NAMES[self]

    @classmethod
    def from_wire(cls, name: str) -> Metric:
        return _BY_WIRE_NAME[name]


_WIRE_NAMES: dict[Metric, str] = {
    Metric.HEART_RATE: "heart_rate",
    Metric.SPO2: "spo2",
    Metric.RESP_RATE: "resp_rate",
    Metric.TEMPERATURE: "temperature",
    Metric.SYSTOLIC_BP: "systolic_bp",
    Metric.DIASTOLIC_BP: "diastolic_bp",
    Metric.STEPS: "steps",
    Metric.ON_OXYGEN: "on_oxygen",
    Metric.CONSCIOUSNESS: "consciousness",
    Metric.BATTERY: "battery",
    Metric.WORN: "worn",
    Metric.RR_INTERVAL: "rr_intervals_ms",
    Metric.SLEEP_MINUTES: "sleep_minutes",
    Metric.ACTIVITY_MG: "activity_mg",
    Metric.INACTIVE: "inactive",
}
_BY_WIRE_NAME = {v: k for k, v in _WIRE_NAMES.items()}

#: ACVPU scale (RCP NEWS2 2017): Alert, new Confusion, Voice, Pain, Unresponsive; stored as 0..4.
CONSCIOUSNESS_LEVELS: tuple[str, ...] = ("A", "C", "V", "P", "U")


@dataclass(frozen=True, slots=True)
class PlausibleRange:
    """Inclusive bounds outside which a value is physically impossible or a sensor fault.

    These are deliberately wide: they reject nonsense (heart rate 0 or 400, SpO2 above 100), never
    a clinically alarming but real value, which must reach the nurse.
    """

    low: float
    high: float
    unit: str

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


#: Sources: survivable human extremes (e.g. HR 20-300 covers complete heart block to infant SVT;
#: core temperature 25-45 °C covers deep hypothermia to fatal hyperthermia). SpO2 below 50 % is
#: beyond any pulse oximeter's calibrated range (ISO 80601-2-61 validates 70-100 %).
PLAUSIBLE: dict[Metric, PlausibleRange] = {
    Metric.HEART_RATE: PlausibleRange(20, 300, "beats/min"),
    Metric.SPO2: PlausibleRange(50, 100, "%"),
    Metric.RESP_RATE: PlausibleRange(1, 80, "breaths/min"),
    Metric.TEMPERATURE: PlausibleRange(25, 45, "°C"),
    Metric.SYSTOLIC_BP: PlausibleRange(40, 300, "mmHg"),
    Metric.DIASTOLIC_BP: PlausibleRange(15, 200, "mmHg"),
    Metric.STEPS: PlausibleRange(0, 100_000, "steps"),
    Metric.ON_OXYGEN: PlausibleRange(0, 1, "bool"),
    Metric.CONSCIOUSNESS: PlausibleRange(0, 4, "ACVPU"),
    Metric.BATTERY: PlausibleRange(0, 100, "%"),
    Metric.WORN: PlausibleRange(0, 1, "bool"),
    Metric.RR_INTERVAL: PlausibleRange(200, 3000, "ms"),
    Metric.SLEEP_MINUTES: PlausibleRange(0, 1440, "min"),  # a day holds 1440 minutes
    Metric.ACTIVITY_MG: PlausibleRange(0, 16_000, "mg"),  # ENMO within a ±16 g sensor's range
    Metric.INACTIVE: PlausibleRange(0, 1, "bool"),
}

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
I16 = npt.NDArray[np.int16]
F32 = npt.NDArray[np.float32]
Bools = npt.NDArray[np.bool_]
Strs = npt.NDArray[np.object_]


@dataclass(frozen=True, slots=True)
class Readings:
    """A columnar batch of readings: row i is one value of one metric from one device at one time.

    Times are integer microseconds since the Unix epoch, UTC, so that they sort, compare and
    deduplicate exactly; ``utc_offset_min`` keeps the offset the device reported (for display in the
    patient's local time). ``patient_id`` is empty until ingest resolves the device's assignment.
    """

    device_id: Strs
    patient_id: Strs
    metric: I16
    ts_us: I64
    value: F64
    utc_offset_min: I16
    received_us: I64

    def __len__(self) -> int:
        return int(self.ts_us.shape[0])

    @staticmethod
    def empty() -> Readings:
        return Readings(
            device_id=np.empty(0, dtype=object),
            patient_id=np.empty(0, dtype=object),
            metric=np.empty(0, dtype=np.int16),
            ts_us=np.empty(0, dtype=np.int64),
            value=np.empty(0, dtype=np.float64),
            utc_offset_min=np.empty(0, dtype=np.int16),
            received_us=np.empty(0, dtype=np.int64),
        )

    def take(self, index: npt.NDArray[np.bool_] | npt.NDArray[np.intp]) -> Readings:
        """Rows selected by a boolean mask or an index array."""
        return Readings(
            device_id=self.device_id[index],
            patient_id=self.patient_id[index],
            metric=self.metric[index],
            ts_us=self.ts_us[index],
            value=self.value[index],
            utc_offset_min=self.utc_offset_min[index],
            received_us=self.received_us[index],
        )

    @staticmethod
    def concat(parts: list[Readings]) -> Readings:
        if not parts:
            return Readings.empty()
        return Readings(
            device_id=np.concatenate([p.device_id for p in parts]),
            patient_id=np.concatenate([p.patient_id for p in parts]),
            metric=np.concatenate([p.metric for p in parts]),
            ts_us=np.concatenate([p.ts_us for p in parts]),
            value=np.concatenate([p.value for p in parts]),
            utc_offset_min=np.concatenate([p.utc_offset_min for p in parts]),
            received_us=np.concatenate([p.received_us for p in parts]),
        )

    def with_patients(self, patient_id: Strs) -> Readings:
        return Readings(
            device_id=self.device_id,
            patient_id=patient_id,
            metric=self.metric,
            ts_us=self.ts_us,
            value=self.value,
            utc_offset_min=self.utc_offset_min,
            received_us=self.received_us,
        )
