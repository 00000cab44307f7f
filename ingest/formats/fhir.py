"""FHIR R4 vital-sign Observations, sent alone or as the entries of a Bundle, as native v1 samples.

An Observation is recognised by its LOINC code, its value read from ``valueQuantity`` by the UCUM
code (not the display ``unit``), and its time from ``effectiveDateTime`` or the end of
``effectivePeriod``. Blood pressure is one Observation with two ``component``s. The mapping is
tabled in docs/formats.md; the codes are those of the FHIR R4 Vital Signs profile
(https://hl7.org/fhir/R4/observation-vitalsigns.html).

Not read, because the topic and the device→patient assignment already say whose it is:
``subject``, ``performer``, ``device``, ``encounter``, ``identifier``, and ``issued`` (when it was
reported, not when it was measured).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Final, NoReturn

from ingest.formats._contract import Converted, DecodeError, describe, is_number, show

__all__ = ["CODES", "LOINC", "convert", "convert_entry", "entries"]

LOINC: Final = "http://loinc.org"
_UCUM: Final = "http://unitsofmeasure.org"
_MISSING: Final = object()
# Observation.status values that are a result (FHIR R4 ObservationStatus). "registered" has no
# result yet; "cancelled", "entered-in-error" and "unknown" are not to be charted.
_STATUSES: Final = frozenset({"final", "amended", "corrected", "preliminary"})
_BP_PANEL: Final = "85354-9"  # Blood pressure panel: the values are in its components

Unit = Callable[[float], float]


def _same(value: float) -> float:
    return value


def _fahrenheit(value: float) -> float:
    return round((value - 32) * 5 / 9, 6)  # 1e-6: float noise off, every real digit kept


def _kelvin(value: float) -> float:
    return round(value - 273.15, 6)


def _fraction(value: float) -> float:
    return round(value * 100, 6)


# UCUM annotations ({beats}/min, {steps}) carry no meaning in UCUM itself: {x}/min is /min.
_ANNOTATED_PER_MIN = re.compile(r"(?:\{[^{}]*\})?/min")
_ANNOTATION = re.compile(r"\{[^{}]*\}")

# What each kind of quantity accepts, for reject details.
_EXPECTED: Final[Mapping[str, str]] = {
    "rate": "/min",
    "percent": "% or 1 (a fraction)",
    "temperature": "Cel, [degF] or K",
    "pressure": "mm[Hg]",
    "count": "1 or an annotation such as {steps}",
}

#: LOINC code -> (v1 field, kind of quantity). FHIR R4 Vital Signs profile, and LOINC for steps.
CODES: Final[Mapping[str, tuple[str, str]]] = {
    "8867-4": ("heart_rate", "rate"),  # Heart rate
    "9279-1": ("resp_rate", "rate"),  # Respiratory rate
    "2708-6": ("spo2", "percent"),  # Oxygen saturation in Arterial blood (the profile's code)
    "59408-5": ("spo2", "percent"),  # ... by Pulse oximetry
    "8310-5": ("temperature", "temperature"),  # Body temperature
    "8480-6": ("systolic_bp", "pressure"),  # Systolic blood pressure
    "8462-4": ("diastolic_bp", "pressure"),  # Diastolic blood pressure
    "41950-7": ("steps", "count"),  # Number of steps in 24 hour Measured
    "55423-8": ("steps", "count"),  # Number of steps in unspecified time Pedometer
}


def _unit(kind: str, code: str) -> Unit | None:
    """Return how a value in UCUM ``code`` becomes the v1 unit of ``kind``, or None."""
    if kind == "rate":
        return _same if _ANNOTATED_PER_MIN.fullmatch(code) else None
    if kind == "percent":
        return {"%": _same, "1": _fraction}.get(code)
    if kind == "temperature":
        return {"Cel": _same, "[degF]": _fahrenheit, "K": _kelvin}.get(code)
    if kind == "pressure":
        return _same if code == "mm[Hg]" else None
    return _same if code == "1" or _ANNOTATION.fullmatch(code) else None


def entries(bundle: Mapping[str, object]) -> list[object]:
    """Return a Bundle's entries; raise DecodeError if it has none."""
    entry = bundle.get("entry", _MISSING)
    if entry is _MISSING or entry == []:
        raise DecodeError("not an object", "Bundle has no entry: nothing to store")
    if type(entry) is not list:
        raise DecodeError("wrong type", f"{describe('Bundle.entry', entry)}, expected an array")
    return entry


