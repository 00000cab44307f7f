"""``wardwatch evaluate welltory``: the behaviour-based risk against real symptom onsets.

The edge of ``signals.evaluation``: it reads the Welltory hrv-covid19 tables (CC0 1.0; app users
in 2020, many with COVID-19, with self-reported symptom-onset dates), turns each participant's
rows into one set of daily features, runs them through ``signals.risk.PatientRisk`` exactly as
configured for the ward (nothing here is tuned on these data, or the figures would mean
nothing), and reports sensitivity, lead time and false alert-days next to Alavi et al. 2022.

Nothing is dropped silently: every participant left out and every value skipped is counted with
its reason in the report, because with so few participants each exclusion moves the figures.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import pandas as pd

from signals.evaluation import (
    DETECT_AFTER_DAYS,
    DETECT_BEFORE_DAYS,
    ILLNESS_AFTER_DAYS,
    ILLNESS_BEFORE_DAYS,
    DayModel,
    Evaluation,
    NightSignal,
    episode,
    evaluate,
    replay,
)
from signals.hrv import clean_nn, time_domain
from signals.risk import DEFAULT_RULES, Feature, PatientRisk, Sustained

__all__ = [
    "ALAVI_2022",
    "BASELINE_MIN_DAYS",
    "WELLTORY_DEFAULT_DIR",
    "EvaluationDataError",
    "Participant",
    "WelltoryReport",
    "format_report",
    "load_welltory",
    "report_json",
    "run_welltory",
    "welltory",
]

#: Where the Welltory tables sit next to a checkout (see ../shared/data/README.md).
WELLTORY_DEFAULT_DIR: Final = Path("../shared/data/welltory")

#: Days with data needed before the detection window: ``PatientRisk``'s baselines say nothing
#: until they have 7 values (``RollingRobust(min_count=7)``), so with fewer the days before
#: onset could not be scored at all and a miss would say nothing about the model.
BASELINE_MIN_DAYS: Final = 7
#: Participants not evaluable for detection but monitored on at least this many days still
#: show how often each model alarms without cause: the false-alert figure on more people.
BACKGROUND_MIN_DAYS: Final = 14

#: Alavi et al., Nature Medicine 2022, 28:175-184: resting-heart-rate alerts on 84 infections.
ALAVI_2022: Final = {"detected": 67, "with_onset": 84, "median_lead_days": 3.0,
                     "false_alert_days_per_person": 1.15}  # fmt: skip

#: Values outside these are device or export errors, not physiology; they are skipped and
#: counted. Wide on purpose: a plausibility screen, not a clinical one.
PLAUSIBLE: Final[Mapping[Feature, tuple[float, float]]] = {
    Feature.RESTING_HR: (25.0, 220.0),  # beats/min
    Feature.SPO2: (50.0, 100.0),  # %
    Feature.TEMPERATURE: (34.0, 42.0),  # °C: Welltory exports °C (35.8-36.9 in this release)
    Feature.STEPS: (0.0, 100_000.0),  # steps/day
    Feature.SLEEP_MINUTES: (1.0, 24 * 60.0),  # minutes
    Feature.HRV_RMSSD: (1.0, 500.0),  # ms
}

#: Welltory's wearables.csv columns for the daily features it has.
WEARABLE_COLUMNS: Final[Mapping[Feature, str]] = {
    Feature.RESTING_HR: "resting_pulse",
    Feature.SPO2: "average_spo2_value",
    Feature.TEMPERATURE: "body_temperature_avg",
    Feature.STEPS: "steps_count",
}

#: Alavi 2022's own alert rule (signals.evaluation.NightSignal) on the same data: tells the
#: data's limits from the model's.
NIGHTSIGNAL: Final = "Alavi's rule"
OURS: Final = "ours, all features"
RESTING_ONLY: Final = "resting HR only"

#: Resting heart rate alone, as Alavi 2022 alerted on; a labelled variant, never the headline.
RESTING_HR_ONLY: Final = {Feature.RESTING_HR: DEFAULT_RULES[Feature.RESTING_HR]}
#: Every feature, the weighted mean's CUSUM only: what the own charts add (docs/risk.md).
MEAN_ONLY: Final = "ours, mean only"
WITHOUT_OWN_CHARTS: Final = {f: replace(r, own_chart=False) for f, r in DEFAULT_RULES.items()}
#: The simulator's multi-day scenarios with an onset that ``evaluate simulated`` can run.
SIMULATED_SCENARIOS: Final = ("home_infection", "home_hr_rise")

EXCLUDE_NO_ONSET: Final = "no symptom-onset date"
EXCLUDE_NO_DATA: Final = "no wearable, sleep or HRV data"
EXCLUDE_ONSET_OUTSIDE: Final = "onset outside the recorded period"
EXCLUDE_NO_BASELINE: Final = (
    f"fewer than {BASELINE_MIN_DAYS} days with data before the detection window"
)
EXCLUDE_NO_WINDOW_DATA: Final = "no data in the detection window"
EXCLUSION_REASONS: Final = (EXCLUDE_NO_ONSET, EXCLUDE_NO_DATA, EXCLUDE_ONSET_OUTSIDE,
                            EXCLUDE_NO_BASELINE, EXCLUDE_NO_WINDOW_DATA)  # fmt: skip


class EvaluationDataError(Exception):
    """The data folder cannot be evaluated (a file is missing or unreadable)."""


DayFeatures = dict[Feature, float]


@dataclass(frozen=True, slots=True)
class Participant:
    """One participant's symptom onset and daily features (only days with data, ascending)."""

    code: str
    onset: date | None
    days: tuple[tuple[date, DayFeatures], ...]


