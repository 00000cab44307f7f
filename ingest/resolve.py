"""Attribute readings to patients by the device's assignment at each reading's event time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from signals.vitals import Readings
from storage.assignments import Assignment

_FOREVER = np.iinfo(np.int64).max


def _us(a: Assignment) -> tuple[int, int]:
    start = int(a.valid_from.timestamp() * 1_000_000)
    end = _FOREVER if a.valid_until is None else int(a.valid_until.timestamp() * 1_000_000)
    return start, end


@dataclass(frozen=True, slots=True)
class PatientInfo:
    ward: str
    spo2_scale: int


class Resolver:
    """An immutable snapshot of assignments; ingest swaps in a new one when enrolments change."""

    def __init__(self, assignments: Sequence[Assignment]) -> None:
        self._by_device: dict[str, list[tuple[int, int, str]]] = {}
        self.patients: dict[str, PatientInfo] = {}
        for a in assignments:
            start, end = _us(a)
            self._by_device.setdefault(a.device_id, []).append((start, end, a.patient_id))
            self.patients[a.patient_id] = PatientInfo(a.ward, a.spo2_scale)

    def knows(self, device_id: str) -> bool:
        return device_id in self._by_device

    def resolve(self, batch: Readings) -> tuple[Readings, npt.NDArray[np.bool_]]:
        """Fill ``patient_id``; the mask marks rows whose device had no assignment at that time."""
        patient = np.full(len(batch), "", dtype=object)
        if len(batch):
            devices, inverse = np.unique(batch.device_id.astype(str), return_inverse=True)
            order = np.argsort(inverse, kind="stable")  # rows grouped by device, one sort
            bounds = np.searchsorted(inverse[order], np.arange(len(devices) + 1))
            for d, device in enumerate(devices.tolist()):
                rows = order[bounds[d] : bounds[d + 1]]
                ts = batch.ts_us[rows]
                for start, end, patient_id in self._by_device.get(device, ()):
                    patient[rows[(ts >= start) & (ts < end)]] = patient_id
        return batch.with_patients(patient), patient == ""
