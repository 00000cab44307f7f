"""Waveforms and device status: what a wearable reports besides vital signs.

Kept in ``signals`` because beat detection, HRV and signal-quality checks will consume these types,
and ``alerts`` (which may import only ``signals``) will want the device's status; ingest builds
them and storage maps them to rows. Pure: numpy only, no I/O, no clock.

A chunk holds its samples as one float32 array, not one object per sample: a 25 Hz PPG is 90,000
samples per hour per device, and every consumer (filters, peak detection, storage as bytes) wants
the array. float32 keeps 24 significant bits, as many as the 16- to 24-bit converters in wearables
deliver, at half the size of float64.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import numpy as np

from signals.vitals import F32, I64

__all__ = [
    "MAX_CHUNK_S",
    "DeviceStatus",
    "Gap",
    "GapReason",
    "Joined",
    "WaveformChunk",
    "WaveformKind",
    "join_chunks",
]


#: Longest chunk a device may send, in seconds of samples: bounds the work and memory one message
#: can cause, and the window storage scans back when asked for the chunks overlapping a time.
MAX_CHUNK_S: Final = 60


class WaveformKind(enum.Enum):
    """A sampled signal; the value is its name on the wire and in storage (never rename)."""

    PPG = "ppg"  # photoplethysmogram, arbitrary units (the sensor's own scale)
    ECG = "ecg"  # electrocardiogram, millivolts
    ACCEL = "accel"  # accelerometer x, y, z, in g (9.81 m/s²)

    @property
    def channels(self) -> int:
        """Values per sample: 3 for the accelerometer's axes, 1 otherwise."""
        return 3 if self is WaveformKind.ACCEL else 1

    @property
    def unit(self) -> str:
        """The one unit the kind is stored in: a chunk in another unit is refused, not scaled."""
        return _UNITS[self]


_UNITS: Final = {WaveformKind.PPG: "au", WaveformKind.ECG: "mV", WaveformKind.ACCEL: "g"}


@dataclass(frozen=True, slots=True, eq=False)
class WaveformChunk:
    """A stretch of one signal from one device, sampled at a constant rate from ``start_us``.

    Sample ``i`` was taken at ``start_us + i / fs_hz`` seconds. ``values`` is float32 of shape
    ``(n,)`` for PPG and ECG and ``(n, 3)`` for the accelerometer (x, y, z in g). Times are integer
    microseconds since the Unix epoch, UTC, like every time in ``signals``.

    ``seq`` is the device's own message number, if it sends one (gap detection); ``received_us``
    is when ingest received the chunk, None for a chunk not received as such (a joined segment).
    The array is shared, not copied: treat it as read-only (storage hands out read-only arrays).
    Equality compares the samples; chunks are not hashable, as arrays are not.

    >>> c = WaveformChunk("ox-1", WaveformKind.PPG, 1_000_000, 25.0,
    ...                   np.zeros(50, dtype=np.float32), "au", None)
    >>> c.end_us, c.times_us()[:3].tolist()
    (3000000, [1000000, 1040000, 1080000])
    """

    device_id: str
    kind: WaveformKind
    start_us: int
    fs_hz: float
    values: F32
    unit: str
    seq: int | None
    received_us: int | None = None

    def __post_init__(self) -> None:
        # Self-validating, so a malformed chunk fails where it is made, not deep inside a filter.
        values, accel = self.values, self.kind is WaveformKind.ACCEL
        if values.dtype != np.float32:
            raise ValueError(f"values must be float32, not {values.dtype}")
        if values.ndim != (2 if accel else 1) or (accel and values.shape[1] != 3):
            want = "(n, 3)" if accel else "(n,)"
            raise ValueError(f"{self.kind.value} values must have shape {want}, not {values.shape}")
        if self.values.shape[0] == 0:
            raise ValueError("a chunk holds at least one sample")
        if not (np.isfinite(self.fs_hz) and self.fs_hz > 0):
            raise ValueError(f"fs_hz must be a positive number, not {self.fs_hz!r}")

    @property
    def n_samples(self) -> int:
        return int(self.values.shape[0])

    @property
    def end_us(self) -> int:
        """When the sample after the last one would be taken: where a contiguous chunk starts."""
        return self.start_us + round(self.n_samples * 1e6 / self.fs_hz)

    def times_us(self) -> I64:
        """Each sample's time, rounded to the microsecond."""
        offsets = np.rint(np.arange(self.n_samples, dtype=np.float64) * (1e6 / self.fs_hz))
        return self.start_us + offsets.astype(np.int64)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WaveformChunk):
            return NotImplemented
        return (
            (self.device_id, self.kind, self.start_us, self.fs_hz, self.unit, self.seq)
            == (other.device_id, other.kind, other.start_us, other.fs_hz, other.unit, other.seq)
            and self.received_us == other.received_us
            and np.array_equal(self.values, other.values)
        )

    __hash__ = None  # type: ignore[assignment]  # mutable array inside: not hashable


