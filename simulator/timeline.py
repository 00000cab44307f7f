"""Map wall-clock time to simulated event time, and say which fields each sample carries.

The one rule: an event timestamp never runs ahead of the wall clock, because ingest quarantines
readings from the future. A run therefore plays the *past* fast and meets the present:

* bounded run (``minutes`` M at ``speed`` S >= 1): simulated time spans M·S minutes and ends at the
  wall clock exactly when the run ends, so it starts at ``now - M·(S-1)`` minutes (the wall clock
  itself moves on M minutes meanwhile). With S < 1 (slow motion) it starts at ``now`` and lags
  ever further behind.
* unbounded run (``minutes`` None): starts ``history`` (default 6 h) in the past, plays at S until
  it catches up with the wall clock after ``history / (S - 1)`` wall seconds, then goes on at
  speed 1 (live). With S <= 1 it never catches up and stays ``history`` (or more) behind.

All times here are float seconds: ``elapsed_s`` on the wall clock since the run began, ``event_s``
since the Unix epoch. Pure: ``now`` is passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import numpy.typing as npt

#: Default amount of past a live (unbounded) run plays before reaching the present.
DEFAULT_HISTORY = timedelta(hours=6)

#: One sample per device per simulated minute.
SAMPLE_INTERVAL_S = 60


@dataclass(frozen=True, slots=True)
class Cadence:
    """How often, in samples (minutes), a field is present; the rest ride on every sample.

    Heart rate, SpO2, respiratory rate, steps and the worn flag come every minute, as wrist
    devices used on virtual wards report them (e.g. minute-level PPG summaries); temperature and
    battery change slowly and are sent less often; blood pressure comes from a separate cuff the
    patient uses every few hours.
    """

    temperature_every: int = 5
    battery_every: int = 15
    blood_pressure_every: int = 240


CADENCE = Cadence()


def due(minute: npt.NDArray[np.int64], every: int, phase: int) -> npt.NDArray[np.bool_]:
    """Which of these minute indices carry a field sent every ``every`` minutes at ``phase``."""
    result: npt.NDArray[np.bool_] = (minute - phase) % every == 0
    return result


def sample_times(lo_s: int, hi_s: int, offset_s: int) -> npt.NDArray[np.int64]:
    """Sample timestamps ``m·60 + offset_s`` (m an integer minute index) in ``[lo_s, hi_s)``."""
    first = -((offset_s - lo_s) // SAMPLE_INTERVAL_S)  # ceil((lo - offset) / 60)
    stop = -((offset_s - hi_s) // SAMPLE_INTERVAL_S)
    minutes = np.arange(first, max(first, stop), dtype=np.int64)
    return minutes * SAMPLE_INTERVAL_S + offset_s


@dataclass(frozen=True, slots=True)
class Timeline:
    """The event-time schedule of one run; build it with :meth:`plan`.

    >>> t = Timeline.plan(now_s=1_000_000.0, speed=60, minutes=10)
    >>> t.event_at(0.0), t.event_at(600.0)  # 10 wall minutes cover 10 simulated hours
    (964600.0, 1000600.0)
    """

    wall_start_s: float
    event_start_s: float
    speed: float
    duration_s: float | None  # wall seconds of a bounded run; None runs until stopped

    @classmethod
    def plan(
        cls,
        *,
        now_s: float,
        speed: float,
        minutes: float | None,
        history: timedelta = DEFAULT_HISTORY,
    ) -> Timeline:
        """Schedule a run starting at wall time ``now_s``; see the module docstring."""
        if not (math.isfinite(speed) and speed > 0):
            raise ValueError(f"speed must be a positive finite number, got {speed!r}")
        if minutes is None:
            history_s = history.total_seconds()
            if history_s < 0:
                raise ValueError("history must not be negative")
            return cls(now_s, now_s - history_s, float(speed), None)
        if not (math.isfinite(minutes) and minutes > 0):
            raise ValueError(f"minutes must be positive, got {minutes!r}")
        duration_s = minutes * 60.0
        lead_s = duration_s * max(speed - 1.0, 0.0)
        return cls(now_s, now_s - lead_s, float(speed), duration_s)

    @property
    def event_end_s(self) -> float | None:
        """Event time at the end of a bounded run (the wall clock then, for speed >= 1)."""
        if self.duration_s is None:
            return None
        return self.event_at(self.duration_s)

    @property
    def catch_up_s(self) -> float | None:
        """Wall seconds after which event time equals the wall clock, or None if it never does."""
        lag_s = self.wall_start_s - self.event_start_s
        if lag_s <= 0:
            return 0.0
        if self.speed <= 1.0:
            return None
        at = lag_s / (self.speed - 1.0)
        if self.duration_s is not None and at > self.duration_s * (1 + 1e-9):
            return None
        return at

    def event_at(self, elapsed_s: float) -> float:
        """Event time when ``elapsed_s`` wall seconds have passed since the run began."""
        elapsed_s = max(elapsed_s, 0.0)
        if self.duration_s is not None:
            elapsed_s = min(elapsed_s, self.duration_s)
        event_s = self.event_start_s + self.speed * elapsed_s
        # After catching up the run is live; min() also absorbs float rounding at the crossover.
        return min(event_s, self.wall_start_s + elapsed_s)

    def elapsed_at(self, event_s: float) -> float | None:
        """Wall seconds after which event time reaches ``event_s``; None if the run ends first."""
        if event_s <= self.event_start_s:
            return 0.0
        fast_s = (event_s - self.event_start_s) / self.speed
        live_s = event_s - self.wall_start_s
        at = max(fast_s, live_s)  # inverse of the min() in event_at
        if self.duration_s is not None and at > self.duration_s:
            return None
        return at