@dataclass(frozen=True, slots=True)
class Included:
    """A participant evaluated, with the data behind their row of the report."""

    participant: Participant
    baseline_days: int  # days with data before the detection window
    window_days: int  # days with data in the detection window


@dataclass(frozen=True, slots=True)
class WelltoryReport:
    data_dir: Path
    n_participants: int
    skipped_values: Mapping[str, int]  # reason -> values not used
    excluded: Mapping[str, tuple[str, ...]]  # reason -> participant codes
    included: tuple[Included, ...]
    main: Evaluation  # signals.risk as configured: every feature Welltory has
    variants: tuple[tuple[str, Evaluation], ...]  # labelled, for comparison only
    #: Mean daily deviation (the CUSUM's input) on assessed monitored days outside illness
    #: windows: what "healthy" looks like to the CUSUM. At or above its slack, it drifts up.
    in_control_deviation_sd: float
    #: The other participants monitored on >= BACKGROUND_MIN_DAYS days, under each model (ours,
    #: then the variants, same labels): false alerts only, outside any known illness window.
    background: tuple[tuple[str, Evaluation], ...] = ()


# --- reading ------------------------------------------------------------------------------------


def _read(path: Path, columns: list[str]) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except OSError as exc:
        raise EvaluationDataError(f"cannot read {path}: {exc}") from exc
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise EvaluationDataError(f"{path} lacks the column(s) {', '.join(missing)}")
    return table[columns]


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _hrv_table(data_dir: Path) -> pd.DataFrame:
    """The raw RR series with their times, from the source file or the tests' split copy.

    ``tests/data/welltory`` keeps the RR series (``hrv_rr.csv``, shared with the HRV tests) and
    their times (``hrv_times.csv``) apart rather than a second megabyte copy of the source.
    """
    source = data_dir / "hrv_measurements.csv"
    if source.exists():
        return _read(source, ["user_code", "rr_code", "measurement_datetime", "rr_data"])
    if not (data_dir / "hrv_rr.csv").exists():
        raise EvaluationDataError(f"{source} not found")
    rr = _read(data_dir / "hrv_rr.csv", ["user_code", "rr_code", "rr_data"])
    times = _read(data_dir / "hrv_times.csv", ["rr_code", "measurement_datetime"])
    joined = rr.merge(times, on="rr_code", how="left", validate="one_to_one")
    return joined.fillna({"measurement_datetime": ""})


def _rmssd(rr_data: str) -> float:
    """RMSSD of one measurement's NN intervals (RR-only cleaning: Welltory gives no labels)."""
    rr = [float(x) for x in rr_data.split(",") if x.strip()]
    _, mask = clean_nn(rr)
    return time_domain(rr, mask=mask).rmssd_ms


