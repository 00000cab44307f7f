"""The known set of readings a fault run publishes, and the keys it expects to find stored.

Every reading is fixed by (device, message, sample, metric): its event time is whole seconds after
``t0_s`` and its value a function of its position, so the expected set (and each value) is
computed rather than recorded, for 100,000 readings as for 10 million.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import orjson

from signals.vitals import Metric

# Two NEWS2 inputs, so every batch is also scored and run through the alert rules as in production.
METRICS = (Metric.HEART_RATE, Metric.SPO2)


@dataclass(frozen=True, slots=True)
class Workload:
    """``devices`` devices, each publishing ``messages_per_device`` messages of samples."""

    run_id: str
    devices: int
    messages_per_device: int
    samples_per_message: int
    t0_s: int  # epoch seconds of every device's first sample

    @property
    def messages(self) -> int:
        return self.devices * self.messages_per_device

    @property
    def readings_per_message(self) -> int:
        return self.samples_per_message * len(METRICS)

    @property
    def readings(self) -> int:
        return self.messages * self.readings_per_message

    @property
    def device_prefix(self) -> str:
        return f"flt-{self.run_id}-"

    def device_id(self, device: int) -> str:
        return f"{self.device_prefix}{device:05d}"

    def topic(self, device: int) -> str:
        return f"wardwatch/v1/devices/{self.device_id(device)}/vitals"

    def payload(self, device: int, message: int) -> bytes:
        """One message: ``samples_per_message`` samples one second apart, epoch-second times."""
        first = message * self.samples_per_message
        return orjson.dumps(
            [
                {
                    "ts": self.t0_s + second,
                    "heart_rate": float(heart_rate(device, second)),
                    "spo2": float(spo2(device, second)),
                }
                for second in range(first, first + self.samples_per_message)
            ]
        )

    def expected(self) -> tuple[np.ndarray, np.ndarray]:
        """Sorted keys (see ``key``) of every reading published, and each one's value."""
        seconds = np.arange(self.messages_per_device * self.samples_per_message, dtype=np.int64)
        keys, values = [], []
        for device in range(self.devices):
            keys.append(key(device, int(Metric.HEART_RATE), seconds))
            values.append(heart_rate(device, seconds))
            keys.append(key(device, int(Metric.SPO2), seconds))
            values.append(spo2(device, seconds))
        all_keys = np.concatenate(keys)
        order = np.argsort(all_keys)
        return all_keys[order], np.concatenate(values).astype(np.float64)[order]

    def to_json(self) -> str:
        return orjson.dumps(dataclasses.asdict(self)).decode()

    @classmethod
    def from_json(cls, text: str) -> Workload:
        return cls(**orjson.loads(text))


def heart_rate(device: int, second: np.ndarray | int) -> np.ndarray | int:
    return 50 + (device * 7 + second) % 100  # 50-149 bpm: plausible, and NEWS2 scores vary


def spo2(device: int, second: np.ndarray | int) -> np.ndarray | int:
    return 88 + (device + second) % 13  # 88-100 %


def key(device: int | np.ndarray, metric: int | np.ndarray, second: int | np.ndarray) -> np.ndarray:
    """One int64 per reading: device, metric and event second packed, for set arithmetic."""
    return (np.int64(device) * 16 + metric) << 32 | np.asarray(second, dtype=np.int64)


def unpack(k: int) -> tuple[int, Metric, int]:
    """(device index, metric, seconds after t0) of a key."""
    return (k >> 32) // 16, Metric((k >> 32) % 16), k & 0xFFFFFFFF
