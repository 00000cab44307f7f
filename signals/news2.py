"""Score the National Early Warning Score 2 (NEWS2) exactly as the RCP chart says.

Source: Royal College of Physicians. National Early Warning Score (NEWS) 2: Standardising the
assessment of acute-illness severity in the NHS. Updated report of a working party. London: RCP,
2017. Chart 1 (the scoring system) gives the bands below; Chart 2 (thresholds and triggers) the
clinical risk. See docs/news2.md.

Wearables report real numbers (temperature 38.05 °C, pulse 90.6/min) while the chart's bands are
written at the resolution nurses record: whole numbers for respiration, SpO2, blood pressure and
pulse, one decimal for temperature. The bands are contiguous at that resolution, so each reading
is first rounded half up to it (pulse 90.6 → 91 scores 1; 38.05 °C → 38.1 scores 1). Rounding uses
the shortest decimal text of the value, i.e. what the device sent, not the nearest binary double
(which for 38.05 is 38.04999…).

A missing parameter is never treated as normal: it is left out of ``scores`` and ``total`` and
named in ``missing``, so ``total`` and ``risk`` are a floor that missing observations could only
raise. Zeros that monitors emit on sensor dropout are the caller's to drop (they are outside
``signals.vitals.PLAUSIBLE``); passed in, they score as the extreme values they claim to be.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal
from types import MappingProxyType
from typing import Final, Literal, TypeAlias

import numpy as np

from signals.vitals import CONSCIOUSNESS_LEVELS, Metric

Risk = Literal["low", "low-medium", "medium", "high"]

#: The seven scored parameters in the chart's row order (RCP NEWS2 2017, Chart 1).
PARAMETERS: Final[tuple[str, ...]] = (
    "resp_rate",
    "spo2",
    "on_oxygen",
    "systolic_bp",
    "heart_rate",
    "consciousness",
    "temperature",
)

#: A chart cell: (lowest, highest, points), inclusive, in chart units; None is open-ended.
Band: TypeAlias = tuple[int | None, int | None, int]

# RCP NEWS2 2017, Chart 1, row "Respiration rate (per minute)".
RESP_RATE_BANDS: Final[tuple[Band, ...]] = (
    (None, 8, 3),
    (9, 11, 1),
    (12, 20, 0),
    (21, 24, 2),
    (25, None, 3),
)
# RCP NEWS2 2017, Chart 1, row "SpO2 Scale 1 (%)".
SPO2_SCALE_1_BANDS: Final[tuple[Band, ...]] = (
    (None, 91, 3),
    (92, 93, 2),
    (94, 95, 1),
    (96, None, 0),
)
# RCP NEWS2 2017, Chart 1, row "SpO2 Scale 2 (%)" for a patient breathing air: ≥93 on air scores 0.
SPO2_SCALE_2_AIR_BANDS: Final[tuple[Band, ...]] = (
    (None, 83, 3),
    (84, 85, 2),
    (86, 87, 1),
    (88, None, 0),
)
# RCP NEWS2 2017, Chart 1, row "SpO2 Scale 2 (%)" on oxygen: above the 88–92 % target scores again.
SPO2_SCALE_2_OXYGEN_BANDS: Final[tuple[Band, ...]] = (
    (None, 83, 3),
    (84, 85, 2),
    (86, 87, 1),
    (88, 92, 0),
    (93, 94, 1),
    (95, 96, 2),
    (97, None, 3),
)
# RCP NEWS2 2017, Chart 1, row "Air or oxygen?": oxygen 2, air 0.
OXYGEN_POINTS: Final[int] = 2
# RCP NEWS2 2017, Chart 1, row "Systolic blood pressure (mmHg)".
SYSTOLIC_BP_BANDS: Final[tuple[Band, ...]] = (
    (None, 90, 3),
    (91, 100, 2),
    (101, 110, 1),
    (111, 219, 0),
    (220, None, 3),
)
# RCP NEWS2 2017, Chart 1, row "Pulse (per minute)".
HEART_RATE_BANDS: Final[tuple[Band, ...]] = (
    (None, 40, 3),
    (41, 50, 1),
    (51, 90, 0),
    (91, 110, 1),
    (111, 130, 2),
    (131, None, 3),
)
# RCP NEWS2 2017, Chart 1, row "Consciousness": Alert 0; new Confusion, Voice, Pain, Unresponsive 3.
CONSCIOUSNESS_POINTS: Final[Mapping[str, int]] = MappingProxyType(
    {"A": 0, "C": 3, "V": 3, "P": 3, "U": 3}
)
# RCP NEWS2 2017, Chart 1, row "Temperature (°C)", in tenths of a degree (the chart's resolution).
TEMPERATURE_TENTHS_BANDS: Final[tuple[Band, ...]] = (
    (None, 350, 3),
    (351, 360, 1),
    (361, 380, 0),
    (381, 390, 1),
    (391, None, 2),
)
TEMPERATURE_DECIMALS: Final[int] = 1

# RCP NEWS2 2017, Chart 2: aggregate 5–6 is medium, 7 or more high; a 3 in any single parameter
# (the "red score") raises a lower aggregate to low-medium.
MEDIUM_FROM: Final[int] = 5
HIGH_FROM: Final[int] = 7
RED_SCORE: Final[int] = 3

# Enough digits to round any finite double exactly (the largest has 309 integer digits).
_EXACT: Final[Context] = Context(prec=400, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class News2:
    """A NEWS2 score that states which parameters it could not score.

    Build it with :func:`news2` or :meth:`from_scores`; the constructor checks that ``total``,
    ``risk`` and ``missing`` agree with ``scores`` so an inconsistent score cannot exist.
    """

    total: int
    risk: Risk
    scores: Mapping[str, int]
    missing: tuple[str, ...]

    def __post_init__(self) -> None:
        unknown = set(self.scores) - set(PARAMETERS)
        if unknown:
            raise ValueError(f"scores must name only {PARAMETERS}, got {sorted(unknown)}")
        scores = {name: self.scores[name] for name in PARAMETERS if name in self.scores}
        for name, points in scores.items():
            if type(points) is not int or not 0 <= points <= RED_SCORE:
                raise ValueError(f"{name} points must be an int 0..3, got {points!r}")
        expected_missing = tuple(name for name in PARAMETERS if name not in scores)
        if tuple(self.missing) != expected_missing:
            raise ValueError(f"missing must be {expected_missing}, got {self.missing!r}")
        total = sum(scores.values())
        if self.total != total:
            raise ValueError(f"total must be the sum of the scores ({total}), got {self.total!r}")
        risk = _risk(total, red_score=RED_SCORE in scores.values())
        if self.risk != risk:
            raise ValueError(f"risk for total {total} must be {risk!r}, got {self.risk!r}")
        # Frozen only stops rebinding; the proxy also stops callers editing the scores in place.
        object.__setattr__(self, "scores", MappingProxyType(scores))
        object.__setattr__(self, "missing", expected_missing)

    @classmethod
    def from_scores(cls, scores: Mapping[str, int]) -> News2:
        """Derive total, risk and missing from the points of the parameters that were scored."""
        total = sum(scores.values())
        return cls(
            total=total,
            risk=_risk(total, red_score=RED_SCORE in scores.values()),
            scores=scores,
            missing=tuple(name for name in PARAMETERS if name not in scores),
        )

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def single_param_3(self) -> bool:
        """Whether any one parameter scored 3, which Chart 2 escalates on its own."""
        return RED_SCORE in self.scores.values()


def news2(
    *,
    resp_rate: float | None,
    spo2: float | None,
    on_oxygen: bool | None,
    temperature: float | None,
    systolic_bp: float | None,
    heart_rate: float | None,
    consciousness: str | None,
    spo2_scale: int = 1,
) -> News2:
    """Score one set of observations on the RCP NEWS2 2017 chart; ``None`` means not observed.

    Numbers are rounded half up to the chart's resolution before banding (module docstring).
    ``spo2_scale=2`` is for patients with hypercapnic respiratory failure whose prescribed target
    is 88–92 %, a clinician's decision recorded elsewhere. On Scale 2 an SpO2 of 93 % or more
    cannot be scored without knowing air or oxygen, so it is reported missing in that case.

    >>> s = news2(resp_rate=22, spo2=95, on_oxygen=False, temperature=38.05,
    ...           systolic_bp=120, heart_rate=90.6, consciousness="A")
    >>> s.total, s.risk, s.scores["temperature"], s.complete
    (5, 'medium', 1, True)
    """
    scale = _checked_scale(spo2_scale)
    oxygen = _checked_oxygen(on_oxygen)
    scores: dict[str, int] = {}
    if resp_rate is not None:
        scores["resp_rate"] = _band_points(RESP_RATE_BANDS, _chart_units("resp_rate", resp_rate))
    if spo2 is not None:
        spo2_pct = _chart_units("spo2", spo2)
        if spo2 > 100:
            raise ValueError(f"spo2 must be a percentage <= 100, got {spo2!r}")
        spo2_points = _spo2_points(spo2_pct, scale=scale, on_oxygen=oxygen)
        if spo2_points is not None:
            scores["spo2"] = spo2_points
    if oxygen is not None:
        scores["on_oxygen"] = OXYGEN_POINTS if oxygen else 0
    if systolic_bp is not None:
        scores["systolic_bp"] = _band_points(
            SYSTOLIC_BP_BANDS, _chart_units("systolic_bp", systolic_bp)
        )
    if heart_rate is not None:
        scores["heart_rate"] = _band_points(
            HEART_RATE_BANDS, _chart_units("heart_rate", heart_rate)
        )
    if consciousness is not None:
        scores["consciousness"] = CONSCIOUSNESS_POINTS[_checked_acvpu(consciousness)]
    if temperature is not None:
        tenths = _chart_units("temperature", temperature, decimals=TEMPERATURE_DECIMALS)
        scores["temperature"] = _band_points(TEMPERATURE_TENTHS_BANDS, tenths)
    return News2.from_scores(scores)


# The metrics NEWS2 reads and the parameter each one feeds; other metrics are ignored.
_PARAMETER_OF: Final[Mapping[Metric, str]] = MappingProxyType(
    {
        Metric.RESP_RATE: "resp_rate",
        Metric.SPO2: "spo2",
        Metric.ON_OXYGEN: "on_oxygen",
        Metric.SYSTOLIC_BP: "systolic_bp",
        Metric.HEART_RATE: "heart_rate",
        Metric.CONSCIOUSNESS: "consciousness",
        Metric.TEMPERATURE: "temperature",
    }
)


def news2_from_latest(
    latest: Mapping[Metric, tuple[int, float]],
    *,
    at_us: int,
    freshness_us: int,
    spo2_scale: int = 1,
) -> News2:
    """Score a patient at ``at_us`` from each metric's latest ``(event time µs, value)``.

    A value counts only if ``at_us - freshness_us <= time <= at_us`` (both ends inclusive): an old
    value no longer describes the patient, and one from after ``at_us`` did not exist yet when
    replaying. Either way the parameter is reported missing rather than assumed normal.
    ``Metric.ON_OXYGEN`` is 1.0 (oxygen) or 0.0 (air); ``Metric.CONSCIOUSNESS`` indexes
    ``CONSCIOUSNESS_LEVELS``.
    """
    if freshness_us < 0:
        raise ValueError(f"freshness_us must be >= 0, got {freshness_us!r}")
    oldest_us = at_us - freshness_us
    fresh: dict[str, float] = {}
    for metric, parameter in _PARAMETER_OF.items():
        sample = latest.get(metric)
        if sample is not None and oldest_us <= sample[0] <= at_us:
            fresh[parameter] = sample[1]
    oxygen = fresh.get("on_oxygen")
    level = fresh.get("consciousness")
    return news2(
        resp_rate=fresh.get("resp_rate"),
        spo2=fresh.get("spo2"),
        on_oxygen=None if oxygen is None else _oxygen_from_code(oxygen),
        temperature=fresh.get("temperature"),
        systolic_bp=fresh.get("systolic_bp"),
        heart_rate=fresh.get("heart_rate"),
        consciousness=None if level is None else _acvpu_from_code(level),
        spo2_scale=spo2_scale,
    )


def _risk(total: int, *, red_score: bool) -> Risk:
    if total >= HIGH_FROM:
        return "high"
    if total >= MEDIUM_FROM:
        return "medium"
    if red_score:
        return "low-medium"
    return "low"


def _spo2_points(spo2_pct: int, *, scale: int, on_oxygen: bool | None) -> int | None:
    if scale == 1:
        return _band_points(SPO2_SCALE_1_BANDS, spo2_pct)
    if on_oxygen:
        return _band_points(SPO2_SCALE_2_OXYGEN_BANDS, spo2_pct)
    if on_oxygen is None and spo2_pct >= 93:
        # 93 % or more scores 0 on air but 1-3 on oxygen: assuming air could understate it.
        return None
    return _band_points(SPO2_SCALE_2_AIR_BANDS, spo2_pct)


def _band_points(bands: tuple[Band, ...], value: int) -> int:
    for lowest, highest, points in bands:
        if (lowest is None or value >= lowest) and (highest is None or value <= highest):
            return points
    raise AssertionError(f"chart bands are not contiguous at {value}")  # pragma: no cover


def _chart_units(name: str, value: float, *, decimals: int = 0) -> int:
    """Round half up to the chart's resolution, in units of 10**-decimals."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if isinstance(value, numbers.Integral):
        if value < 0:
            raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        return int(value) * 10**decimals
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    # str() of a float gives the shortest text that round-trips, i.e. the decimal the device sent.
    text = str(value) if isinstance(value, float | np.floating) else repr(float(value))
    scaled = Decimal(text).scaleb(decimals, context=_EXACT)
    return int(scaled.quantize(Decimal(1), context=_EXACT))