def _onsets(data_dir: Path, skipped: Counter[str]) -> dict[str, date | None]:
    people = _read(data_dir / "participants.csv", ["user_code", "symptoms_onset"])
    onsets: dict[str, date | None] = {}
    for code, text in zip(people["user_code"], people["symptoms_onset"], strict=True):
        try:
            # A calendar day, month first (5/15/2020), with no time and so no time zone.
            onsets[code] = datetime.strptime(text, "%m/%d/%Y").date() if text else None  # noqa: DTZ007
        except ValueError:
            skipped["onset date unreadable"] += 1
            onsets[code] = None
    return onsets


def _wearables(data_dir: Path) -> list[tuple[str, date, Feature, float | None]]:
    wear = _read(data_dir / "wearables.csv", ["user_code", "day", *WEARABLE_COLUMNS.values()])
    values: list[tuple[str, date, Feature, float | None]] = []
    for row in wear.itertuples(index=False):
        record = row._asdict()
        day = date.fromisoformat(record["day"])
        for feature, column in WEARABLE_COLUMNS.items():
            value = _number(record[column])
            if feature is Feature.SPO2 and value is not None and 0 < value <= 1:
                value *= 100.0  # this release gives SpO2 as a fraction
            values.append((record["user_code"], day, feature, value))
    return values


def _sleep(data_dir: Path, skipped: Counter[str]) -> list[tuple[str, date, Feature, float | None]]:
    sleep = _read(data_dir / "sleep.csv", ["user_code", "sleep_end", "sleep_duration"])
    longest: dict[tuple[str, date], float] = {}
    for code, end, duration in zip(
        sleep["user_code"], sleep["sleep_end"], sleep["sleep_duration"], strict=True
    ):
        seconds = _number(duration)
        if seconds is None or not end:
            skipped["sleep without end or duration"] += 1
            continue
        key = (code, datetime.fromisoformat(end).date())
        if key in longest:
            skipped["sleep shorter than another ending that day"] += 1
        longest[key] = max(longest.get(key, 0.0), seconds / 60.0)
    return [(code, day, Feature.SLEEP_MINUTES, m) for (code, day), m in longest.items()]


def _hrv(data_dir: Path, skipped: Counter[str]) -> list[tuple[str, date, Feature, float | None]]:
    hrv = _hrv_table(data_dir)
    rmssd: defaultdict[tuple[str, date], list[float]] = defaultdict(list)
    for code, when, rr_data in zip(
        hrv["user_code"], hrv["measurement_datetime"], hrv["rr_data"], strict=True
    ):
        if not when:
            skipped["HRV measurement without a time"] += 1
            continue
        try:
            value = _rmssd(rr_data)
        except ValueError:
            skipped["HRV measurement with unusable RR"] += 1
            continue
        rmssd[(code, datetime.fromisoformat(when).date())].append(value)
    return [
        (code, day, Feature.HRV_RMSSD, float(statistics.median(values)))
        for (code, day), values in rmssd.items()
    ]


def load_welltory(data_dir: Path) -> tuple[list[Participant], Counter[str]]:
    """Every participant's daily features, and how many values were skipped for what reason.

    - resting HR, SpO2, temperature, steps: ``wearables.csv``, one row per day. SpO2 is a
      fraction in this release (0.92-0.99) and is turned into %.
    - sleep minutes: ``sleep.csv`` ``sleep_duration`` (s) / 60, on the day the sleep *ended*
      (the night of the 3rd to the 4th belongs to the 4th, as a nightly feature is scored the
      morning after); of several sleeps ending on one day the longest, the main sleep period
      ``Feature.SLEEP_MINUTES`` means, not a sum with the naps.
    - HRV: the median over the day's measurements of RMSSD recomputed from the raw RR
      (``signals.hrv``), not the app's own value, so the feature is what the ward would compute.
    """
    skipped: Counter[str] = Counter()
    onsets = _onsets(data_dir, skipped)
    days: defaultdict[str, defaultdict[date, DayFeatures]] = defaultdict(lambda: defaultdict(dict))
    measured = _wearables(data_dir) + _sleep(data_dir, skipped) + _hrv(data_dir, skipped)
    for code, day, feature, value in measured:
        if value is None:
            continue
        low, high = PLAUSIBLE[feature]
        if not low <= value <= high:
            skipped[f"{feature.value} implausible"] += 1
        elif code not in onsets:
            skipped["participant not in participants.csv"] += 1
        else:
            days[code][day][feature] = value
    participants = [
        Participant(code, onset, tuple(sorted(days[code].items())) if code in days else ())
        for code, onset in sorted(onsets.items())
    ]
    return participants, skipped


