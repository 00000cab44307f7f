"""``python -m bench.signals``: wardwatch's beat detection and HRV against NeuroKit2, same run.

Accuracy and time per 30-minute MIT-BIH record (R peaks, 150 ms window), and time-domain HRV per
24 hours of beats (MIT-BIH Long-Term record 14046, labelled beats). NeuroKit2 is a development
dependency used only here. Figures are printed, never asserted (docs/benchmarks.md).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from signals.baseline import Baseline
from signals.beats import ecg_r_peaks, score_detections
from signals.hrv import clean_nn, time_domain
from signals.news2 import news2_from_latest
from signals.risk import Feature, daily_risk
from signals.vitals import Metric
from tests.wfdb_io import read_beats, read_record

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "mitdb"
LTDB = Path(__file__).resolve().parents[2] / "shared" / "data" / "ltdb"


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def records() -> dict[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]]:
    """Return ECG (mV) and reference beats by row name: lead MLII of 100, 105, 106; V5 of 100.

    V5 was never used to tune the detector (docs/beats.md): its row is a held-out check. The
    reference beats of record 100 apply to both of its leads.
    """
    rec = read_record(DATA / "100.hea")
    beats, _ = read_beats(DATA / "100.atr")
    out = {"100": (rec.signals[:, rec.names.index("MLII")], beats)}
    for name in ("105", "106"):
        ecg = np.load(DATA / f"mitdb_{name}_MLII_adu.npy").astype(np.float64) / 200.0
        ref = pd.read_csv(DATA / f"mitdb_{name}_beats_all.csv")["R"].to_numpy(np.int64)
        out[name] = (ecg, ref)
    out["100 V5"] = (np.ascontiguousarray(rec.signals[:, rec.names.index("V5")]), beats)
    return out


def nk_r_peaks(
    ecg: npt.NDArray[np.float64], fs: float, *, clean: bool = True
) -> npt.NDArray[np.int64]:
    """NeuroKit2's R peaks: ``ecg_clean`` then ``ecg_peaks``, both with their default methods.

    ``ecg_peaks`` expects a cleaned signal (its documentation and ``ecg_process`` clean first),
    so the pair is the like-for-like comparison with ``ecg_r_peaks``, which filters internally;
    ``clean=False`` times ``ecg_peaks`` alone on the raw signal, for reference.
    """
    import neurokit2 as nk  # noqa: PLC0415 - development dependency, bench only

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cleaned = nk.ecg_clean(ecg, sampling_rate=fs) if clean else ecg
        _, info = nk.ecg_peaks(cleaned, sampling_rate=fs)
    return np.asarray(info["ECG_R_Peaks"], dtype=np.int64)


def best_of_each(fns: list[Callable[[], object]], repeat: int) -> list[float]:
    """Best time of each function over ``repeat`` rounds, the functions run in turn each round.

    Interleaving puts both sides of a comparison under the same load from the rest of this
    shared machine, rather than one of them under a burst the other escaped.
    """
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for k, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - start)
    return best


def bench_r_peaks(repeat: int = 7) -> None:
    fs = 360.0
    print("\n## R peaks, MIT-BIH (30 min, 360 Hz), 150 ms window: wardwatch vs NeuroKit2")
    print(f"(nk: ecg_clean + ecg_peaks; best of {repeat}, the two timed in turn)")
    print(
        f"{'record':>6} {'ww Se':>7} {'ww +P':>7} {'ww ms':>6} {'nk Se':>7} {'nk +P':>7} "
        f"{'nk ms':>6} {'nk/ww':>6} {'nk peaks-only ms':>17}"
    )
    for name, (ecg, ref) in records().items():
        ww_s, nk_s, raw_s = best_of_each(
            [
                partial(ecg_r_peaks, ecg, fs),
                partial(nk_r_peaks, ecg, fs),
                partial(nk_r_peaks, ecg, fs, clean=False),
            ],
            repeat,
        )
        ww = score_detections(ecg_r_peaks(ecg, fs), ref, fs)
        nk = score_detections(nk_r_peaks(ecg, fs), ref, fs)
        print(
            f"{name:>6} {100 * ww[0]:>6.2f}% {100 * ww[1]:>6.2f}% {1000 * ww_s:>6.1f} "
            f"{100 * nk[0]:>6.2f}% {100 * nk[1]:>6.2f}% {1000 * nk_s:>6.1f} "
            f"{nk_s / ww_s:>5.2f}x {1000 * raw_s:>17.1f}"
        )
    print("(100 V5: held-out lead, never used in tuning; docs/beats.md)")


def bench_hrv() -> None:
    import neurokit2 as nk  # noqa: PLC0415

    atr = LTDB / "14046.atr"
    if not atr.exists():
        print(f"\n(HRV benchmark skipped: {atr} not found)")
        return
    samples, codes = read_beats(atr)
    fs = 128.0
    rr = np.diff(samples) / fs * 1000.0
    labels = np.where(codes == 1, "N", "V")
    day = int(24 * 3600 / 0.8)
    rr, labels = rr[:day], labels[: day + 1]
    print(f"\n## Time-domain HRV on {rr.size:,} beats (LTDB 14046, ~24 h): wardwatch vs NeuroKit2")
    ww_s = best_of(lambda: time_domain(rr, mask=clean_nn(rr, labels=labels)[1]))
    peaks = samples[: rr.size + 1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nk_s = best_of(lambda: nk.hrv_time(peaks, sampling_rate=fs))
    print(
        f"wardwatch clean_nn + time_domain: {ww_s * 1000:.1f} ms; "
        f"NeuroKit2 hrv_time: {nk_s * 1000:.1f} ms; speed-up {nk_s / ww_s:.1f}x"
    )


def bench_per_patient() -> None:
    print("\n## Per-patient cost of scoring a batch (sets how many patients one core follows)")
    now = 1_800_000_000_000_000
    latest = {
        Metric.HEART_RATE: (now, 92.0),
        Metric.SPO2: (now, 94.0),
        Metric.RESP_RATE: (now, 21.0),
        Metric.TEMPERATURE: (now, 38.2),
    }
    usual = {f: Baseline(1.0, 0.1, 28) for f in Feature}
    day = dict.fromkeys(Feature, 1.2)
    n = 20_000
    news2_s = best_of(
        lambda: [news2_from_latest(latest, at_us=now, freshness_us=3_600_000_000) for _ in range(n)]
    )
    risk_s = best_of(lambda: [daily_risk(day, usual) for _ in range(n)])
    print(
        f"NEWS2 from latest values: {news2_s / n * 1e6:.1f} µs; daily risk with contributions: "
        f"{risk_s / n * 1e6:.1f} µs per patient"
    )


def bench_patient_day() -> None:
    """The nightly job's pure cost: one patient-day of minute readings and beats to features.

    Baseline in the same run: the bare numpy work of taking the day's rows out of the batch
    (one boolean mask per metric), which any implementation must do.
    """
    from datetime import timedelta  # noqa: PLC0415

    from signals.daily import daily_features, day_of, day_window  # noqa: PLC0415
    from signals.risk import PatientRisk  # noqa: PLC0415
    from simulator.cohort import simulate  # noqa: PLC0415

    sim = simulate("home_stable", patient_number=1, seed=1, days=3)
    day = day_of(sim.start_s * 1_000_000, 0) + timedelta(days=1)
    w = day_window(day, 0)
    r = sim.readings
    rows = int(((r.ts_us >= w.start_us) & (r.ts_us < w.end_us)).sum())
    features_s = best_of(lambda: daily_features(r, w), repeat=5)
    masks_s = best_of(lambda: [(r.metric == m) & (r.ts_us >= w.start_us) for m in range(1, 14)])
    model = PatientRisk()
    values = daily_features(r, w)
    step_s = best_of(lambda: [model.step(values) for _ in range(1000)]) / 1000
    print(f"\n## One patient-day to risk features ({rows:,} readings incl. beat-to-beat intervals)")
    print(
        f"signals.daily.daily_features: {features_s * 1000:.1f} ms; bare per-metric masks over "
        f"the same batch: {masks_s * 1000:.1f} ms ({features_s / masks_s:.1f}x); "
        f"PatientRisk.step: {step_s * 1e6:.0f} µs"
    )
    print(
        f"=> one core scores ~{3600 / (features_s + step_s):,.0f} patient-days an hour (pure part)"
    )


def main() -> None:
    bench_r_peaks()
    bench_hrv()
    bench_per_patient()
    bench_patient_day()


if __name__ == "__main__":
    main()