def convert_entry(entry: object) -> Converted | None:
    """Convert one Bundle entry's resource; see ``convert``."""
    if type(entry) is not dict:
        raise DecodeError("not an object", f"{describe('entry', entry)}, expected an object")
    resource = entry.get("resource", _MISSING)
    if resource is _MISSING:
        raise DecodeError("not an object", "entry has no resource")
    return convert(resource)


def convert(resource: object) -> Converted | None:
    """Convert one Observation; None for a grouping that holds no value of its own.

    Raise DecodeError if none of it can be used; a bad component is set aside on its own.
    """
    if type(resource) is not dict:
        raise DecodeError("not an object", f"{describe('resource', resource)}, expected an object")
    kind = resource.get("resourceType")
    if kind != "Observation":
        raise DecodeError("not a measurement", f"resourceType {show(kind)} is not an Observation")
    status = resource.get("status", _MISSING)
    if status not in _STATUSES:
        if isinstance(status, str):
            raise DecodeError(
                "not a measurement",
                f"status {show(status)}: only final, amended, corrected and preliminary "
                "Observations are stored",
            )
        raise DecodeError("wrong type", _expected("status", status, "a string"))
    components = resource.get("component", _MISSING)
    has_value = any(key.startswith("value") for key in resource)
    if "hasMember" in resource and not has_value and components is _MISSING:
        return None  # a panel of other Observations (vital signs 85353-1): each is its own entry
    field, quantity = _code(resource.get("code", _MISSING), "code")
    ts, ts_field, start, start_field = _effective(resource)
    fields: dict[str, object] = {}
    problems: list[DecodeError] = []
    if components is _MISSING:
        if field is None and "dataAbsentReason" not in resource:
            raise DecodeError(
                "wrong type", f"a blood pressure panel ({_BP_PANEL}) needs its values in component"
            )
        if field is None or "valueQuantity" not in resource:
            _no_value(resource, "Observation")
        fields[field] = _quantity(resource["valueQuantity"], "valueQuantity", quantity)
    elif field is not None and "valueQuantity" in resource:
        try:
            fields[field] = _quantity(resource["valueQuantity"], "valueQuantity", quantity)
        except DecodeError as exc:
            problems.append(exc)
    if components is not _MISSING:
        _components(components, fields, problems)
    return Converted(ts, ts_field, fields, tuple(problems), 0, start, start_field)


def _components(components: object, fields: dict[str, object], problems: list[DecodeError]) -> None:
    """Add each component's value; set aside a bad one alone (granularity, as in v1)."""
    if type(components) is not list:
        problems.append(
            DecodeError("wrong type", f"{describe('component', components)}, expected an array")
        )
        return
    for index, component in enumerate(components):
        where = f"component[{index}]"
        try:
            if type(component) is not dict:
                raise DecodeError("wrong type", f"{describe(where, component)}, expected an object")
            field, quantity = _code(component.get("code", _MISSING), f"{where}.code")
            if field is None:
                raise DecodeError("unknown metric", f"{where}.code is a panel, not a value")
            if "valueQuantity" not in component:
                _no_value(component, where)
            value = _quantity(component["valueQuantity"], f"{where}.valueQuantity", quantity)
        except DecodeError as exc:
            problems.append(exc)
        else:
            fields.setdefault(field, value)  # one value per metric and time: the first, as in v1