# --- selecting and evaluating ---------------------------------------------------------------------


def _exclusion(p: Participant) -> str | Included:
    """Why ``p`` cannot be evaluated (the first reason that applies), or their row's data."""
    if p.onset is None:
        return EXCLUDE_NO_ONSET
    if not p.days:
        return EXCLUDE_NO_DATA
    if not p.days[0][0] <= p.onset <= p.days[-1][0]:
        return EXCLUDE_ONSET_OUTSIDE
    start = p.onset - timedelta(days=DETECT_BEFORE_DAYS)
    end = p.onset + timedelta(days=DETECT_AFTER_DAYS)
    baseline = sum(d < start for d, _ in p.days)
    window = sum(start <= d <= end for d, _ in p.days)
    if baseline < BASELINE_MIN_DAYS:
        return EXCLUDE_NO_BASELINE
    if window == 0:
        return EXCLUDE_NO_WINDOW_DATA
    return Included(p, baseline, window)


def _evaluate(included: tuple[Included, ...], make_risk: Callable[[], DayModel]) -> Evaluation:
    return evaluate(
        episode(i.participant.code, i.participant.onset, i.participant.days, make_risk=make_risk)
        for i in included
    )


def _in_control_deviation(included: tuple[Included, ...]) -> float:
    """Mean daily deviation on assessed monitored days outside the illness windows."""
    deviations: list[float] = []
    for inc in included:
        p = inc.participant
        assert p.onset is not None  # included participants have one
        start = p.onset - timedelta(days=ILLNESS_BEFORE_DAYS)
        end = p.onset + timedelta(days=ILLNESS_AFTER_DAYS)
        monitored = {d for d, _ in p.days}
        deviations += [
            a.risk.deviation_sd
            for d, a in replay(p.days)
            if d in monitored and a.risk.assessable and not start <= d <= end
        ]
    return statistics.fmean(deviations) if deviations else math.nan


def run_welltory(data_dir: Path) -> WelltoryReport:
    """Load, select and evaluate; the model is ``PatientRisk()`` with its defaults, untouched."""
    participants, skipped = load_welltory(data_dir)
    excluded: defaultdict[str, list[str]] = defaultdict(list)
    included: list[Included] = []
    for p in participants:
        outcome = _exclusion(p)
        if isinstance(outcome, Included):
            included.append(outcome)
        else:
            excluded[outcome].append(p.code)
    chosen = tuple(included)
    codes = {i.participant.code for i in chosen}
    others = [p for p in participants if p.code not in codes and len(p.days) >= BACKGROUND_MIN_DAYS]
    models: list[tuple[str, Callable[[], DayModel]]] = [
        (OURS, PatientRisk),
        (RESTING_ONLY, lambda: PatientRisk(rules=RESTING_HR_ONLY)),
        (NIGHTSIGNAL, NightSignal),
        (MEAN_ONLY, lambda: PatientRisk(rules=WITHOUT_OWN_CHARTS)),
    ]
    background = tuple(
        (label, evaluate(episode(p.code, p.onset, p.days, make_risk=make) for p in others))
        for label, make in models
    )
    return WelltoryReport(
        data_dir=data_dir,
        n_participants=len(participants),
        skipped_values=dict(sorted(skipped.items())),
        excluded={r: tuple(excluded[r]) for r in EXCLUSION_REASONS if excluded[r]},
        included=chosen,
        main=_evaluate(chosen, PatientRisk),
        variants=(
            (RESTING_ONLY, _evaluate(chosen, lambda: PatientRisk(rules=RESTING_HR_ONLY))),
            (NIGHTSIGNAL, _evaluate(chosen, NightSignal)),
            (MEAN_ONLY, _evaluate(chosen, lambda: PatientRisk(rules=WITHOUT_OWN_CHARTS))),
        ),
        in_control_deviation_sd=_in_control_deviation(chosen),
        background=background,
    )


