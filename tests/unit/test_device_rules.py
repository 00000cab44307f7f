"""Technical alerts from what a device says of itself: battery, wear, clock (table-driven)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.model import Condition, Rule, Severity
from alerts.rules import (
    DeviceHealth,
    battery_condition,
    battery_critical_condition,
    clock_skew_condition,
    describe,
    not_worn_condition,
    sensor_condition,
)
from signals.news2 import news2_from_latest
from signals.quality import Quality
from signals.vitals import Metric

T = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _fired(c: Condition | None) -> tuple[Rule, str] | None:
    if c is None:
        return None
    assert c.severity is Severity.TECHNICAL  # device problems never page like clinical ones
    return c.rule, c.summary


@pytest.mark.parametrize(
    ("pct", "low", "critical"),
    [
        (None, None, None),
        (85.0, None, None),
        (20.5, None, None),
        (20.0, "battery of device d1 at 20 %: ask the patient to charge it today", None),
        (11.0, "battery of device d1 at 11 %: ask the patient to charge it today", None),
        (10.0, None, "battery of device d1 at 10 %: monitoring stops within hours unless it is "
                     "charged now"),
        (3.0, None, "battery of device d1 at 3 %: monitoring stops within hours unless it is "
                    "charged now"),
    ],
)  # fmt: skip
def test_battery_low_and_critical_are_separate_alerts(
    pct: float | None, low: str | None, critical: str | None
) -> None:
    h = DeviceHealth(battery_pct=pct)
    assert _fired(battery_condition("p1", "d1", h)) == (
        None if low is None else (Rule.BATTERY, low)
    )
    assert _fired(battery_critical_condition("p1", "d1", h)) == (
        None if critical is None else (Rule.BATTERY_CRITICAL, critical)
    )


@pytest.mark.parametrize(
    ("off_minutes", "want"),
    [
        (None, None),  # worn
        (29, None),  # a wash
        (30, "device d1 off the body for 30 min: no vital signs are being measured"),
        (95, "device d1 off the body for 95 min: no vital signs are being measured"),
    ],
)
def test_not_worn_after_half_an_hour_by_the_devices_own_clock(
    off_minutes: int | None, want: str | None
) -> None:
    since = None if off_minutes is None else T - timedelta(minutes=off_minutes)
    h = DeviceHealth(off_body_since=since, latest_at=T)
    assert _fired(not_worn_condition("p1", "d1", h)) == (
        None if want is None else (Rule.NOT_WORN, want)
    )


@pytest.mark.parametrize(
    ("offset", "refused", "want"),
    [
        (None, 0, None),
        (90.0, 0, None),
        (-119.0, 0, None),
        (300.0, 0, "device d1: clock 300 s ahead (set its clock or check its time sync)"),
        (-600.0, 0, "device d1: clock 600 s behind (set its clock or check its time sync)"),
        (None, 12, "device d1: 12 readings refused as future-dated in the last hour (set its "
                   "clock or check its time sync)"),
    ],
)  # fmt: skip
def test_clock_skew_from_status_reports_or_refused_readings(
    offset: float | None, refused: int, want: str | None
) -> None:
    h = DeviceHealth(clock_offset_s=offset, future_refused=refused)
    assert _fired(clock_skew_condition("p1", "d1", h)) == (
        None if want is None else (Rule.CLOCK_SKEW, want)
    )


def test_a_sensor_fault_names_each_bad_sensor_and_ignores_the_rest() -> None:
    faults = {
        Metric.SPO2: Quality.NOISY,
        Metric.HEART_RATE: Quality.STUCK,
        Metric.RESP_RATE: Quality.INTERMITTENT_LOSS,  # some loss is not a fault
    }
    c = sensor_condition("p1", "d1", faults)
    assert c is not None
    assert c.rule is Rule.SENSOR
    assert c.severity is Severity.TECHNICAL
    assert c.summary == (
        "device d1: heart rate stuck; SpO2 noisy over the last hour"
        " (kept out of NEWS2 until it recovers)"
    )
    assert sensor_condition("p1", "d1", {Metric.HEART_RATE: Quality.ACCEPTABLE}) is None


def test_a_waveform_without_beats_is_a_sensor_fault_in_words() -> None:
    alone = sensor_condition("p1", "d1", {}, no_beats_in="ecg")
    assert alone is not None
    assert (alone.rule, alone.severity) == (Rule.SENSOR, Severity.TECHNICAL)
    assert alone.summary == (
        "device d1: no heartbeat found in its ECG over the last hour: heart rate not measured"
        " (electrodes loose or off?)"
    )
    both = sensor_condition("p1", "d1", {Metric.SPO2: Quality.STUCK}, no_beats_in="ppg")
    assert both is not None
    assert both.summary == (
        "device d1: SpO2 stuck over the last hour (kept out of NEWS2 until it recovers); no pulse"
        " found in its PPG over the last hour: heart rate not measured (off the wrist, loose, or"
        " moving all the time?)"
    )


def test_news2_says_why_a_parameter_was_not_measured() -> None:
    score = news2_from_latest(
        {Metric.RESP_RATE: (0, 27.0), Metric.TEMPERATURE: (0, 39.3)}, at_us=0, freshness_us=1
    )
    text = describe(score, {"heart_rate": "stuck"})
    assert "HR (sensor stuck)" in text
    assert "SpO2" in text  # simply not measured: no reason given
    assert "SpO2 (sensor" not in text
