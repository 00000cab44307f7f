"""Personal baselines: where a patient's own values usually lie, learnt one value at a time.

Behaviour-based risk asks "is this unusual *for this patient*?": a resting heart rate of 78 is
normal for one person and a fever for another. These are small streaming statistics in the style
of river's ``stats`` (``update`` / ``get``), seeded by nothing but the patient's own data, that
say nothing until they have seen enough (``min_count``) and can be snapshotted and restored so a
restart keeps them.

- ``RollingRobust``: median and MAD over the last ``window`` values (e.g. 28 nightly resting heart
  rates). Robust: one feverish night moves the median little and the MAD less (Hampel 1974;
  Leys et al. 2013 recommend median ± 3·MAD·1.4826 for outliers).
- ``Ewm``: exponentially weighted mean and variance, for signals sampled too often to keep a
  window (West 1979, "Updating mean and variance estimates"; Finch 2009 for the EW form).
- ``ByTimeOfDay``: one baseline per time-of-day bin, by wrapping rather than subclassing, where
  the circadian rhythm matters (heart rate, temperature).

>>> b = RollingRobust(window=5, min_count=3)
>>> for v in (60, 62, 61, 90, 59):
...     b.update(v)
>>> b.get()
Baseline(centre=61.0, scale=1.4826, count=5)
>>> round(b.z(70), 2)
6.07
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

#: MAD of a normal distribution times this is its standard deviation (1 / Φ⁻¹(3/4)).
MAD_TO_SD = 1.4826


@dataclass(frozen=True, slots=True)
class Baseline:
    """A patient's usual value (``centre``) and how much it usually varies (``scale``, as an SD)."""

    centre: float
    scale: float
    count: int


class RollingRobust:
    """Median and MAD of the last ``window`` values; nothing until ``min_count`` were seen.

    ``min_scale`` keeps z-scores finite when a patient's values have been identical (a device that
    rounds to whole beats can give a MAD of 0 for a week).
    """

    def __init__(self, window: int = 28, min_count: int = 7, min_scale: float = 1e-9) -> None:
        if window < 1 or not 1 <= min_count <= window:
            raise ValueError(f"need 1 <= min_count <= window, got {min_count} and {window}")
        self.window = window
        self.min_count = min_count
        self.min_scale = min_scale
        self._values: deque[float] = deque(maxlen=window)

    def update(self, value: float) -> None:
        """Learn one value; NaN (no measurement that day) is ignored, not counted."""
        if math.isfinite(value):
            self._values.append(float(value))

    def get(self) -> Baseline | None:
        if len(self._values) < self.min_count:
            return None
        values = np.fromiter(self._values, dtype=np.float64, count=len(self._values))
        centre = float(np.median(values))
        mad = float(np.median(np.abs(values - centre)))
        return Baseline(centre, max(mad * MAD_TO_SD, self.min_scale), len(values))

    def z(self, value: float) -> float | None:
        """How many (robust) SDs ``value`` lies from the baseline; None while still learning."""
        b = self.get()
        return None if b is None else (value - b.centre) / b.scale

    def snapshot(self) -> dict[str, Any]:
        return {"kind": "rolling_robust", "window": self.window, "min_count": self.min_count,
                "min_scale": self.min_scale, "values": list(self._values)}  # fmt: skip

    @classmethod
    def restore(cls, state: dict[str, Any]) -> RollingRobust:
        b = cls(int(state["window"]), int(state["min_count"]), float(state["min_scale"]))
        for v in state["values"]:
            b.update(float(v))
        return b


class Ewm:
    """Exponentially weighted mean and variance with smoothing ``alpha`` (0 < alpha <= 1).

    The same recurrence as ``pandas.Series.ewm(alpha=alpha, adjust=False)`` for the mean; the
    variance is the exponentially weighted (population) variance of Finch 2009, eq. 143.
    """

    def __init__(self, alpha: float, min_count: int = 10) -> None:
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self.min_count = min_count
        self.count = 0
        self.mean = math.nan
        self.var = 0.0

    def update(self, value: float) -> None:
        if not math.isfinite(value):
            return
        self.count += 1
        if self.count == 1:
            self.mean = float(value)
            return
        diff = value - self.mean
        incr = self.alpha * diff
        self.mean += incr
        self.var = (1 - self.alpha) * (self.var + diff * incr)

    def get(self) -> Baseline | None:
        if self.count < self.min_count:
            return None
        return Baseline(self.mean, math.sqrt(self.var), self.count)

    def snapshot(self) -> dict[str, Any]:
        return {"kind": "ewm", "alpha": self.alpha, "min_count": self.min_count,
                "count": self.count, "mean": self.mean, "var": self.var}  # fmt: skip

    @classmethod
    def restore(cls, state: dict[str, Any]) -> Ewm:
        e = cls(float(state["alpha"]), int(state["min_count"]))
        e.count, e.mean, e.var = int(state["count"]), float(state["mean"]), float(state["var"])
        return e


class ByTimeOfDay:
    """One baseline per ``bins`` equal slices of the day, for values with a daily rhythm."""

    def __init__(self, make: Callable[[], RollingRobust], bins: int = 4) -> None:
        if not 1 <= bins <= 24:
            raise ValueError(f"bins must be 1..24, got {bins}")
        self.bins = bins
        self._make = make
        self._parts = [make() for _ in range(bins)]

    def _bin(self, hour: float) -> int:
        return int((hour % 24) * self.bins // 24)

    def update(self, value: float, *, hour: float) -> None:
        """Learn ``value`` measured at local ``hour`` (0-24, fractional)."""
        self._parts[self._bin(hour)].update(value)

    def get(self, *, hour: float) -> Baseline | None:
        return self._parts[self._bin(hour)].get()

    def snapshot(self) -> dict[str, Any]:
        return {"kind": "by_time_of_day", "bins": self.bins,
                "parts": [p.snapshot() for p in self._parts]}  # fmt: skip

    def restore_parts(self, state: dict[str, Any]) -> None:
        """Load a snapshot's parts (the factory is code, so it is not part of the snapshot)."""
        if int(state["bins"]) != self.bins:
            raise ValueError(f"snapshot has {state['bins']} bins, this baseline {self.bins}")
        self._parts = [RollingRobust.restore(p) for p in state["parts"]]