# --- reporting ------------------------------------------------------------------------------------


def _pct(k: int, n: int) -> str:
    return f"{k}/{n} ({100 * k / n:.0f} %)" if n else "-"


def _num(x: float, digits: int = 2) -> str:
    return "-" if math.isnan(x) else f"{x:.{digits}f}"


def _summary_rows(ev: Evaluation) -> list[str]:
    return [
        _pct(ev.n_detected, ev.n_with_onset),
        _pct(ev.n_detected - ev.n_carried_in, ev.n_with_onset),
        _num(ev.median_lead_days, 1),
        _num(ev.false_alert_days_per_person),
        _num(ev.false_alert_days_per_30_days),
    ]


def format_report(r: WelltoryReport) -> str:
    """The report a person reads: who was left out and why, each participant, the figures."""
    lines = [
        "wardwatch evaluate welltory: behaviour-based risk (signals.risk as configured, not "
        "tuned on these data)",
        f"data: {r.data_dir}",
        f"participants: {r.n_participants}; evaluated {len(r.included)}; excluded "
        f"{r.n_participants - len(r.included)}:",
    ]
    lines += [f"  {len(codes):4d}  {reason}" for reason, codes in r.excluded.items()]
    if r.skipped_values:
        lines.append("values not used:")
        lines += [f"  {n:4d}  {reason}" for reason, n in r.skipped_values.items()]
    lines += [
        f"windows: detection [onset-{DETECT_BEFORE_DAYS}, onset+{DETECT_AFTER_DAYS}] days; "
        f"illness (never a false alert) [onset-{ILLNESS_BEFORE_DAYS}, "
        f"onset+{ILLNESS_AFTER_DAYS}] days",
        "",
        f"{'participant':<12} {'onset':<10} {'days':>5} {'baseline':>8} {'detected':>10} "
        f"{'lead':>5} {'false alert-days':>16} {'days outside illness':>20}",
    ]
    for inc, o in zip(r.included, r.main.outcomes, strict=True):
        lead = "-" if o.lead_days is None else f"{o.lead_days:+d}"
        detected = ("carried in" if o.carried_in else "yes") if o.detected else "no"
        lines.append(
            f"{o.patient:<12} {o.onset!s:<10} {o.monitored_days:>5} {inc.baseline_days:>8} "
            f"{detected:>10} {lead:>5} {o.false_alert_days:>16} {o.days_outside_illness:>20}"
        )
    lead_list = ", ".join(f"{d:+d}" for d in sorted(r.main.lead_days)) or "none"
    lines += [
        "",
        f"lead times (days before onset): {lead_list}",
        "carried in: detected by an alarm already standing before the detection window opened",
        f"mean daily deviation on assessed days outside illness windows: "
        f"{_num(r.in_control_deviation_sd)} SD (the CUSUM's slack is {Sustained().slack} SD)",
        "",
    ]
    columns = [(OURS, _summary_rows(r.main))]
    columns += [(label, _summary_rows(ev)) for label, ev in r.variants]
    alavi = ALAVI_2022
    columns.append(
        (
            "Alavi 2022",
            [
                _pct(int(alavi["detected"]), int(alavi["with_onset"])),
                "-",
                f"{alavi['median_lead_days']:.0f}",
                f"{alavi['false_alert_days_per_person']:.2f}",
                "-",
            ],
        )
    )
    names = [
        "infections flagged",
        "  by an alarm raised in the window",
        "median lead, days before onset",
        "false alert-days per person",
        "false alert-days per 30 days",
    ]
    width = max(len(n) for n in names)
    lines.append(f"{'':<{width}}  " + "  ".join(f"{h:>20}" for h, _ in columns))
    for i, name in enumerate(names):
        lines.append(f"{name:<{width}}  " + "  ".join(f"{c[i]:>20}" for _, c in columns))
    lines.append(
        "resting HR only: the same participants and CUSUM with resting heart rate the only\n"
        "feature, as Alavi 2022 alerted on; Alavi's rule: their published NightSignal red alert\n"
        "(two nights in a row >= 4/min above the median of earlier nights) on the same data;\n"
        f"{MEAN_ONLY}: every feature without the own charts (what they add).\n"
        "Comparisons, not the result. False alert-days per person depend on how long each was\n"
        "watched. Small n: read the rows, not the summary."
    )
    if r.background:
        first = r.background[0][1]
        lines += [
            "",
            f"false alerts in the other participants monitored on >= {BACKGROUND_MIN_DAYS} days "
            f"(not evaluable for detection):",
            f"{first.n_participants} participants, {first.days_outside_illness} monitored days "
            f"outside any known illness window",
            f"{'':<{width}}  " + "  ".join(f"{label:>20}" for label, _ in r.background),
        ]
        rows: list[tuple[str, Callable[[Evaluation], str]]] = [
            ("false alert-days", lambda e: str(e.false_alert_days)),
            ("  per person", lambda e: _num(e.false_alert_days_per_person)),
            ("  per 30 days", lambda e: _num(e.false_alert_days_per_30_days)),
            ("people with any", lambda e: str(sum(o.false_alert_days > 0 for o in e.outcomes))),
        ]
        for name, value in rows:
            lines.append(
                f"{name:<{width}}  " + "  ".join(f"{value(ev):>20}" for _, ev in r.background)
            )
    return "\n".join(lines)


