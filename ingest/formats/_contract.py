"""What a format module hands the codec: a converted measurement, or a DecodeError.

``DecodeError`` and ``REASONS`` live here, below both the codec and the format modules, so that
either can raise one without an import cycle. Import them from ``ingest.codec``, their public home.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: Closed set of reject codes. Low cardinality on purpose: it is a Prometheus label.
#: "unknown device" is applied by ingest (device→patient assignment), never by the codec.
REASONS: Final = frozenset(
    {
        "bad topic",
        "payload too large",
        "invalid utf-8",
        "invalid json",
        "not an object",
        "bad timestamp",
        "future timestamp",
        "unknown field",
        "unknown metric",  # an Open mHealth schema or a LOINC code that wardwatch does not store
        "not a measurement",  # valid, but not a value to chart: a summary, cancelled, absent
        "wrong type",
        "impossible value",
        "device mismatch",
        "unknown device",
    }
)


class DecodeError(ValueError):
    """Something on the wire broke the contract; ``reason`` is a code from REASONS."""

    def __init__(self, reason: str, detail: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown reject reason {reason!r}")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Converted:
    """One record of another format as a native v1 sample, for the codec to validate as such.

    The codec applies every v1 rule to it (timestamp, clock skew, plausible ranges, duplicates)
    exactly as if the device had sent ``{"ts": ts, **fields}``. Values are already in v1 units.
    """

    ts: object  # the record's time as sent: an RFC 3339 string, checked by the codec
    ts_field: str  # where ``ts`` came from, for reject details: "effectiveDateTime"
    fields: dict[str, object]  # v1 field name -> value in v1 units
    problems: tuple[DecodeError, ...] = ()  # parts that could not be converted; the rest is kept
    ts_shift_us: int = 0  # added to ``ts``: an interval sent as start + duration ends there
    start: object = None  # an interval's start, which must not be after its end (``ts``)
    start_field: str = ""


def show(value: object) -> str:
    """Quote a value briefly for a reject's detail: strings cut short, containers elided."""
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else repr(value[:40]) + "…"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "[…]" if isinstance(value, list) else "{…}"


def describe(name: str, value: object) -> str:
    """Say what a field holds: "temperature 'hot' is a string", "spo2 is null"."""
    if value is None or isinstance(value, list | dict):
        return f"{name} is {json_type(value)}"
    return f"{name} {show(value)} is {json_type(value)}"


def json_type(value: object) -> str:
    """Name a decoded JSON value's type as a device maker would."""
    if value is None:
        return "null"
    if isinstance(value, bool):  # before int: bool is an int in Python
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def is_number(value: object) -> bool:
    """Tell a JSON number: true and false are not numbers, whatever Python thinks."""
    return isinstance(value, int | float) and not isinstance(value, bool)
