"""Open mHealth and FHIR payloads: contract tests over published fixtures, then rules, then fuzz.

The fixtures in tests/data/omh and tests/data/fhir are reproduced from Open mHealth's and HL7's
own examples (see the README in each); the tables here say what each must become.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.codec import RAW_LIMIT, REASONS, Decoded, decode_batch
from ingest.formats import fhir, omh
from signals.vitals import PLAUSIBLE, Metric
from tests.unit.test_codec import (
    DEVICE,
    JSON_SCALARS,
    JSON_VALUES,
    RECEIVED,
    TIMES,
    TOPIC,
    check_invariants,
    rows,
    us,
)

DATA = Path(__file__).resolve().parents[1] / "data"
DOCS = Path(__file__).resolve().parents[2] / "docs"
HR, SPO2, RR, TEMP = Metric.HEART_RATE, Metric.SPO2, Metric.RESP_RATE, Metric.TEMPERATURE
SYS, DIA, STEPS, O2 = Metric.SYSTOLIC_BP, Metric.DIASTOLIC_BP, Metric.STEPS, Metric.ON_OXYGEN
SLEEP = Metric.SLEEP_MINUTES
NOW = "2026-11-28T11:59:00Z"  # a minute before the test's receive time
NOW_US = us(datetime.fromisoformat(NOW))

Row = tuple[Metric, float, str]  # metric, value, RFC 3339 time with the offset it must keep


def decode(payload: object) -> Decoded:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    decoded = decode_batch([(TOPIC, raw, RECEIVED)])
    check_invariants(decoded)
    return decoded


def reasons(decoded: Decoded) -> list[str]:
    return [r.reason for r in decoded.rejected]


def expected(rows_: list[Row]) -> list[tuple[str, Metric, int, float, int]]:
    """The rows a reading must become, worked out with datetime, not with the codec."""
    out = []
    for metric, value, when in rows_:
        at = datetime.fromisoformat(when)
        offset = at.utcoffset()
        assert offset is not None
        out.append((DEVICE, metric, us(at), float(value), offset // timedelta(minutes=1)))
    return out


def assert_rows(decoded: Decoded, want: list[Row]) -> None:
    got = rows(decoded)
    assert len(got) == len(want), got
    for (d, m, t, v, o), (dw, mw, tw, vw, ow) in zip(got, expected(want), strict=True):
        assert (d, m, t, o) == (dw, mw, tw, ow)
        assert v == pytest.approx(vw, abs=1e-6)


def data_point(name: str, version: str, body: object, **header: object) -> dict[str, object]:
    schema = {"namespace": "omh", "name": name, "version": version}
    return {"header": {"schema_id": schema, **header}, "body": body}


# --- Open mHealth: every published fixture of a schema wardwatch reads ------------------------

T13 = "2013-02-05T07:25:00Z"
T20 = "2020-02-05T07:25:00-08:00"
F97 = (97 - 32) * 5 / 9
F965 = (96.5 - 32) * 5 / 9
STAT = "not a measurement"  # a descriptive statistic: a summary over a period
NO_TIME = "bad timestamp"  # no effective_time_frame, or one that cannot place a reading

#: fixture path -> (readings it becomes, reject reasons). Every file in tests/data/omh is here.
OMH: dict[str, tuple[list[Row], list[str]]] = {
    "heart-rate/1.0/shouldPass/heart-rate-only.json": ([], [NO_TIME]),
    "heart-rate/1.0/shouldPass/heart-rate-with-everything.json": ([(HR, 50, T13)], []),
    "heart-rate/1.0/shouldPass/with-everything.json": ([(HR, 50, T13)], []),
    "heart-rate/1.0/shouldPass/with-user-notes.json": ([(HR, 50, T13)], []),
    "heart-rate/1.0/shouldFail/incorrect-unit.json": ([], [NO_TIME]),
    "heart-rate/1.1/shouldPass/with-temporal-relationship-to-sleep.json": ([(HR, 50, T13)], []),
    # "descriptive-statistic" with a hyphen is not the schema's key: ignored, as the schema does.
    "heart-rate/2.0/shouldPass/with-descriptive-statistic.json":
        ([(HR, 50, "2020-02-06T06:00:00+01:00")], []),
    "heart-rate/2.0/shouldPass/with-descriptive-statistics.json":
        ([(HR, 50, "2020-02-06T06:00:00+01:00")], []),
    "heart-rate/2.0/shouldPass/with-temporal-relationship-to-sleep.json": ([(HR, 50, T20)], []),
    "heart-rate/2.0/shouldFail/incorrect-unit.json": ([], ["impossible value"]),
    "heart-rate/3.0/shouldPass/with-descriptive-statistic.json": ([], [STAT]),
    "heart-rate/3.0/shouldPass/with-temporal-relationship-to-sleep.json":
        ([(HR, 67.5, T20)], []),
    "oxygen-saturation/1.0/shouldPass/oxygen-saturation-only.json": ([], [NO_TIME]),
    # "capillary" without a method may be a capillary blood gas, not a pulse oximeter.
    "oxygen-saturation/1.0/shouldPass/saturation-only.json": ([], ["unknown metric"]),
    "oxygen-saturation/1.0/shouldPass/valid-oxygen-saturation.json":
        ([(SPO2, 95, T13), (O2, 1, T13)], []),
    "oxygen-saturation/1.0/shouldPass/with-oxygen.json": ([(SPO2, 95, T13), (O2, 1, T13)], []),
    "oxygen-saturation/1.0/shouldPass/with-statistic.json": ([], [STAT]),
    "oxygen-saturation/1.0/shouldPass/with-temporal-relationship-to-physical-activity.json":
        ([], ["unknown metric"]),  # CO-oximetry: a blood sample, not SpO2
    "oxygen-saturation/1.0/shouldPass/with-time-frame.json": ([(SPO2, 95, T13)], []),
    "oxygen-saturation/1.0/shouldFail/invalid-oxygen-amount.json":
        ([(SPO2, 95, T13)], ["impossible value"]),
    "oxygen-saturation/1.0/shouldFail/invalid-oxygen-unit.json":
        ([(SPO2, 95, T13)], ["impossible value"]),
    "oxygen-saturation/1.0/shouldFail/invalid-unit.json": ([], ["unknown metric"]),
    "oxygen-saturation/2.0/shouldPass/saturation-only.json":
        ([(SPO2, 95, "2013-02-05T07:25:00-08:00")], []),
    "oxygen-saturation/2.0/shouldPass/saturation-with-statistics.json":
        ([(SPO2, 93, "2020-02-05T06:00:00+01:00")], []),
    "oxygen-saturation/2.0/shouldFail/missing-effective-time-frame.json": ([], [NO_TIME]),
    "oxygen-saturation/3.0/shouldPass/saturation-only.json":
        ([(SPO2, 95, "2023-02-05T07:25:00-08:00")], []),
    "oxygen-saturation/3.0/shouldPass/saturation-with-statistics.json": ([], [STAT]),
    "oxygen-saturation/3.0/shouldPass/with-oxygen.json":
        ([(SPO2, 95, "2025-02-05T07:25:00Z"), (O2, 1, "2025-02-05T07:25:00Z")], []),
    "oxygen-saturation/3.0/shouldFail/invalid-oxygen-unit.json":
        ([(SPO2, 95, "2023-02-05T07:25:00Z")], ["impossible value"]),
    "oxygen-saturation/3.0/shouldFail/invalid-unit.json": ([], ["impossible value"]),
    "respiratory-rate/1.0/shouldPass/respiratory-rate-only.json": ([], [NO_TIME]),
    "respiratory-rate/1.0/shouldPass/with-statistic.json": ([], [STAT]),
    "respiratory-rate/1.0/shouldPass/with-temporal-relationship-to-physical-activity.json":
        ([(RR, 12, T13)], []),
    "respiratory-rate/1.0/shouldPass/with-time-frame.json": ([(RR, 12, T13)], []),
    "respiratory-rate/1.0/shouldFail/invalid-respiratory-rate.json": ([], [NO_TIME]),
    "respiratory-rate/2.0/shouldPass/with-temporal-relationship-to-physical-activity.json":
        ([(RR, 11, T20)], []),
    "respiratory-rate/3.0/shouldPass/respiratory-rate-only.json": ([(RR, 12, T20)], []),
    "respiratory-rate/3.0/shouldPass/with-statistic.json": ([], [STAT]),
    "respiratory-rate/3.0/shouldFail/invalid-respiratory-rate.json": ([], ["impossible value"]),
    "body-temperature/3.0/shouldPass/valid-temperature.json": ([(TEMP, F97, T13)], []),
    "body-temperature/3.0/shouldPass/valid-temperature-with-statistic.json": ([], [STAT]),
    "body-temperature/3.0/shouldFail/missing-effective-time-frame.json": ([], [NO_TIME]),
    "body-temperature/4.0/shouldPass/basal-temperature.json":
        ([(TEMP, F965, "2023-02-05T06:25:00Z")], []),
    "body-temperature/4.0/shouldPass/valid-temperature.json":
        ([(TEMP, F97, "2023-02-05T07:25:00+01:00")], []),
    "body-temperature/4.0/shouldPass/valid-temperature-with-statistic.json": ([], [STAT]),
    "body-temperature/4.0/shouldFail/invalid-unit.json": ([], ["impossible value"]),
    "step-count/2.0/shouldPass/valid-step-count.json":
        ([(STEPS, 6000, "2016-02-05T07:25:00Z")], []),  # stamped at the interval's end
    "step-count/2.0/shouldPass/with-average.json": ([], [STAT]),
    "step-count/2.0/shouldPass/with-descriptive-statistic.json": ([], [STAT]),
    "step-count/2.0/shouldPass/with-maximum.json": ([], [STAT]),
    "step-count/2.0/shouldPass/with-session.json": ([], [STAT]),
    "step-count/2.0/shouldFail/step-count-only.json": ([], [NO_TIME]),
    "step-count/2.0/shouldFail/with-date-time.json": ([], [NO_TIME]),
    "step-count/3.0/shouldPass/valid-step-count.json":
        ([(STEPS, 10600, "2016-02-05T07:25:00Z")], []),
    "step-count/3.0/shouldPass/with-average.json": ([], [STAT]),
    "step-count/3.0/shouldPass/with-maximum.json": ([], [STAT]),
    "step-count/3.0/shouldPass/with-session.json": ([], [STAT]),
    "step-count/3.0/shouldFail/invalid-unit-step-count.json": ([], [NO_TIME]),
    "step-count/3.0/shouldFail/step-count-only.json": ([], [NO_TIME]),
    "step-count/3.0/shouldFail/string-step-count-value.json": ([], [NO_TIME]),
    "step-count/3.0/shouldFail/with-date-time.json": ([], [NO_TIME]),
    "blood-pressure/1.0/shouldPass/with-descriptive-statistic.json": ([], [STAT]),
    "blood-pressure/1.0/shouldPass/with-time-frame.json": ([], [NO_TIME]),  # date + evening
    "blood-pressure/1.0/shouldPass/with-user-notes.json": ([], [NO_TIME]),
    "blood-pressure/2.0/shouldPass/blood-pressure-only.json": ([], [NO_TIME]),
    "blood-pressure/2.0/shouldPass/with-descriptive-statistic.json": ([], [STAT]),
    "blood-pressure/2.0/shouldPass/with-posture.json": ([], [NO_TIME]),
    "blood-pressure/2.0/shouldFail/invalid-unit.json": ([], [NO_TIME]),
    # The published file gives the diastolic unit as "mHg": that value alone is set aside.
    "blood-pressure/3.0/shouldPass/blood-pressure-only.json":
        ([(SYS, 115, T20)], ["impossible value"]),
    "blood-pressure/3.0/shouldPass/with-posture.json": ([(SYS, 140, T20), (DIA, 60, T20)], []),
    "blood-pressure/3.0/shouldPass/with-posture-and-location.json":
        ([(SYS, 140, T20), (DIA, 60, T20)], []),
    "blood-pressure/4.0/shouldPass/blood-pressure-only.json":
        ([(SYS, 115, T20), (DIA, 60, T20)], []),
    "blood-pressure/4.0/shouldPass/with-descriptive-statistic.json": ([], [STAT]),
    "blood-pressure/4.0/shouldPass/with-posture-location-relation.json":
        ([(SYS, 125, T20), (DIA, 60, T20)], []),
    "blood-pressure/4.0/shouldFail/invalid-timeframe-format.json": ([], [NO_TIME]),
    "blood-pressure/4.0/shouldFail/invalid-unit.json": ([(DIA, 60, T20)], ["impossible value"]),
    # start + 9 h; 8.5 h asleep.
    "sleep-episode/1.0/shouldPass/valid-sleep-episode.json":
        ([(SLEEP, 510, "2016-02-06T06:35:00Z")], []),
    "sleep-episode/1.0/shouldFail/effective-time-frame-with-timestamp.json": ([], [NO_TIME]),
    "sleep-episode/1.0/shouldFail/invalid-sleep-episode.json": ([], [NO_TIME]),
    "sleep-episode/1.0/shouldFail/missing-effective-time-frame.json": ([], [NO_TIME]),
    "sleep-episode/1.1/shouldPass/valid-sleep-episode.json":
        ([(SLEEP, 510, "2016-02-06T06:35:00Z")], []),
    "total-sleep-time/1.0/shouldPass/valid-total-sleep-time.json":
        ([(SLEEP, 465, "2016-02-06T06:35:00-08:00")], []),
    "total-sleep-time/1.0/shouldPass/with-descriptive-statistic.json": ([], [STAT]),
    "total-sleep-time/1.0/shouldFail/invalid-unit.json": ([], [NO_TIME]),
    "total-sleep-time/1.0/shouldFail/total-sleep-time-only.json": ([], [NO_TIME]),
    "total-sleep-time/1.0/shouldFail/with-date-time.json": ([], [NO_TIME]),
}  # fmt: skip


def omh_fixture(path: str) -> dict[str, object]:
    """The published body, in the data point a device would send: schema id from the path."""
    name, version, *_ = path.split("/")
    body = json.loads((DATA / "omh" / path).read_text(encoding="utf-8"))
    return data_point(name, version, body, id="a1b2", creation_date_time=NOW)


def test_every_omh_fixture_has_an_expectation() -> None:
    on_disk = {str(p.relative_to(DATA / "omh")) for p in (DATA / "omh").rglob("*.json")}
    assert on_disk == set(OMH)


@pytest.mark.parametrize("path", sorted(OMH))
def test_omh_contract(path: str) -> None:
    want_rows, want_reasons = OMH[path]
    decoded = decode(omh_fixture(path))
    assert_rows(decoded, want_rows)
    assert reasons(decoded) == want_reasons
    if "/shouldFail/" in path:
        assert decoded.rejected, "a body the schema refuses must not pass whole"
    for rejected in decoded.rejected:
        assert rejected.raw == orjson.dumps(omh_fixture(path))[:RAW_LIMIT]


# --- Open mHealth: rules ------------------------------------------------------------------------


def hr_point(value: object = 72, when: object = NOW, **extra: object) -> dict[str, object]:
    body = {"heart_rate": {"value": value, "unit": "beats/min"}}
    return data_point(
        "heart-rate", "2.0", {**body, "effective_time_frame": {"date_time": when}}, **extra
    )


def test_a_full_data_point_header_is_read_for_its_schema_only() -> None:
    point = hr_point(
        id="123e4567-e89b-12d3-a456-426655440000",
        creation_date_time="2026-11-28T12:00:00Z",
        acquisition_provenance={"source_name": "Withings", "modality": "sensed"},
    )
    decoded = decode(point)
    assert reasons(decoded) == []
    assert_rows(decoded, [(HR, 72, NOW)])


@pytest.mark.parametrize(
    ("value", "unit", "celsius"),
    [(98.6, "F", 37.0), (310.15, "K", 37.0), (37.0, "C", 37.0), (104, "F", 40.0), (95, "F", 35.0)],
)
def test_omh_temperature_is_converted_to_celsius(value: float, unit: str, celsius: float) -> None:
    body = {
        "body_temperature": {"value": value, "unit": unit},
        "effective_time_frame": {"date_time": NOW},
    }
    [(_, metric, _, stored, _)] = rows(decode(data_point("body-temperature", "4.0", body)))
    assert (metric, stored) == (TEMP, celsius)  # exactly: conversions are rounded to 1e-6


def test_omh_values_get_plausible_range_checks_after_conversion() -> None:
    body = {
        "body_temperature": {"value": 122, "unit": "F"},
        "effective_time_frame": {"date_time": NOW},
    }
    decoded = decode(data_point("body-temperature", "4.0", body))
    assert reasons(decoded) == ["impossible value"]
    assert "temperature 50.0 outside plausible range 25–45 °C" in decoded.rejected[0].detail


@pytest.mark.parametrize(
    ("interval", "stamped"),
    [
        (
            {
                "start_date_time": "2026-11-27T22:00:00+01:00",
                "end_date_time": "2026-11-28T06:30:00+01:00",
            },
            "2026-11-28T06:30:00+01:00",
        ),
        (
            {"end_date_time": "2026-11-28T06:30:00Z", "duration": {"value": 8, "unit": "h"}},
            "2026-11-28T06:30:00Z",
        ),
        (
            {
                "start_date_time": "2026-11-27T22:00:00-05:00",
                "duration": {"value": 510, "unit": "min"},
            },
            "2026-11-28T06:30:00-05:00",
        ),
        (
            {
                "start_date_time": "2026-11-27T22:00:00Z",
                "duration": {"value": 30600, "unit": "sec"},
            },
            "2026-11-28T06:30:00Z",
        ),
    ],
)
def test_omh_interval_readings_are_stamped_at_its_end(interval: object, stamped: str) -> None:
    body = {
        "total_sleep_time": {"value": 7.5, "unit": "h"},
        "effective_time_frame": {"time_interval": interval},
    }
    decoded = decode(data_point("total-sleep-time", "1.0", body))
    assert reasons(decoded) == []
    assert_rows(decoded, [(SLEEP, 450, stamped)])


@pytest.mark.parametrize(
    ("body", "reason", "words"),
    [
        (
            {"total_sleep_time": {"value": 25, "unit": "h"}},
            "impossible value",
            "sleep_minutes 1500.0 outside plausible range 0–1440 min",
        ),
        (
            {"total_sleep_time": {"value": 7, "unit": "hours"}},
            "impossible value",
            "body.total_sleep_time.unit 'hours' is not",
        ),
        (
            {"total_sleep_time": {"value": "7", "unit": "h"}},
            "wrong type",
            "body.total_sleep_time.value '7' is a string, expected a number",
        ),
        ({"total_sleep_time": 7}, "wrong type", "body.total_sleep_time 7 is a number"),
        ({}, "wrong type", "body.total_sleep_time is missing"),
    ],
)
def test_omh_bad_measure_is_rejected_with_its_path(
    body: dict[str, object], reason: str, words: str
) -> None:
    frame = {"time_interval": {"start_date_time": "2026-11-27T22:00:00Z", "end_date_time": NOW}}
    decoded = decode(data_point("total-sleep-time", "1.0", {**body, "effective_time_frame": frame}))
    assert reasons(decoded) == [reason]
    assert words in decoded.rejected[0].detail


@pytest.mark.parametrize(
    ("frame", "words"),
    [
        (
            {"time_interval": {"start_date_time": NOW, "end_date_time": "2026-11-28T10:00:00Z"}},
            "the interval ends before it starts",
        ),
        ({"time_interval": {"start_date_time": NOW}}, "neither end_date_time nor"),
        ({"time_interval": {"date": "2026-11-28", "part_of_day": "morning"}}, "part of day"),
        (
            {
                "time_interval": {
                    "start_date_time": "2026-11-27T22:00:00Z",
                    "duration": {"value": 1, "unit": "Mo"},
                }
            },
            "no fixed length",
        ),
        (
            {
                "time_interval": {
                    "start_date_time": "2026-11-27T22:00:00Z",
                    "duration": {"value": -1, "unit": "h"},
                }
            },
            "0 to 366 days",
        ),
        (
            {
                "time_interval": {
                    "start_date_time": "2026-11-27T22:00:00Z",
                    "duration": {"value": 1e300, "unit": "wk"},
                }
            },
            "0 to 366 days",
        ),
        (
            {"time_interval": {"start_date_time": "2026-11-27T22:00", "end_date_time": NOW}},
            "time_interval.start_date_time '2026-11-27T22:00' is not an RFC 3339",
        ),
        (
            {"time_interval": {"start_date_time": 1795850000, "end_date_time": NOW}},
            "start_date_time 1795850000 is a number, expected an RFC 3339 string",
        ),
        ({"date_time": NOW}, "needs body.effective_time_frame.time_interval"),
        ({"time_interval": NOW}, "time_interval '2026-11-28T11:59:00Z' is a string"),
        ([NOW], "effective_time_frame is an array"),
    ],
)
def test_omh_time_frames_that_cannot_place_a_reading(frame: object, words: str) -> None:
    body = {"step_count": 120, "effective_time_frame": frame}
    decoded = decode(data_point("step-count", "2.0", body))
    assert reasons(decoded) == ["bad timestamp"]
    assert words in decoded.rejected[0].detail


@pytest.mark.parametrize(
    ("when", "words"),
    [
        (
            "2026-11-28T11:59:00",
            "body.effective_time_frame.date_time '2026-11-28T11:59:00' is not an RFC 3339",
        ),
        ("2026-11-28", "is not an RFC 3339 date-time with an offset"),
        ("1999-12-31T23:59:59Z", "before the year 2000"),
        (None, "body.effective_time_frame.date_time is null, expected an RFC 3339 string"),
    ],
)
def test_omh_date_time_follows_the_v1_timestamp_rules(when: object, words: str) -> None:
    decoded = decode(hr_point(when=when))
    assert reasons(decoded) == ["bad timestamp"]
    assert words in decoded.rejected[0].detail


def test_omh_future_reading_is_rejected_naming_its_field() -> None:
    decoded = decode(hr_point(when="2026-11-28T13:00:00Z"))
    assert reasons(decoded) == ["future timestamp"]
    assert decoded.rejected[0].detail.startswith(
        "body.effective_time_frame.date_time '2026-11-28T13:00:00Z' is 3600 s after"
    )
    body = {
        "total_sleep_time": {"value": 1, "unit": "h"},
        "effective_time_frame": {
            "time_interval": {"start_date_time": NOW, "duration": {"value": 1, "unit": "h"}}
        },
    }
    decoded = decode(data_point("total-sleep-time", "1.0", body))
    assert reasons(decoded) == ["future timestamp"]
    assert "start_date_time '2026-11-28T11:59:00Z' plus its duration is 3540 s after" in (
        decoded.rejected[0].detail
    )


@pytest.mark.parametrize(
    ("point", "reason", "words"),
    [
        (
            data_point("blood-glucose", "2.0", {}),
            "unknown metric",
            "Open mHealth schema 'omh:blood-glucose:2.0' is not one wardwatch stores",
        ),
        (data_point("heart-rate", "4.0", {}), "unknown metric", "'omh:heart-rate:4.0'"),
        (data_point("body-temperature", "2.0", {}), "unknown metric", "'omh:body-temperature:2.0'"),
        (data_point("heart-rate", "2", {}), "unknown metric", "'omh:heart-rate:2'"),
        (
            {
                "header": {
                    "schema_id": {"namespace": "granola", "name": "heart-rate", "version": "2.0"}
                },
                "body": {},
            },
            "unknown metric",
            "'granola:heart-rate:2.0'",
        ),
        (
            {
                "header": {"schema_id": {"namespace": "omh", "name": "heart-rate", "version": 2.0}},
                "body": {},
            },
            "wrong type",
            "header.schema_id.version 2.0 is a number",
        ),
        ({"header": {"id": "x"}, "body": {}}, "wrong type", "header.schema_id is missing"),
        (
            {"header": {"schema_id": "omh:heart-rate:2.0"}, "body": {}},
            "wrong type",
            "header.schema_id 'omh:heart-rate:2.0' is a string",
        ),
        (
            {"body": {"heart_rate": {"value": 60, "unit": "beats/min"}}},
            "wrong type",
            "header is missing",
        ),
        ({"header": [], "body": {}}, "wrong type", "header is an array"),
        (data_point("heart-rate", "2.0", None), "wrong type", "body is null"),
        (
            {"header": {"schema_id": {"namespace": "omh", "name": "heart-rate", "version": "2.0"}}},
            "wrong type",
            "body is missing",
        ),
        (
            data_point(
                "heart-rate",
                "2.0",
                {
                    "heart_rate": {"value": 60, "unit": "beats/min"},
                    "descriptive_statistic": "average",
                },
            ),
            "not a measurement",
            "descriptive_statistic 'average' is a summary",
        ),
        (
            data_point(
                "sleep-episode",
                "1.0",
                {
                    "effective_time_frame": {
                        "time_interval": {
                            "start_date_time": "2026-11-27T22:00:00Z",
                            "end_date_time": NOW,
                        }
                    }
                },
            ),
            "not a measurement",
            "without body.total_sleep_time",
        ),
        (
            data_point(
                "oxygen-saturation",
                "1.0",
                {
                    "oxygen_saturation": {"value": 72, "unit": "%"},
                    "system": "venous",
                    "effective_time_frame": {"date_time": NOW},
                },
            ),
            "unknown metric",
            "system 'venous' by null is not SpO2",
        ),
        (
            data_point(
                "step-count",
                "2.0",
                {
                    "step_count": 12.5,
                    "effective_time_frame": {
                        "time_interval": {
                            "start_date_time": "2026-11-28T11:00:00Z",
                            "end_date_time": NOW,
                        }
                    },
                },
            ),
            "wrong type",
            "steps 12.5 is a number, expected a whole number",
        ),
        (
            data_point(
                "step-count",
                "2.0",
                {
                    "step_count": "12",
                    "effective_time_frame": {
                        "time_interval": {
                            "start_date_time": "2026-11-28T11:00:00Z",
                            "end_date_time": NOW,
                        }
                    },
                },
            ),
            "wrong type",
            "body.step_count '12' is a string, expected a number",
        ),
    ],
)
def test_omh_rejects(point: object, reason: str, words: str) -> None:
    decoded = decode(point)
    assert reasons(decoded) == [reason]
    assert words in decoded.rejected[0].detail
    assert len(decoded.readings) == 0


def test_supplemental_oxygen_sets_on_oxygen_and_room_air_clears_it() -> None:
    def point(flow: float) -> dict[str, object]:
        return data_point(
            "oxygen-saturation",
            "2.0",
            {
                "oxygen_saturation": {"value": 93, "unit": "%"},
                "supplemental_oxygen_flow_rate": {"value": flow, "unit": "L/min"},
                "effective_time_frame": {"date_time": NOW},
            },
        )

    assert_rows(decode(point(2)), [(SPO2, 93, NOW), (O2, 1, NOW)])
    assert_rows(decode(point(0)), [(SPO2, 93, NOW), (O2, 0, NOW)])


def test_an_array_may_mix_v1_samples_and_data_points_and_a_bad_one_loses_nothing_else() -> None:
    items: list[object] = [
        {"ts": NOW, "spo2": 96},
        hr_point(72),
        hr_point(400),  # impossible
        data_point("blood-glucose", "2.0", {}),
        {"resourceType": "Observation", "status": "final"},
        hr_point(75, when="2026-11-28T11:58:00+01:00"),
    ]
    decoded = decode(items)
    assert_rows(decoded, [(SPO2, 96, NOW), (HR, 72, NOW), (HR, 75, "2026-11-28T11:58:00+01:00")])
    assert [(r.reason, r.detail.split(":")[0]) for r in decoded.rejected] == [
        ("impossible value", "item 2"),
        ("unknown metric", "item 3"),
        ("unknown field", "item 4"),
    ]
    assert "a FHIR resource is sent alone or in a Bundle" in decoded.rejected[2].detail
    assert [r.raw for r in decoded.rejected] == [orjson.dumps(items[i]) for i in (2, 3, 4)]


def test_omh_and_v1_readings_of_one_instant_are_duplicates() -> None:
    decoded = decode([{"ts": NOW, "heart_rate": 70}, hr_point(72)])
    assert decoded.duplicates == 1
    assert_rows(decoded, [(HR, 70, NOW)])


# --- FHIR: HL7's published examples -------------------------------------------------------------


def fhir_fixture(name: str) -> dict[str, Any]:
    text = (DATA / "fhir" / f"observation-example-{name}.json").read_text(encoding="utf-8")
    parsed: dict[str, Any] = json.loads(text)
    return parsed


RESTAMP = "2026-11-28T09:30:00+01:00"
#: example -> (readings when re-stamped at RESTAMP, reasons). As published, those dated 1999-07-02
#: or 2012-09-17 are rejected as "bad timestamp": a date has no time of day and no offset.
HL7: dict[str, tuple[list[Row], list[str]]] = {
    "heart-rate": ([(HR, 44, RESTAMP)], []),
    "respiratory-rate": ([(RR, 26, RESTAMP)], []),
    "body-temperature": ([(TEMP, 36.5, RESTAMP)], []),
    "bloodpressure": ([(SYS, 107, RESTAMP), (DIA, 60, RESTAMP)], []),
    "bloodpressure-dar": ([(SYS, 107, RESTAMP)], ["not a measurement"]),  # diastolic absent
}


@pytest.mark.parametrize("name", sorted(HL7))
def test_hl7_examples_dated_without_a_time_are_rejected(name: str) -> None:
    resource = fhir_fixture(name)
    decoded = decode(resource)
    assert reasons(decoded) == ["bad timestamp"]
    assert decoded.rejected[0].detail.startswith(
        f"effectiveDateTime {resource['effectiveDateTime']!r} is not an RFC 3339 date-time"
    )


@pytest.mark.parametrize("name", sorted(HL7))
def test_hl7_examples_restamped(name: str) -> None:
    resource = fhir_fixture(name)
    resource["effectiveDateTime"] = RESTAMP
    want_rows, want_reasons = HL7[name]
    decoded = decode(resource)
    assert_rows(decoded, want_rows)
    assert reasons(decoded) == want_reasons


def test_hl7_sat_o2_example_as_published() -> None:
    decoded = decode(fhir_fixture("satO2"))
    assert reasons(decoded) == []
    assert_rows(decoded, [(SPO2, 95, "2014-12-05T09:30:10+01:00")])


def test_hl7_entered_in_error_example_is_not_a_measurement() -> None:
    decoded = decode(fhir_fixture("f202-temperature"))
    assert reasons(decoded) == ["not a measurement"]
    assert "status 'entered-in-error'" in decoded.rejected[0].detail


def test_hl7_glucose_example_is_an_unknown_metric() -> None:
    decoded = decode(fhir_fixture("f001-glucose"))
    assert reasons(decoded) == ["unknown metric"]
    assert "LOINC '15074-8' is not a vital sign" in decoded.rejected[0].detail


def test_a_bundle_keeps_every_good_entry_and_sets_each_bad_one_aside() -> None:
    good = [fhir_fixture(n) for n in ("heart-rate", "bloodpressure", "body-temperature")]
    for resource in good:
        resource["effectiveDateTime"] = RESTAMP
    entries: list[object] = [
        {"fullUrl": "urn:uuid:1", "resource": good[0]},
        {"fullUrl": "urn:uuid:2", "resource": fhir_fixture("heart-rate")},  # dated 1999-07-02
        {"resource": good[1]},
        {"resource": fhir_fixture("f202-temperature")},
        {"resource": {"resourceType": "Patient", "id": "example"}},
        {"fullUrl": "urn:uuid:6"},
        42,
        {"resource": fhir_fixture("satO2")},
        {"resource": fhir_fixture("f001-glucose")},
        {"resource": good[2], "request": {"method": "POST", "url": "Observation"}},
    ]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    decoded = decode(bundle)
    assert_rows(
        decoded,
        [
            (HR, 44, RESTAMP),
            (SYS, 107, RESTAMP),
            (DIA, 60, RESTAMP),
            (SPO2, 95, "2014-12-05T09:30:10+01:00"),
            (TEMP, 36.5, RESTAMP),
        ],
    )
    assert [(r.reason, r.detail.split(":")[0]) for r in decoded.rejected] == [
        ("bad timestamp", "entry 1"),
        ("not a measurement", "entry 3"),
        ("not a measurement", "entry 4"),
        ("not an object", "entry 5"),
        ("not an object", "entry 6"),
        ("unknown metric", "entry 8"),
    ]
    assert decoded.rejected[2].detail == "entry 4: resourceType 'Patient' is not an Observation"
    for rejected in decoded.rejected:
        index = int(rejected.detail.split(":")[0].removeprefix("entry "))
        assert rejected.raw == orjson.dumps(entries[index])


# --- FHIR: rules ----------------------------------------------------------------------------------


def observation(
    code: str = "8867-4", value: object = 72, ucum: object = "/min", **extra: object
) -> dict[str, object]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": fhir.LOINC, "code": code}]},
        "effectiveDateTime": NOW,
        "valueQuantity": {
            "value": value,
            "unit": "x",
            "system": "http://unitsofmeasure.org",
            "code": ucum,
        },
        **extra,
    }


@pytest.mark.parametrize(
    ("code", "value", "ucum", "metric", "stored"),
    [
        ("8867-4", 72, "/min", HR, 72),
        ("8867-4", 72, "{beats}/min", HR, 72),
        ("9279-1", 16, "/min", RR, 16),
        ("9279-1", 16, "{breaths}/min", RR, 16),
        ("2708-6", 97, "%", SPO2, 97),
        ("59408-5", 97, "%", SPO2, 97),
        ("59408-5", 0.97, "1", SPO2, 97),  # a fraction
        ("2708-6", 1, "1", SPO2, 100),
        ("8310-5", 37.2, "Cel", TEMP, 37.2),
        ("8310-5", 98.6, "[degF]", TEMP, 37.0),
        ("8310-5", 310.15, "K", TEMP, 37.0),
        ("8480-6", 128, "mm[Hg]", SYS, 128),
        ("8462-4", 84, "mm[Hg]", DIA, 84),
        ("55423-8", 812, "{steps}", STEPS, 812),
        ("41950-7", 9000, "1", STEPS, 9000),
        ("41950-7", 9000, "{count}", STEPS, 9000),
    ],
)
def test_fhir_codes_and_units(
    code: str, value: float, ucum: str, metric: Metric, stored: float
) -> None:
    decoded = decode(observation(code, value, ucum))
    assert reasons(decoded) == []
    [(_, got_metric, ts_us, got, offset)] = rows(decoded)
    assert (got_metric, got, ts_us, offset) == (metric, stored, NOW_US, 0)


@pytest.mark.parametrize("status", ["final", "amended", "corrected", "preliminary"])
def test_fhir_statuses_that_are_results(status: str) -> None:
    assert reasons(decode(observation(status=status))) == []


@pytest.mark.parametrize(
    "status", ["entered-in-error", "cancelled", "registered", "unknown", "Final"]
)
def test_fhir_statuses_that_are_not_measurements(status: str) -> None:
    decoded = decode(observation(status=status))
    assert reasons(decoded) == ["not a measurement"]
    assert f"status {status!r}" in decoded.rejected[0].detail


@pytest.mark.parametrize(
    ("resource", "reason", "words"),
    [
        (observation(status=None), "wrong type", "status is null"),
        (
            {k: v for k, v in observation().items() if k != "status"},
            "wrong type",
            "status is missing",
        ),
        (
            observation(effectiveDateTime="2026-11-28"),
            "bad timestamp",
            "effectiveDateTime '2026-11-28' is not an RFC 3339 date-time with an offset",
        ),
        (observation(effectiveDateTime="2026-11-28T11:59:00"), "bad timestamp", "with an offset"),
        (observation(effectiveDateTime="2026-11"), "bad timestamp", "'2026-11'"),
        (
            observation(effectiveDateTime=1795859940),
            "bad timestamp",
            "effectiveDateTime 1795859940 is a number, expected a FHIR dateTime string",
        ),
        (
            observation(effectiveDateTime="2026-11-28T13:00:00+01:00:00"),
            "bad timestamp",
            "RFC 3339",
        ),
        (
            observation(effectiveDateTime="2026-11-28T12:59:00Z"),
            "future timestamp",
            "effectiveDateTime '2026-11-28T12:59:00Z' is 3540 s after",
        ),
        (
            {k: v for k, v in observation().items() if k != "effectiveDateTime"},
            "bad timestamp",
            "no effectiveDateTime or effectivePeriod",
        ),
        (observation(effectiveDateTime=None) | {"effectiveTiming": {}}, "bad timestamp", "null"),
        (
            {
                k: v
                for k, v in observation(effectivePeriod={"start": NOW}).items()
                if k != "effectiveDateTime"
            },
            "bad timestamp",
            "effectivePeriod has no end",
        ),
        (
            {
                k: v
                for k, v in observation(
                    effectivePeriod={"start": NOW, "end": "2026-11-28T11:00:00Z"}
                ).items()
                if k != "effectiveDateTime"
            },
            "bad timestamp",
            "effectivePeriod.start '2026-11-28T11:59:00Z' is after effectivePeriod.end",
        ),
        (observation("8302-2"), "unknown metric", "code LOINC '8302-2' is not a vital sign"),
        (
            {
                **observation(),
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "364075005"}]},
            },
            "unknown metric",
            "code has no LOINC coding",
        ),
        ({**observation(), "code": {"text": "Heart rate"}}, "unknown metric", "code is an object"),
        (
            observation(ucum="beats/min"),
            "impossible value",
            "valueQuantity.code 'beats/min' is not /min",
        ),
        (observation("8310-5", 37, "C"), "impossible value", "'C' is not Cel, [degF] or K"),
        (observation("2708-6", 0.97, "%"), "impossible value", "spo2 0.97 outside plausible range"),
        (observation("55423-8", 10.5, "{steps}"), "wrong type", "expected a whole number"),
        (observation(ucum=None), "wrong type", "valueQuantity.code is null, expected a UCUM code"),
        (observation(value="72"), "wrong type", "valueQuantity.value '72' is a string"),
        (
            observation(
                valueQuantity={"value": 72, "code": "/min", "system": "urn:iso:std:iso:11073:10101"}
            ),
            "impossible value",
            "valueQuantity.system 'urn:iso:std:iso:11073:10101' is not",
        ),
        (
            observation(valueQuantity={"value": 72, "code": "/min", "comparator": ">"}),
            "not a measurement",
            "valueQuantity.comparator '>'",
        ),
        (observation(valueQuantity=[72]), "wrong type", "valueQuantity is an array"),
        (
            {k: v for k, v in observation(valueString="72 bpm").items() if k != "valueQuantity"},
            "wrong type",
            "Observation has valueString, expected valueQuantity",
        ),
        (
            {
                k: v
                for k, v in observation(
                    dataAbsentReason={"coding": [{"code": "asked-declined"}]}
                ).items()
                if k != "valueQuantity"
            },
            "not a measurement",
            "Observation has no value: dataAbsentReason 'asked-declined'",
        ),
        (
            {k: v for k, v in observation().items() if k != "valueQuantity"},
            "wrong type",
            "Observation has no valueQuantity",
        ),
        (
            {**observation("85354-9"), "valueQuantity": {"value": 120, "code": "mm[Hg]"}},
            "wrong type",
            "a blood pressure panel (85354-9) needs its values in component",
        ),
        (
            observation("85354-9", component="120/80"),
            "wrong type",
            "component '120/80' is a string",
        ),
        (
            observation(
                "85354-9",
                component=[
                    {
                        "code": {"coding": [{"system": fhir.LOINC, "code": "8478-0"}]},
                        "valueQuantity": {"value": 93, "code": "mm[Hg]"},
                    }
                ],
            ),
            "unknown metric",
            "component[0].code LOINC '8478-0'",
        ),
        ({"resourceType": "Patient", "id": "x"}, "not a measurement", "resourceType 'Patient'"),
        ({"resourceType": None}, "not a measurement", "resourceType null is not an Observation"),
        (
            {"resourceType": "Bundle", "type": "collection", "entry": []},
            "not an object",
            "Bundle has no entry",
        ),
        ({"resourceType": "Bundle", "type": "collection"}, "not an object", "Bundle has no entry"),
        (
            {"resourceType": "Bundle", "entry": {"resource": {}}},
            "wrong type",
            "Bundle.entry is an object, expected an array",
        ),
        (
            {"resourceType": "Bundle", "entry": [{"resource": 7}]},
            "not an object",
            "entry 0: resource 7 is a number, expected an object",
        ),
    ],
)
def test_fhir_rejects(resource: object, reason: str, words: str) -> None:
    decoded = decode(resource)
    assert reasons(decoded) == [reason]
    assert words in decoded.rejected[0].detail, decoded.rejected[0].detail
    assert len(decoded.readings) == 0


def test_fhir_period_reading_is_stamped_at_its_end_with_its_offset() -> None:
    steps = observation("55423-8", 640, "{steps}")
    del steps["effectiveDateTime"]
    steps["effectivePeriod"] = {
        "start": "2026-11-28T11:00:00+01:00",
        "end": "2026-11-28T12:00:00+01:00",
    }
    assert_rows(decode(steps), [(STEPS, 640, "2026-11-28T12:00:00+01:00")])
    instant = observation()
    del instant["effectiveDateTime"]
    instant["effectiveInstant"] = "2026-11-28T11:59:00.250Z"
    assert_rows(decode(instant), [(HR, 72, "2026-11-28T11:59:00.250Z")])


def test_a_bad_component_is_set_aside_alone() -> None:
    bp = fhir_fixture("bloodpressure")
    bp["effectiveDateTime"] = RESTAMP
    bp["component"][0]["valueQuantity"]["code"] = "mmHg"  # the display unit, not UCUM
    bp["component"].append(
        {
            "code": {"coding": [{"system": fhir.LOINC, "code": "8867-4"}]},
            "valueQuantity": {"value": 64, "code": "/min"},
        }
    )
    decoded = decode(bp)
    assert_rows(decoded, [(DIA, 60, RESTAMP), (HR, 64, RESTAMP)])
    assert [(r.reason, r.detail) for r in decoded.rejected] == [
        ("impossible value", "component[0].valueQuantity.code 'mmHg' is not mm[Hg]"),
    ]


def test_a_panel_of_other_observations_stores_nothing_and_is_not_an_error() -> None:
    panel = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": fhir.LOINC, "code": "85353-1"}]},
        "effectiveDateTime": "1999-07-02",
        "hasMember": [{"reference": "Observation/heart-rate"}],
    }
    decoded = decode(
        {"resourceType": "Bundle", "entry": [{"resource": panel}, {"resource": observation()}]}
    )
    assert reasons(decoded) == []
    assert_rows(decoded, [(HR, 72, NOW)])


def test_fhir_subject_and_other_identifying_elements_are_not_read() -> None:
    resource = observation(
        subject={"reference": "Patient/123", "display": "A Person"},
        device={"reference": "Device/abc"},
        issued="2026-11-28T12:30:00Z",
    )
    decoded = decode(resource)
    assert reasons(decoded) == []
    assert_rows(decoded, [(HR, 72, NOW)])


# --- detection stays a key check ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"ts": NOW, "heart_rate": 72, "note": 1}, "unknown field"),  # v1 as ever
        ({"header": {}}, "wrong type"),  # one OMH key is enough to be read as OMH
        ({"body": {}}, "wrong type"),
        ({"resourceType": "Patient"}, "not a measurement"),
        ({"ts": NOW, "resourceType": "Observation"}, "unknown field"),  # "ts" makes it v1
        ({"ts": NOW, "body": {}}, "unknown field"),
    ],
)
def test_the_format_is_told_by_the_payload_keys(payload: object, reason: str) -> None:
    assert reasons(decode(payload)) == [reason]


def test_new_reasons_are_registered() -> None:
    assert {"unknown metric", "not a measurement"} <= REASONS


# --- properties ----------------------------------------------------------------------------------

OMH_NAMES = sorted({name for name, _ in omh.SCHEMAS} | {"blood-glucose", "physical-activity"})
UNITS = [
    "beats/min",
    "breaths/min",
    "%",
    "C",
    "F",
    "K",
    "mmHg",
    "steps",
    "L/min",
    "LPM",
    "h",
    "min",
    "sec",
    "Mo",
    "d",
    "beat/min",
    "",
]
RFC3339_TIMES = TIMES.map(lambda t: t.isoformat())
TIME_STRINGS = RFC3339_TIMES | st.sampled_from([NOW, "2026-11-28", "2026-11-28T11:59:00", ""])
UNIT_VALUES = st.fixed_dictionaries(
    {
        "value": st.integers(-10, 2000) | st.floats(-10, 2000) | JSON_SCALARS,
        "unit": st.sampled_from(UNITS) | JSON_SCALARS,
    },
)
TIME_FRAMES = st.one_of(
    st.fixed_dictionaries({"date_time": TIME_STRINGS | JSON_SCALARS}),
    st.fixed_dictionaries(
        {},
        optional={
            "start_date_time": TIME_STRINGS,
            "end_date_time": TIME_STRINGS,
            "duration": UNIT_VALUES,
            "date": st.just("2026-11-28"),
        },
    ).map(lambda interval: {"time_interval": interval}),
    JSON_VALUES,
)
BODY_KEYS = [
    "heart_rate",
    "oxygen_saturation",
    "respiratory_rate",
    "body_temperature",
    "step_count",
    "systolic_blood_pressure",
    "diastolic_blood_pressure",
    "total_sleep_time",
    "supplemental_oxygen_flow_rate",
]
OMH_LIKE = st.fixed_dictionaries(
    {
        "header": st.fixed_dictionaries(
            {
                "schema_id": st.fixed_dictionaries(
                    {
                        "namespace": st.sampled_from(["omh", "omh", "ieee"]) | JSON_SCALARS,
                        "name": st.sampled_from(OMH_NAMES) | JSON_SCALARS,
                        "version": st.sampled_from(["1.0", "1.1", "2.0", "3.0", "4.0", "2", "x"])
                        | JSON_SCALARS,
                    }
                )
                | JSON_VALUES
            },
        )
        | JSON_VALUES,
        "body": st.dictionaries(
            st.sampled_from(BODY_KEYS),
            UNIT_VALUES | st.integers(-1, 30000) | JSON_VALUES,
            max_size=3,
        ).flatmap(
            lambda body: st.fixed_dictionaries(
                {},
                optional={
                    "effective_time_frame": TIME_FRAMES,
                    "descriptive_statistic": st.just("average"),
                    "system": st.sampled_from(["peripheral capillary", "venous"]),
                    "measurement_method": st.sampled_from(["pulse oximetry", "CO-oximetry"]),
                },
            ).map(lambda extra: {**body, **extra})
        )
        | JSON_VALUES,
    },
)
LOINC_CODES = [*sorted(fhir.CODES), "85354-9", "85353-1", "15074-8"]
UCUM_CODES = ["/min", "{beats}/min", "%", "1", "Cel", "[degF]", "K", "mm[Hg]", "{steps}", "mmHg"]
QUANTITIES = st.fixed_dictionaries(
    {"value": st.integers(-10, 20000) | st.floats(-10, 400) | JSON_SCALARS},
    optional={
        "code": st.sampled_from(UCUM_CODES) | JSON_SCALARS,
        "system": st.sampled_from(["http://unitsofmeasure.org", "urn:x"]),
        "comparator": st.just("<"),
    },
)
CONCEPTS = (
    st.fixed_dictionaries(
        {
            "coding": st.lists(
                st.fixed_dictionaries(
                    {
                        "system": st.sampled_from(
                            [fhir.LOINC, fhir.LOINC, "http://snomed.info/sct"]
                        ),
                        "code": st.sampled_from(LOINC_CODES) | JSON_SCALARS,
                    }
                )
                | JSON_VALUES,
                max_size=3,
            )
        },
    )
    | JSON_VALUES
)
OBSERVATIONS = st.fixed_dictionaries(
    {"resourceType": st.sampled_from(["Observation", "Observation", "Patient"]) | JSON_SCALARS},
    optional={
        "status": st.sampled_from(["final", "amended", "entered-in-error", "cancelled"])
        | JSON_SCALARS,
        "code": CONCEPTS,
        "effectiveDateTime": TIME_STRINGS | JSON_SCALARS,
        "effectivePeriod": st.fixed_dictionaries(
            {}, optional={"start": TIME_STRINGS, "end": TIME_STRINGS}
        )
        | JSON_VALUES,
        "valueQuantity": QUANTITIES | JSON_VALUES,
        "valueString": st.text(max_size=5),
        "dataAbsentReason": CONCEPTS,
        "component": st.lists(
            st.fixed_dictionaries(
                {"code": CONCEPTS},
                optional={"valueQuantity": QUANTITIES, "dataAbsentReason": CONCEPTS},
            )
            | JSON_VALUES,
            max_size=3,
        )
        | JSON_VALUES,
        "hasMember": st.just([{"reference": "Observation/x"}]),
    },
)
FHIR_LIKE = OBSERVATIONS | st.fixed_dictionaries(
    {"resourceType": st.just("Bundle")},
    optional={
        "entry": st.lists(
            st.fixed_dictionaries({}, optional={"resource": OBSERVATIONS | JSON_VALUES})
            | JSON_VALUES,
            max_size=5,
        )
        | JSON_VALUES
    },
)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.lists(
        OMH_LIKE | FHIR_LIKE | st.lists(OMH_LIKE | FHIR_LIKE, max_size=4), min_size=1, max_size=4
    )
)
def test_fuzz_omh_and_fhir_shaped_junk_never_raises(payloads: list[object]) -> None:
    decoded = decode_batch([(TOPIC, json.dumps(p).encode(), RECEIVED) for p in payloads])
    check_invariants(decoded)


@given(st.floats(25, 45), st.sampled_from(["F", "K", "C"]), TIMES)
def test_omh_temperature_round_trip(celsius: float, unit: str, when: datetime) -> None:
    sent = {"F": celsius * 9 / 5 + 32, "K": celsius + 273.15, "C": celsius}[unit]
    body = {
        "body_temperature": {"value": sent, "unit": unit},
        "effective_time_frame": {"date_time": when.isoformat()},
    }
    decoded = decode(data_point("body-temperature", "4.0", body))
    if not PLAUSIBLE[TEMP].contains(round(celsius, 5)):
        return  # at the very edge, float arithmetic may step outside the range: not the point
    [(_, metric, ts_us, value, offset)] = rows(decoded)
    assert (metric, ts_us) == (TEMP, us(when))
    assert value == pytest.approx(celsius, abs=2e-6)
    utc_offset = when.utcoffset()
    assert utc_offset is not None
    assert offset == utc_offset // timedelta(minutes=1)


@given(st.floats(0.5, 1), st.sampled_from(["2708-6", "59408-5"]))
def test_fhir_spo2_fraction_round_trip(fraction: float, code: str) -> None:
    [(_, metric, _, value, _)] = rows(decode(observation(code, fraction, "1")))
    assert metric is SPO2
    assert value == pytest.approx(fraction * 100, abs=1e-6)


@given(st.lists(st.sampled_from(sorted(HL7)), min_size=1, max_size=5), st.data())
def test_a_bundle_decodes_as_its_entries_sent_alone(names: list[str], data: st.DataObject) -> None:
    resources = []
    for name in names:
        resource = fhir_fixture(name)
        resource["effectiveDateTime"] = data.draw(RFC3339_TIMES)
        resources.append(resource)
    bundle = decode({"resourceType": "Bundle", "entry": [{"resource": r} for r in resources]})
    alone = decode_batch([(TOPIC, orjson.dumps(r), RECEIVED) for r in resources])
    assert rows(bundle) == rows(alone)
    assert bundle.duplicates == alone.duplicates
    assert reasons(bundle) == [r.reason for r in alone.rejected]


# --- docs/formats.md stays in step --------------------------------------------------------------


def test_formats_doc_tables_every_schema_and_code() -> None:
    text = (DOCS / "formats.md").read_text(encoding="utf-8")
    for name, major in omh.SCHEMAS:
        row = re.search(rf"^\| `{re.escape(name)}` \| ([^|]+)\|", text, flags=re.MULTILINE)
        assert row is not None, name
        assert f"{major}.x" in row.group(1), (name, major)
    for code, (field, _) in fhir.CODES.items():
        assert re.search(rf"^\| `{re.escape(code)}` \|.*`{field}`", text, flags=re.MULTILINE), code
    sleep = PLAUSIBLE[SLEEP]
    [row] = [line for line in text.splitlines() if line.startswith("| `sleep_minutes` |")]
    assert f"{sleep.low:g}–{sleep.high:g}" in row
    assert sleep.unit in row


def test_wire_format_section_10_examples_decode_cleanly() -> None:
    text = (DOCS / "wire-format.md").read_text(encoding="utf-8")
    section = text.split("## 10. Formats", 1)[1].split("\n## ", 1)[0]
    examples = re.findall(r"```json\n(.*?)```", section, flags=re.DOTALL)
    assert len(examples) == 2
    point, bundle = (decode(e.encode()) for e in examples)
    assert reasons(point) == []
    assert_rows(point, [(HR, 78, "2026-11-28T09:15:00Z")])
    assert reasons(bundle) == []
    bp_at, temp_at = "2026-06-12T08:00:00+01:00", "2026-06-12T08:01:00+01:00"
    assert_rows(bundle, [(SYS, 134, bp_at), (DIA, 82, bp_at), (TEMP, (99.1 - 32) * 5 / 9, temp_at)])