def _evaluation_json(ev: Evaluation) -> dict[str, Any]:
    def finite(x: float) -> float | None:
        return None if math.isnan(x) else x

    return {
        "participants": ev.n_participants,
        "with_onset": ev.n_with_onset,
        "detected": ev.n_detected,
        "detected_carried_in": ev.n_carried_in,
        "sensitivity": finite(ev.sensitivity),
        "lead_days": list(ev.lead_days),
        "median_lead_days": finite(ev.median_lead_days),
        "false_alert_days": ev.false_alert_days,
        "false_alert_days_per_person": finite(ev.false_alert_days_per_person),
        "days_outside_illness": ev.days_outside_illness,
        "false_alert_days_per_30_days": finite(ev.false_alert_days_per_30_days),
        "outcomes": [
            {
                "participant": o.patient,
                "onset": None if o.onset is None else o.onset.isoformat(),
                "monitored_days": o.monitored_days,
                "detected": o.detected,
                "lead_days": o.lead_days,
                "carried_in": o.carried_in,
                "false_alert_days": o.false_alert_days,
                "days_outside_illness": o.days_outside_illness,
            }
            for o in ev.outcomes
        ],
    }


def report_json(r: WelltoryReport) -> dict[str, Any]:
    """The same report as plain JSON-able data, for notebooks and CI."""
    return {
        "data_dir": str(r.data_dir),
        "participants": r.n_participants,
        "excluded": {reason: list(codes) for reason, codes in r.excluded.items()},
        "values_not_used": dict(r.skipped_values),
        "windows": {
            "detect": [-DETECT_BEFORE_DAYS, DETECT_AFTER_DAYS],
            "illness": [-ILLNESS_BEFORE_DAYS, ILLNESS_AFTER_DAYS],
        },
        "baseline_days": {i.participant.code: i.baseline_days for i in r.included},
        "in_control_deviation_sd": r.in_control_deviation_sd,
        "main": _evaluation_json(r.main),
        "variants": {label: _evaluation_json(ev) for label, ev in r.variants},
        "background": {label: _evaluation_json(ev) for label, ev in r.background},
        "alavi_2022": dict(ALAVI_2022),
    }


def welltory(data_dir: Path, *, as_json: bool = False) -> str:
    """The text ``wardwatch evaluate welltory`` prints."""
    report = run_welltory(data_dir)
    if as_json:
        return json.dumps(report_json(report), indent=2, ensure_ascii=False)
    return format_report(report)


# --- the simulator's labelled cohort -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimulatedReport:
    """The risk score on simulated patients whose onset is known exactly (simulator.cohort)."""

    n_patients: int
    days: int
    seed: int
    scenarios: Mapping[str, str]  # patient -> scenario
    main: Evaluation
    variants: tuple[tuple[str, Evaluation], ...]
    ill_scenario: str = "home_infection"