def _code(concept: object, where: str) -> tuple[str | None, str]:
    """Return the v1 field and kind of quantity a CodeableConcept names (None for the BP panel)."""
    if type(concept) is not dict or type(concept.get("coding")) is not list:
        raise DecodeError(
            "unknown metric", _expected(where, concept, "a CodeableConcept with a LOINC coding")
        )
    seen: list[str] = []
    for coding in concept["coding"]:
        if type(coding) is not dict or coding.get("system") != LOINC:
            continue
        code = coding.get("code")
        if code == _BP_PANEL:
            return None, ""
        if isinstance(code, str):
            spec = CODES.get(code)
            if spec is not None:
                return spec
            seen.append(code)
    if seen:
        raise DecodeError(
            "unknown metric",
            f"{where} LOINC {', '.join(show(c) for c in seen[:3])} is not a vital sign "
            "wardwatch stores (docs/formats.md)",
        )
    raise DecodeError("unknown metric", f"{where} has no LOINC coding (system {LOINC})")


def _effective(resource: Mapping[str, object]) -> tuple[str, str, str | None, str]:
    """Return ``(ts, ts_field, start, start_field)``: a period's reading is stamped at its end."""
    for name in ("effectiveDateTime", "effectiveInstant"):
        if name in resource:
            return _string(resource[name], name), name, None, ""
    period = resource.get("effectivePeriod", _MISSING)
    if period is _MISSING:
        raise DecodeError(
            "bad timestamp",
            "Observation has no effectiveDateTime or effectivePeriod (issued, when it was "
            "reported, does not say when it was measured)",
        )
    if type(period) is not dict:
        raise DecodeError("bad timestamp", _expected("effectivePeriod", period, "{start, end}"))
    if "end" not in period:
        raise DecodeError(
            "bad timestamp", "effectivePeriod has no end: a reading is stamped at its period's end"
        )
    end = _string(period["end"], "effectivePeriod.end")
    if "start" not in period:
        return end, "effectivePeriod.end", None, ""
    start = _string(period["start"], "effectivePeriod.start")
    return end, "effectivePeriod.end", start, "effectivePeriod.start"


def _quantity(quantity: object, where: str, kind: str) -> float:
    """Return a Quantity's value in v1 units; raise DecodeError if it cannot be read as one."""
    if type(quantity) is not dict:
        raise DecodeError("wrong type", f"{describe(where, quantity)}, expected a Quantity")
    value = quantity.get("value", _MISSING)
    if not is_number(value):
        raise DecodeError("wrong type", _expected(f"{where}.value", value, "a number"))
    assert isinstance(value, int | float)  # is_number
    if "comparator" in quantity:
        raise DecodeError(
            "not a measurement",
            f"{where}.comparator {show(quantity['comparator'])}: only exact values are stored",
        )
    system = quantity.get("system", _UCUM)
    if system != _UCUM:
        raise DecodeError("impossible value", f"{where}.system {show(system)} is not {_UCUM}")
    code = quantity.get("code", _MISSING)
    if not isinstance(code, str):
        raise DecodeError("wrong type", _expected(f"{where}.code", code, "a UCUM code"))
    unit = _unit(kind, code)
    if unit is None:
        raise DecodeError("impossible value", f"{where}.code {show(code)} is not {_EXPECTED[kind]}")
    return unit(value)


def _no_value(element: Mapping[str, object], where: str) -> NoReturn:
    """Raise for an Observation or component without a valueQuantity, saying why it has none."""
    absent = element.get("dataAbsentReason", _MISSING)
    if absent is not _MISSING:
        reason = _first_code(absent)
        raise DecodeError(
            "not a measurement", f"{where} has no value: dataAbsentReason {show(reason)}"
        )
    other = next((key for key in element if key.startswith("value")), None)
    if other is not None:
        raise DecodeError("wrong type", f"{where} has {other}, expected valueQuantity")
    raise DecodeError("wrong type", f"{where} has no valueQuantity")


def _first_code(concept: object) -> object:
    """The first coding's code of a CodeableConcept, or its text, for a reject's detail."""
    if type(concept) is not dict:
        return concept
    codings = concept.get("coding")
    if type(codings) is list and codings and type(codings[0]) is dict:
        return codings[0].get("code")
    return concept.get("text")


def _string(value: object, where: str) -> str:
    if isinstance(value, str):
        return value
    raise DecodeError("bad timestamp", f"{describe(where, value)}, expected a FHIR dateTime string")


def _expected(where: str, value: object, expected: str) -> str:
    if value is _MISSING:
        return f"{where} is missing, expected {expected}"
    return f"{describe(where, value)}, expected {expected}"
