"""Open mHealth data points (``{"header": …, "body": …}``) as native v1 samples.

One data point is one measurement (blood pressure is two values of one measurement). The schema is
named by ``header.schema_id``; the body is read as that schema defines it
(https://github.com/openmhealth/schemas, Apache-2.0), and the mapping is tabled in docs/formats.md.
Of the header only ``schema_id`` is read: ``id``, ``creation_date_time`` and
``acquisition_provenance`` are not kept, since the device is known from the topic and the time
that matters is when the body says the measurement was made.

Deliberately stricter than the schemas in three places, each because a wrong reading on a nurse's
chart is worse than a missing one:

- a body with ``descriptive_statistic`` (a daily average, a weekly maximum) is "not a measurement";
- a body without an ``effective_time_frame`` (optional in some 1.x schemas) cannot be placed in
  time and is a "bad timestamp", as is a date-time without an offset (which OMH reads as UTC);
- an oxygen saturation of a ``system`` or ``measurement_method`` other than pulse oximetry is not
  SpO2 (venous blood is about 75 %) and is an "unknown metric".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from ingest.formats._contract import Converted, DecodeError, describe, is_number, show

__all__ = ["SCHEMAS", "convert"]

_MISSING: Final = object()
_VERSION = re.compile(r"([0-9]+)\.[0-9]+(?:\.[0-9]+)?")
# Longest interval a reading may be stamped at the end of: beyond a year, it places nothing.
_MAX_INTERVAL_US: Final = 366 * 86_400_000_000

# duration-unit-value-1.x: unit -> microseconds. "Mo" and "yr" are refused: no fixed length.
_DURATION_US: Final[Mapping[str, float]] = {
    "ps": 1e-6,
    "ns": 1e-3,
    "us": 1.0,
    "ms": 1e3,
    "sec": 1e6,
    "min": 6e7,
    "h": 3.6e9,
    "d": 8.64e10,
    "wk": 6.048e11,
}

Fields = dict[str, object]
Problems = list[DecodeError]
Unit = Callable[[float], float]


def _same(value: float) -> float:
    return value


def _fahrenheit(value: float) -> float:
    # Rounded to 1e-6: removes float noise (98.6 °F is 36.99999999999999 unrounded), keeps every
    # digit a thermometer has.
    return round((value - 32) * 5 / 9, 6)


def _kelvin(value: float) -> float:
    return round(value - 273.15, 6)


def _per_minute(factor_us: float) -> Unit:
    return lambda value: round(value * factor_us / 6e7, 6)


_BEATS: Final[Mapping[str, Unit]] = {"beats/min": _same}
_BREATHS: Final[Mapping[str, Unit]] = {"breaths/min": _same}
_PERCENT: Final[Mapping[str, Unit]] = {"%": _same}
_CELSIUS: Final[Mapping[str, Unit]] = {"C": _same, "F": _fahrenheit, "K": _kelvin}
_MMHG: Final[Mapping[str, Unit]] = {"mmHg": _same}
_STEPS: Final[Mapping[str, Unit]] = {"steps": _same}
_FLOW: Final[Mapping[str, Unit]] = {"L/min": _same, "LPM": _same}  # LPM in 1.x, L/min after
_MINUTES: Final[Mapping[str, Unit]] = {u: _per_minute(f) for u, f in _DURATION_US.items()}
# oxygen-saturation: the systems that are SpO2, by measurement_method. Without a method, only a
# system that says peripheral (or none: 2.x and 3.x allow nothing else); a pulse oximeter measures
# capillary blood at the periphery, so 1.x's "capillary" is SpO2 when it says so. Venous, mixed
# venous or intracardiac saturation (60–80 %) would raise false NEWS2 alerts; blood-gas and
# near-infrared methods are not pulse oximetry either.
_SPO2_SYSTEMS: Final[Mapping[object, tuple[object, ...]]] = {
    None: (None, "peripheral", "peripheral capillary"),
    "pulse oximetry": (None, "peripheral", "peripheral capillary", "capillary"),
}


def _measure(body: Mapping[str, object], key: str, units: Mapping[str, Unit]) -> float:
    """Return ``body[key]``, a ``{value, unit}`` object, in v1 units; raise for this part alone."""
    where = f"body.{key}"
    pair = body.get(key, _MISSING)
    if pair is _MISSING:
        raise DecodeError("wrong type", f"{where} is missing")
    if type(pair) is not dict:
        raise DecodeError("wrong type", f"{describe(where, pair)}, expected {{value, unit}}")
    value, unit = pair.get("value"), pair.get("unit")
    if not is_number(value):
        raise DecodeError("wrong type", f"{describe(where + '.value', value)}, expected a number")
    assert isinstance(value, int | float)  # is_number
    convert = units.get(unit) if isinstance(unit, str) else None
    if convert is None:
        raise DecodeError(
            "impossible value", f"{where}.unit {show(unit)} is not {' or '.join(units)}"
        )
    return convert(value)


def _put(
    fields: Fields,
    problems: Problems,
    field: str,
    body: Mapping[str, object],
    key: str,
    units: Mapping[str, Unit],
) -> None:
    try:
        fields[field] = _measure(body, key, units)
    except DecodeError as exc:
        problems.append(exc)


def _heart_rate(body: Mapping[str, object], fields: Fields, problems: Problems) -> None:
    _put(fields, problems, "heart_rate", body, "heart_rate", _BEATS)


def _respiratory_rate(body: Mapping[str, object], fields: Fields, problems: Problems) -> None:
    _put(fields, problems, "resp_rate", body, "respiratory_rate", _BREATHS)


def _body_temperature(body: Mapping[str, object], fields: Fields, problems: Problems) -> None:
    _put(fields, problems, "temperature", body, "body_temperature", _CELSIUS)


def _blood_pressure(body: Mapping[str, object], fields: Fields, problems: Problems) -> None:
    _put(fields, problems, "systolic_bp", body, "systolic_blood_pressure", _MMHG)
    _put(fields, problems, "diastolic_bp", body, "diastolic_blood_pressure", _MMHG)


def _oxygen_saturation(body: Mapping[str, object], fields: Fields, problems: Problems) -> None:
    system, method = body.get("system"), body.get("measurement_method")
    allowed = _SPO2_SYSTEMS.get(method, ()) if isinstance(method, str | None) else ()
    if system in allowed:
        _put(fields, problems, "spo2", body, "oxygen_saturation", _PERCENT)
    else:
        problems.append(
            DecodeError(
                "unknown metric",
                f"body.oxygen_saturation of system {show(system)} by {show(method)} is not "
                "SpO2 (peripheral, by pulse oximetry)",
            )
        )
    if "supplemental_oxygen_flow_rate" in body:
        # NEWS2 scores supplemental oxygen; the schema says 0 L/min means room air.
        try:
            flow = _measure(body, "supplemental_oxygen_flow_rate", _FLOW)
            if flow < 0:
                raise DecodeError(
                    "impossible value", f"body.supplemental_oxygen_flow_rate {flow:g} is negative"
                )
            fields["on_oxygen"] = flow > 0
        except DecodeError as exc:
            problems.append(exc)


def _step_count_2(body: Mapping[str, object], fields: Fields, problems: Problems) -> None:
    count = body.get("step_count", _MISSING)  # a bare number in 2.x
    if is_number(count):
        fields["steps"] = count
    else:
        detail = (
            "body.step_count is missing"
            if count is _MISSING
            else describe("body.step_count", count)
        )
        problems.append(DecodeError("wrong type", f"{detail}, expected a number"))


def _step_count_3(body: Mapping[str, object], fields: Fields, problems: Problems) -> None:
    _put(fields, problems, "steps", body, "step_count", _STEPS)


def _total_sleep_time(body: Mapping[str, object], fields: Fields, problems: Problems) -> None:
    _put(fields, problems, "sleep_minutes", body, "total_sleep_time", _MINUTES)


def _sleep_episode(body: Mapping[str, object], fields: Fields, problems: Problems) -> None:
    if "total_sleep_time" not in body:
        raise DecodeError(
            "not a measurement",
            "sleep-episode without body.total_sleep_time: that is the only part wardwatch stores",
        )
    _total_sleep_time(body, fields, problems)


@dataclass(frozen=True, slots=True)
class _Schema:
    convert: Callable[[Mapping[str, object], Fields, Problems], None]
    over_interval: bool = False  # a count or a duration: the schema requires a time_interval


#: (schema name, major version) -> how its body is read. Minor versions are compatible (OMH
#: versioning), so "2.0" and "2.1" read alike. The field each schema yields is in docs/formats.md.
SCHEMAS: Final[Mapping[tuple[str, int], _Schema]] = {
    **{("heart-rate", v): _Schema(_heart_rate) for v in (1, 2, 3)},
    **{("oxygen-saturation", v): _Schema(_oxygen_saturation) for v in (1, 2, 3)},
    **{("respiratory-rate", v): _Schema(_respiratory_rate) for v in (1, 2, 3)},
    **{("body-temperature", v): _Schema(_body_temperature) for v in (3, 4)},
    **{("blood-pressure", v): _Schema(_blood_pressure) for v in (1, 2, 3, 4)},
    ("step-count", 2): _Schema(_step_count_2, over_interval=True),
    ("step-count", 3): _Schema(_step_count_3, over_interval=True),
    ("sleep-episode", 1): _Schema(_sleep_episode, over_interval=True),
    ("total-sleep-time", 1): _Schema(_total_sleep_time, over_interval=True),
}


def convert(point: Mapping[str, object]) -> Converted:
    """Convert one Open mHealth data point; raise DecodeError if none of it can be used."""
    header = point.get("header", _MISSING)
    if type(header) is not dict:
        raise DecodeError("wrong type", _expected("header", header, "the data point's header"))
    label, schema = _schema(header)
    body = point.get("body", _MISSING)
    if type(body) is not dict:
        raise DecodeError("wrong type", _expected("body", body, f"the {label} body"))
    if "descriptive_statistic" in body:
        raise DecodeError(
            "not a measurement",
            f"{label} body.descriptive_statistic {show(body['descriptive_statistic'])} is a "
            "summary over a period, not a measurement: send the readings themselves",
        )
    ts, ts_field, shift_us, start, start_field = _time_frame(body, label, schema.over_interval)
    fields: Fields = {}
    problems: Problems = []
    schema.convert(body, fields, problems)
    return Converted(ts, ts_field, fields, tuple(problems), shift_us, start, start_field)


def _schema(header: Mapping[str, object]) -> tuple[str, _Schema]:
    """Return the schema's label ("omh:heart-rate:2.0") and how to read its body."""
    schema_id = header.get("schema_id", _MISSING)
    if type(schema_id) is not dict:
        raise DecodeError(
            "wrong type", _expected("header.schema_id", schema_id, "{namespace, name, version}")
        )
    namespace, name, version = (schema_id.get(k) for k in ("namespace", "name", "version"))
    for key, value in (("namespace", namespace), ("name", name), ("version", version)):
        if not isinstance(value, str):
            raise DecodeError(
                "wrong type", f"{describe('header.schema_id.' + key, value)}, expected a string"
            )
    label = f"{namespace}:{name}:{version}"
    match = _VERSION.fullmatch(str(version))
    schema = SCHEMAS.get((str(name), int(match.group(1)))) if match else None
    if namespace != "omh" or schema is None:
        raise DecodeError(
            "unknown metric",
            f"Open mHealth schema {show(label)} is not one wardwatch stores (docs/formats.md)",
        )
    return label, schema