def run_simulated(
    n_patients: int = 20, *, days: int = 21, seed: int = 1, scenario: str = "home_infection"
) -> SimulatedReport:
    """Simulate, reduce each day as the live pipeline does (signals.daily), and evaluate.

    Half the cohort go through ``scenario`` from day 8-11 (``home_infection``: a viral
    infection; ``home_hr_rise``: resting heart rate alone rises), half stay well
    (``home_stable``); the onset label is the physiological onset, which the simulator knows,
    so a lead time here is negative: days *after* the change began.
    """
    from simulator.cohort import cohort  # noqa: PLC0415 - the simulator only when asked

    if scenario not in SIMULATED_SCENARIOS:
        raise ValueError(f"scenario {scenario!r}: one of {', '.join(SIMULATED_SCENARIOS)}")
    courses = list(cohort(n_patients, seed=seed, days=days, ill_scenario=scenario))

    def run(make_risk: Callable[[], DayModel]) -> Evaluation:
        return evaluate(
            episode(c.patient_id, c.onset, c.days, make_risk=make_risk) for c in courses
        )

    return SimulatedReport(
        n_patients=n_patients,
        days=days,
        seed=seed,
        scenarios={c.patient_id: c.scenario for c in courses},
        main=run(PatientRisk),
        variants=(
            (RESTING_ONLY, run(lambda: PatientRisk(rules=RESTING_HR_ONLY))),
            (NIGHTSIGNAL, run(NightSignal)),
            (MEAN_ONLY, run(lambda: PatientRisk(rules=WITHOUT_OWN_CHARTS))),
        ),
        ill_scenario=scenario,
    )


def format_simulated(r: SimulatedReport) -> str:
    lines = [
        "wardwatch evaluate simulated: behaviour-based risk on the simulator's labelled cohort",
        f"{r.n_patients} patients x {r.days} days, seed {r.seed}, half {r.ill_scenario}; onset ="
        " the day the physiological change began (lead < 0: days after it)",
        "",
        f"{'patient':<12} {'scenario':<15} {'onset':<10} {'detected':>9} {'lead':>5} "
        f"{'false alert-days':>16}",
    ]
    for o in r.main.outcomes:
        detected = "-" if o.detected is None else ("yes" if o.detected else "no")
        lead = "-" if o.lead_days is None else f"{o.lead_days:+d}"
        onset = "-" if o.onset is None else o.onset.isoformat()
        lines.append(
            f"{o.patient:<12} {r.scenarios[o.patient]:<15} {onset:<10} {detected:>9} "
            f"{lead:>5} {o.false_alert_days:>16}"
        )
    names = [
        "onsets flagged",
        "  by an alarm raised in the window",
        "median lead, days (< 0: after onset)",
        "false alert-days per person",
        "false alert-days per 30 days",
    ]
    columns = [(OURS, _summary_rows(r.main))]
    columns += [(label, _summary_rows(ev)) for label, ev in r.variants]
    width = max(len(n) for n in names)
    lines += ["", f"{'':<{width}}  " + "  ".join(f"{h:>20}" for h, _ in columns)]
    for i, name in enumerate(names):
        lines.append(f"{name:<{width}}  " + "  ".join(f"{c[i]:>20}" for _, c in columns))
    lines.append(
        f"{MEAN_ONLY}: every feature, without the own charts of resting HR, breathing rate,\n"
        "temperature and SpO2 (what they add).\n"
        "The simulator is not evidence about patients: it checks that the chain from minute\n"
        "readings to an alarm works and how fast it reacts to a change of known size."
    )
    return "\n".join(lines)


def simulated(
    n_patients: int,
    *,
    days: int,
    seed: int,
    scenario: str = "home_infection",
    as_json: bool = False,
) -> str:
    """The text ``wardwatch evaluate simulated`` prints."""
    report = run_simulated(n_patients, days=days, seed=seed, scenario=scenario)
    if as_json:
        return json.dumps(
            {
                "patients": report.n_patients,
                "days": report.days,
                "seed": report.seed,
                "scenario": report.ill_scenario,
                "scenarios": dict(report.scenarios),
                "main": _evaluation_json(report.main),
                "variants": {label: _evaluation_json(ev) for label, ev in report.variants},
            },
            indent=2,
        )
    return format_simulated(report)