def _checked_scale(spo2_scale: int) -> int:
    valid = isinstance(spo2_scale, numbers.Integral) and not isinstance(spo2_scale, bool)
    if not valid or spo2_scale not in (1, 2):
        raise ValueError(f"spo2_scale must be 1 or 2, got {spo2_scale!r}")
    return int(spo2_scale)


def _checked_oxygen(on_oxygen: bool | None) -> bool | None:
    if on_oxygen is None or isinstance(on_oxygen, bool):
        return on_oxygen
    # numpy booleans and exact 0/1 integers are unambiguous; anything else is a caller bug.
    if isinstance(on_oxygen, np.bool_) or (
        isinstance(on_oxygen, numbers.Integral) and on_oxygen in (0, 1)
    ):
        return bool(on_oxygen)
    raise ValueError(f"on_oxygen must be True (oxygen), False (air) or None, got {on_oxygen!r}")


def _checked_acvpu(consciousness: str) -> str:
    if isinstance(consciousness, str) and consciousness.upper() in CONSCIOUSNESS_POINTS:
        return consciousness.upper()
    raise ValueError(
        f"consciousness must be one of {CONSCIOUSNESS_LEVELS} (ACVPU), got {consciousness!r}"
    )


def _oxygen_from_code(code: float) -> bool:
    if code not in (0.0, 1.0):
        raise ValueError(f"Metric.ON_OXYGEN must be 0.0 (air) or 1.0 (oxygen), got {code!r}")
    return code == 1.0


def _acvpu_from_code(code: float) -> str:
    if not (math.isfinite(code) and code == int(code) and 0 <= code < len(CONSCIOUSNESS_LEVELS)):
        raise ValueError(f"Metric.CONSCIOUSNESS must be an index 0..4 into ACVPU, got {code!r}")
    return CONSCIOUSNESS_LEVELS[int(code)]
