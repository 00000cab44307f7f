"""Signal quality first: label each window of a metric before anything is computed from it.

A score computed from bad data must say so. Each window gets one label, the worst that applies:

- ``disconnected``: nothing arrived in the window;
- ``off-body``: the device said it was not worn for most of the window;
- ``stuck``: the same value repeated far longer than physiology allows (a frozen sensor);
- ``noisy``: implausible values or jumps too large to be physiological;
- ``intermittent loss``: some data, but less than the expected coverage;
- ``acceptable``.

All vectorised over a column of times and values (numpy), no per-sample Python objects.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from signals.vitals import PLAUSIBLE, Metric


class Quality(enum.IntEnum):
    """Ordered from best to worst so that ``max`` picks the label that applies."""

    ACCEPTABLE = 0
    INTERMITTENT_LOSS = 1
    NOISY = 2
    STUCK = 3
    OFF_BODY = 4
    DISCONNECTED = 5

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", " ").replace("off body", "off-body")


@dataclass(frozen=True, slots=True)
class QualityRules:
    """Thresholds for one metric sampled about every ``expected_every_s`` seconds."""

    expected_every_s: float = 60.0
    min_coverage: float = 0.8  # share of expected samples below which loss is "intermittent"
    max_jump: float | None = None  # largest physiological change between successive samples
    stuck_run: int = 30  # identical values in a row that no living signal produces
    max_implausible: float = 0.1  # share of implausible values tolerated before "noisy"


#: Jumps beyond these between samples a minute apart are artefact, not physiology (motion,
#: a loose probe). Heart rate can change 40/min in a minute on standing; SpO2 by several %.
#: Stuck runs: devices report whole units and smooth, so a resting SpO2 of 97 % for an hour is
#: ordinary, and so is a respiratory rate held for an hour; identical heart rates for an hour,
#: SpO2 for four hours or breathing for two are a frozen sensor.
DEFAULT_RULES: dict[Metric, QualityRules] = {
    Metric.HEART_RATE: QualityRules(max_jump=40.0, stuck_run=60),
    Metric.SPO2: QualityRules(max_jump=8.0, stuck_run=240),
    Metric.RESP_RATE: QualityRules(max_jump=12.0, stuck_run=120),
    Metric.TEMPERATURE: QualityRules(expected_every_s=300.0, max_jump=1.5, stuck_run=1000),
}


def label_windows(
    ts_us: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    *,
    metric: Metric,
    start_us: int,
    window_s: float,
    n_windows: int,
    worn_ts_us: npt.NDArray[np.int64] | None = None,
    worn: npt.NDArray[np.bool_] | None = None,
    rules: QualityRules | None = None,
) -> npt.NDArray[np.int8]:
    """One ``Quality`` per window ``[start + i·window, start + (i+1)·window)``, as int8 codes."""
    rules = rules or DEFAULT_RULES.get(metric, QualityRules())
    window_us = int(window_s * 1e6)
    order = np.argsort(ts_us, kind="stable")
    ts, vals = ts_us[order], values[order]
    idx = (ts - start_us) // window_us
    inside = (idx >= 0) & (idx < n_windows)
    ts, vals, idx = ts[inside], vals[inside], idx[inside]
    counts = np.bincount(idx, minlength=n_windows)
    out = np.where(counts == 0, Quality.DISCONNECTED, Quality.ACCEPTABLE).astype(np.int8)

    expected = window_s / rules.expected_every_s
    loss = (counts > 0) & (counts < rules.min_coverage * expected)
    out = np.maximum(out, np.where(loss, Quality.INTERMITTENT_LOSS, 0).astype(np.int8))

    plausible = PLAUSIBLE[metric]
    bad = ~((vals >= plausible.low) & (vals <= plausible.high))
    if rules.max_jump is not None and vals.size > 1:
        jump = np.zeros(vals.size, dtype=bool)
        same_window = idx[1:] == idx[:-1]
        jump[1:] = same_window & (np.abs(np.diff(vals)) > rules.max_jump)
        bad |= jump
    bad_share = np.bincount(idx, weights=bad.astype(np.float64), minlength=n_windows) / np.maximum(
        counts, 1
    )
    out = np.maximum(
        out, np.where(bad_share > rules.max_implausible, Quality.NOISY, 0).astype(np.int8)
    )

    if vals.size >= rules.stuck_run:
        changed = np.ones(vals.size, dtype=bool)
        changed[1:] = vals[1:] != vals[:-1]  # a frozen sensor's run crosses window edges
        run_id = np.cumsum(changed)
        run_len = np.bincount(run_id)[run_id]
        stuck = np.bincount(idx, weights=(run_len >= rules.stuck_run), minlength=n_windows) > 0
        out = np.maximum(out, np.where(stuck, Quality.STUCK, 0).astype(np.int8))

    if worn_ts_us is not None and worn is not None and worn_ts_us.size:
        widx = (worn_ts_us - start_us) // window_us
        ok = (widx >= 0) & (widx < n_windows)
        off = np.bincount(widx[ok], weights=(~worn[ok]).astype(np.float64), minlength=n_windows)
        reports = np.bincount(widx[ok], minlength=n_windows)
        off_body = (reports > 0) & (off / np.maximum(reports, 1) > 0.5)
        out = np.maximum(out, np.where(off_body, Quality.OFF_BODY, 0).astype(np.int8))
    return out
