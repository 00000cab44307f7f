"""A patient's day in a few numbers: the features the behaviour-based risk score compares.

The risk score (``signals.risk``) works on one value per feature per day; this module reduces a
day of minute-level readings to those values, and says NaN rather than guess when the day's data
cannot support one (quality first: a feature from three minutes of data is not a feature).

A "day" is the 24 hours that end at ``DAY_ENDS_AT_H`` local time, so each day holds one whole
night and is complete by the morning ward round; the night features come from ``NIGHT_H``, when
nearly everyone is in bed and heart rate, breathing and temperature are least disturbed by what
the patient is doing (Mishra et al., Nat Biomed Eng 2020, used the sleeping hours the same way).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import numpy.typing as npt

from signals.activity import LIGHT_MIN_MG
from signals.hrv import clean_nn, time_domain
from signals.quality import Quality, label_windows
from signals.resting import nightly_resting_hr, resting_minutes
from signals.risk import Feature
from signals.sleep import main_sleep_period
from signals.vitals import F64, I64, Metric, Readings

#: The day ends at 10:00 local: after the night, in time for the morning review.
DAY_ENDS_AT_H = 10
#: Night features are taken between 00:00 and 06:00 local.
NIGHT_H = (0, 6)
#: A day counts for activity only if the device was worn for 16 of its 24 hours: a watch on the
#: charger all afternoon is not an inactive patient. (Troiano et al. 2008 asked for 10 h of
#: waking wear for accelerometry; our day includes the night, hence 16 of 24.)
MIN_WORN_MINUTES = 16 * 60
#: Fewest samples for a night median: an hour of minute samples, or 12 five-minute temperatures.
MIN_NIGHT_SAMPLES = {Metric.RESP_RATE: 60, Metric.SPO2: 60, Metric.TEMPERATURE: 12}
#: Fewest NN intervals for a night's RMSSD: about five minutes of beats (Task Force 1996).
MIN_NN_INTERVALS = 300

#: Night samples are labelled in slices (signals.quality) before they are used: a slice that is
#: noisy, stuck (a frozen sensor repeating one value) or off-body contributes nothing, so a
#: feature from bad data becomes "not measured" rather than a confident wrong number.
QUALITY_WINDOW_S = {
    Metric.HEART_RATE: 600,
    Metric.RESP_RATE: 600,
    Metric.SPO2: 600,
    Metric.TEMPERATURE: 1800,  # six five-minute samples
}
_USABLE = Quality.INTERMITTENT_LOSS  # some loss is fine: the minimum counts guard the median

#: Sleep bouts from the accelerometer up to this far apart belong to one night (van Hees et al.
#: 2018, Sci Rep 8:12975, HDCZA: gaps under 60 min joined).
ACCEL_MAX_WAKE_BOUT_MIN = 60

_US = 1_000_000
_MIN_US = 60 * _US


@dataclass(frozen=True, slots=True)
class DayWindow:
    """Where one day and its night lie in event time (UTC microseconds, half-open)."""

    day: date
    start_us: int
    end_us: int
    night_start_us: int
    night_end_us: int


def day_window(day: date, utc_offset_min: int) -> DayWindow:
    """The window of local ``day`` for a patient at ``utc_offset_min`` (the device's offset)."""
    offset = timedelta(minutes=utc_offset_min)
    end = datetime.combine(day, time(DAY_ENDS_AT_H), UTC) - offset
    night_start = datetime.combine(day, time(NIGHT_H[0]), UTC) - offset
    night_end = datetime.combine(day, time(NIGHT_H[1]), UTC) - offset

    def us(t: datetime) -> int:
        return int(t.timestamp()) * _US

    return DayWindow(day, us(end - timedelta(days=1)), us(end), us(night_start), us(night_end))


def day_of(ts_us: int, utc_offset_min: int) -> date:
    """The local day whose window holds the instant ``ts_us``."""
    local = datetime.fromtimestamp(ts_us / _US, UTC) + timedelta(minutes=utc_offset_min)
    shifted = local - timedelta(hours=DAY_ENDS_AT_H)
    return shifted.date() + timedelta(days=1)


def _series(readings: Readings, metric: Metric, lo_us: int, hi_us: int) -> tuple[I64, F64]:
    keep = (readings.metric == metric) & (readings.ts_us >= lo_us) & (readings.ts_us < hi_us)
    ts, value = readings.ts_us[keep], readings.value[keep]
    order = np.argsort(ts, kind="stable")
    return ts[order], value[order]


def worn_minutes(readings: Readings, lo_us: int, hi_us: int) -> int:
    """Minutes in ``[lo, hi)`` the device was on the body.

    From the device's own worn flag where it sends one; otherwise a minute with a heart rate
    counts as worn (an optical sensor off the skin reports none).
    """
    ts, worn = _series(readings, Metric.WORN, lo_us, hi_us)
    if ts.size == 0:
        ts, _ = _series(readings, Metric.HEART_RATE, lo_us, hi_us)
        worn = np.ones(ts.size)
    minutes = np.unique((ts[worn > 0.5] - lo_us) // (60 * _US))
    return int(minutes.size)


def usable_night(readings: Readings, metric: Metric, w: DayWindow) -> tuple[I64, F64]:
    """The night's samples of ``metric`` that lie in slices of acceptable quality."""
    ts, value = _series(readings, metric, w.night_start_us, w.night_end_us)
    if ts.size == 0:
        return ts, value
    window_s = QUALITY_WINDOW_S[metric]
    n = -(-(w.night_end_us - w.night_start_us) // (window_s * _US))
    worn_ts, worn = _series(readings, Metric.WORN, w.night_start_us, w.night_end_us)
    labels = label_windows(
        ts, value, metric=metric, start_us=w.night_start_us, window_s=window_s, n_windows=n,
        worn_ts_us=worn_ts, worn=worn > 0.5,
    )  # fmt: skip
    keep = labels[(ts - w.night_start_us) // (window_s * _US)] <= _USABLE
    return ts[keep], value[keep]


def _night_median(readings: Readings, metric: Metric, w: DayWindow) -> float:
    _, value = usable_night(readings, metric, w)
    value = value[np.isfinite(value)]
    if value.size < MIN_NIGHT_SAMPLES[metric]:
        return math.nan
    return float(np.median(value))


#: Two stored intervals are successive beats if the first beat of the later one (its time less
#: its length) lies this close to the second beat of the earlier: an interval is stamped at its
#: second beat. Far below any interval (a missing beat leaves a gap of a whole one, >= 200 ms),
#: above the rounding of device timestamps to milliseconds and of beat times across messages.
ADJACENT_TOLERANCE_US = 100_000


def successive(ts_us: I64, rr_ms: F64) -> npt.NDArray[np.bool_]:
    """Per pair of neighbouring intervals (``len - 1``): True if they are successive beats.

    A series with a beat missing (a dropout, a message lost, an ectopic beat's intervals left
    out by ``signals.derived``) has neighbours that are not, and RMSSD must not take their
    difference: it would be the difference of two intervals a beat or more apart.
    """
    starts = ts_us[1:] - np.rint(rr_ms[1:] * 1000.0).astype(np.int64)
    return np.asarray(np.abs(starts - ts_us[:-1]) <= ADJACENT_TOLERANCE_US, dtype=np.bool_)


def _night_rmssd(readings: Readings, w: DayWindow) -> float:
    ts, rr = _series(readings, Metric.RR_INTERVAL, w.night_start_us, w.night_end_us)
    ok = np.isfinite(rr) & (rr > 0)
    ts, rr = ts[ok], rr[ok]
    if rr.size < MIN_NN_INTERVALS:
        return math.nan
    _, mask = clean_nn(rr)
    adjacent = successive(ts, rr)
    if int(mask.sum()) < MIN_NN_INTERVALS or not np.any(mask[:-1] & mask[1:] & adjacent):
        return math.nan
    return time_domain(rr, mask=mask, adjacent=adjacent).rmssd_ms


def _minute_mask(ts_us: I64, flag: F64, lo_us: int, n_minutes: int) -> npt.NDArray[np.bool_]:
    """Per minute of ``[lo, lo + n min)``: a flag stamped at the minute's end (signals.motion)."""
    mask = np.zeros(n_minutes, dtype=bool)
    index = (ts_us - lo_us) // _MIN_US - 1  # the minute ending at ts
    ok = (index >= 0) & (index < n_minutes)
    mask[index[ok]] = flag[ok] > 0.5
    return mask


def _inactive_at(hr_ts: I64, inactive_ts: I64, inactive: F64) -> npt.NDArray[np.bool_]:
    """Whether each heart-rate sample lies in a minute of sustained inactivity."""
    ends = np.sort(inactive_ts[inactive > 0.5])
    minute_end = -(-hr_ts // _MIN_US) * _MIN_US  # the minute holding ts ends at or after it
    return np.isin(minute_end, ends) | np.isin(hr_ts + _MIN_US, ends)


def accel_sleep_minutes(readings: Readings, w: DayWindow) -> float:
    """Minutes asleep in the day's main sleep period, from the accelerometer's inactivity bouts.

    van Hees et al. 2015 call sustained inactivity inside the sleep period sleep; the period is
    found with ``signals.sleep.main_sleep_period`` (the longest block of at least 30 min) joining
    bouts up to 60 min apart, as van Hees et al. 2018's HDCZA does for the arm angle (the 10-min
    join chosen for count-based scoring would cut a night at any wake of a quarter of an hour);
    minutes off the body are excluded first (a watch on the bedside table is perfectly
    inactive). Minutes are stamped at their end, so the day's are those ending in
    ``(start, end]``. NaN when the day has no motion minutes.
    """
    ts, flag = _series(readings, Metric.INACTIVE, w.start_us + _MIN_US, w.end_us + _MIN_US)
    if ts.size == 0:
        return math.nan
    n = (w.end_us - w.start_us) // _MIN_US
    inactive = _minute_mask(ts, flag, w.start_us, n)
    worn_ts, worn = _series(readings, Metric.WORN, w.start_us + _MIN_US, w.end_us + _MIN_US)
    off = _minute_mask(worn_ts, 1.0 - worn, w.start_us, n)
    sleep = inactive & ~off
    period = main_sleep_period(sleep, max_wake_bout=ACCEL_MAX_WAKE_BOUT_MIN)
    if period is None:
        return 0.0
    return float(sleep[period[0] : period[1]].sum())


def active_minutes(readings: Readings, w: DayWindow) -> float:
    """Minutes of the day at light intensity or more (ENMO ≥ 40 mg, Hildebrand et al. 2017)."""
    _, enmo = _series(readings, Metric.ACTIVITY_MG, w.start_us + _MIN_US, w.end_us + _MIN_US)
    return float(np.count_nonzero(enmo >= LIGHT_MIN_MG))


def daily_features(readings: Readings, w: DayWindow) -> dict[Feature, float]:
    """One patient's features for day ``w`` from their readings (any order, any metrics).

    NaN marks a feature the day's data cannot support; the risk score names it as not measured.
    Steps, sleep and activity need the device worn for most of the day; the night features need
    enough samples in the night's slices of acceptable quality (``usable_night``).

    A device that streams raw acceleration instead of counting steps and sleep has its minutes
    summarised by wardwatch (signals.motion): sleep then comes from sustained inactivity in the
    main sleep period, activity from minutes at light intensity or more (``active_minutes``,
    measured only on a day without step reports, so activity never counts twice), and resting
    heart rate from minutes of sustained inactivity.
    """
    hr_ts, hr = usable_night(readings, Metric.HEART_RATE, w)
    steps_ts, steps = _series(readings, Metric.STEPS, w.start_us, w.end_us)
    resting = resting_minutes(hr_ts, steps_ts, steps)
    inactive_ts, inactive = _series(readings, Metric.INACTIVE, w.night_start_us, w.night_end_us)
    if inactive_ts.size:
        resting &= _inactive_at(hr_ts, inactive_ts, inactive)
    resting_hr = nightly_resting_hr(
        hr_ts, hr, resting, night_start_us=w.night_start_us, night_end_us=w.night_end_us
    ).bpm

    worn_enough = worn_minutes(readings, w.start_us, w.end_us) >= MIN_WORN_MINUTES
    _, sleep = _series(readings, Metric.SLEEP_MINUTES, w.start_us, w.end_us)
    sleep_minutes = float(sleep.sum()) if sleep.size else accel_sleep_minutes(readings, w)
    activity_ts, _ = _series(readings, Metric.ACTIVITY_MG, w.start_us, w.end_us)
    by_accel = steps_ts.size == 0 and activity_ts.size > 0
    return {
        Feature.RESTING_HR: resting_hr,
        Feature.HRV_RMSSD: _night_rmssd(readings, w),
        Feature.RESP_RATE: _night_median(readings, Metric.RESP_RATE, w),
        Feature.TEMPERATURE: _night_median(readings, Metric.TEMPERATURE, w),
        Feature.SPO2: _night_median(readings, Metric.SPO2, w),
        Feature.STEPS: float(np.nansum(steps)) if worn_enough and not by_accel else math.nan,
        Feature.SLEEP_MINUTES: sleep_minutes if worn_enough else math.nan,
        Feature.ACTIVE_MINUTES: active_minutes(readings, w)
        if worn_enough and by_accel
        else math.nan,
    }