def _time_frame(
    body: Mapping[str, object], label: str, over_interval: bool
) -> tuple[object, str, int, object, str]:
    """Return ``(ts, ts_field, shift_us, start, start_field)`` from the effective time frame.

    A reading over an interval is stamped at its end, as a v1 ``steps`` count is.
    """
    frame = body.get("effective_time_frame", _MISSING)
    if frame is _MISSING:
        raise DecodeError(
            "bad timestamp",
            f"{label} body has no effective_time_frame: wardwatch must know when it was measured",
        )
    where = "body.effective_time_frame"
    if type(frame) is not dict:
        raise DecodeError(
            "bad timestamp", _expected(where, frame, "{date_time} or {time_interval}")
        )
    if "date_time" in frame:
        if over_interval:
            raise DecodeError(
                "bad timestamp",
                f"{label} needs {where}.time_interval, not date_time: it is counted over a period",
            )
        return _string(frame["date_time"], f"{where}.date_time"), f"{where}.date_time", 0, None, ""
    interval = frame.get("time_interval", _MISSING)
    where += ".time_interval"
    if type(interval) is not dict:
        raise DecodeError(
            "bad timestamp", _expected(where, interval, "an object (or a date_time beside it)")
        )
    start = interval.get("start_date_time", _MISSING)
    if "end_date_time" in interval:
        end = _string(interval["end_date_time"], f"{where}.end_date_time")
        if start is _MISSING:
            return end, f"{where}.end_date_time", 0, None, ""
        start = _string(start, f"{where}.start_date_time")
        return end, f"{where}.end_date_time", 0, start, f"{where}.start_date_time"
    if start is not _MISSING and "duration" in interval:
        start = _string(start, f"{where}.start_date_time")
        shift_us = _duration_us(interval["duration"], f"{where}.duration")
        return start, f"{where}.start_date_time", shift_us, None, ""
    raise DecodeError(
        "bad timestamp",
        f"{where} has neither end_date_time nor start_date_time with duration "
        "(a date and part of day cannot place a reading)",
    )


def _string(value: object, where: str) -> str:
    if isinstance(value, str):
        return value
    raise DecodeError("bad timestamp", f"{describe(where, value)}, expected an RFC 3339 string")


def _duration_us(duration: object, where: str) -> int:
    if type(duration) is not dict:
        raise DecodeError("bad timestamp", _expected(where, duration, "{value, unit}"))
    value, unit = duration.get("value"), duration.get("unit")
    factor = _DURATION_US.get(unit) if isinstance(unit, str) else None
    if factor is None:
        raise DecodeError(
            "bad timestamp",
            f"{where}.unit {show(unit)} is not one of {', '.join(_DURATION_US)} "
            "(months and years have no fixed length)",
        )
    if is_number(value):
        assert isinstance(value, int | float)  # is_number
        duration_us = value * factor
        if 0 <= duration_us <= _MAX_INTERVAL_US:
            return round(duration_us)
    raise DecodeError(
        "bad timestamp", f"{where}.value {show(value)} is not a duration from 0 to 366 days"
    )


def _expected(where: str, value: object, expected: str) -> str:
    if value is _MISSING:
        return f"{where} is missing, expected {expected}"
    return f"{describe(where, value)}, expected {expected}"