class GapReason(enum.Enum):
    """Why two chunks could not be joined into one continuous stream."""

    MISSING = "missing"  # samples are missing between them (lost, or the sensor was off)
    OVERLAP = "overlap"  # the later chunk starts before the earlier one ends (clock stepped)
    RATE_CHANGE = "rate change"  # the sampling rate changed: one array cannot hold both


@dataclass(frozen=True, slots=True)
class Gap:
    """A seam between two segments: the data before ends at ``after_us``, the next starts at
    ``before_us`` (earlier than ``after_us`` for an overlap)."""

    after_us: int
    before_us: int
    reason: GapReason

    @property
    def duration_us(self) -> int:
        """Length of the hole; negative for an overlap."""
        return self.before_us - self.after_us


@dataclass(frozen=True, slots=True)
class Joined:
    """Chunks of one device and kind joined into continuous segments, and the seams between."""

    segments: tuple[WaveformChunk, ...]  # in time order; one array each
    gaps: tuple[Gap, ...]  # len(segments) - 1 of them, gaps[i] between segments i and i + 1


def join_chunks(chunks: Iterable[WaveformChunk], *, tolerance_us: int | None = None) -> Joined:
    """Join chunks of one device and kind into as few continuous arrays as the data allows.

    Filters and beat detectors need an unbroken, evenly sampled array: run across a seam where
    samples are missing, they invent a beat or smear an artefact. So chunks are concatenated only
    when each starts where the segment so far ends, within ``tolerance_us`` (default half a sample
    period: device timestamps are rounded, but a whole missing sample is a gap). The check is
    against the segment's end computed from its sample count, so small timestamp errors cannot
    accumulate into drift. Every other seam is reported as a ``Gap``, never papered over.

    An exact repeat of a chunk (same start, rate and length: a redelivery) is dropped, the first
    kept. A joined segment carries the ``seq`` of its first chunk and no ``received_us``; a
    segment of one chunk is that chunk itself.

    >>> def ecg(start_s: int, seq: int) -> WaveformChunk:
    ...     ones = np.ones(250, np.float32)
    ...     return WaveformChunk("ox-1", WaveformKind.ECG, start_s * 10**6, 250.0, ones, "mV", seq)
    >>> joined = join_chunks([ecg(3, 4), ecg(0, 1), ecg(1, 2)])
    >>> [s.n_samples for s in joined.segments], joined.gaps[0].duration_us
    ([500, 250], 1000000)
    """
    ordered = sorted(chunks, key=lambda c: (c.start_us, -c.n_samples))
    if any(c.device_id != ordered[0].device_id or c.kind is not ordered[0].kind for c in ordered):
        raise ValueError("join_chunks takes the chunks of one device and one kind")
    runs: list[list[WaveformChunk]] = []  # each run becomes one segment
    gaps: list[Gap] = []
    run_n = 0  # samples in the last run
    for chunk in ordered:
        if runs:
            head, last = runs[-1][0], runs[-1][-1]
            if (chunk.start_us, chunk.fs_hz, chunk.n_samples) == (
                last.start_us,
                last.fs_hz,
                last.n_samples,
            ):
                continue  # redelivered
            end = head.start_us + round(run_n * 1e6 / head.fs_hz)
            tolerance = 0.5e6 / head.fs_hz if tolerance_us is None else tolerance_us
            if chunk.fs_hz == head.fs_hz and abs(chunk.start_us - end) <= tolerance:
                runs[-1].append(chunk)
                run_n += chunk.n_samples
                continue
            if chunk.fs_hz != head.fs_hz:
                reason = GapReason.RATE_CHANGE
            else:
                reason = GapReason.MISSING if chunk.start_us > end else GapReason.OVERLAP
            gaps.append(Gap(end, chunk.start_us, reason))
        runs.append([chunk])
        run_n = chunk.n_samples
    return Joined(tuple(_segment(run) for run in runs), tuple(gaps))


def _segment(run: list[WaveformChunk]) -> WaveformChunk:
    """One chunk holding a run of contiguous chunks' samples."""
    head = run[0]
    if len(run) == 1:
        return head
    values = np.concatenate([c.values for c in run], axis=0)
    return WaveformChunk(
        head.device_id, head.kind, head.start_us, head.fs_hz, values, head.unit, head.seq
    )


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """One status report of a device: its battery, whether it is worn, its firmware and clock.

    Every field but the time may be absent (None): a device reports what it knows. Status reports
    are rare (a few per device per hour), so they are plain objects, not columns.
    ``clock_offset_s`` is the device clock minus the time the report was received: positive means
    the device is ahead. It includes the transport delay (normally well under a second), so only
    offsets of seconds or more mean anything.
    """

    device_id: str
    ts_us: int
    battery_pct: float | None
    worn: bool | None
    firmware: str | None
    clock_offset_s: float | None
    seq: int | None
    received_us: int
