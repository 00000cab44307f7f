"""A waveform at a rate no derivation accepts is stored, said, and passed: the other devices are
still derived; and a derive job that fails does not stop the others. Before, a 10-Hz PPG (ingest
stores 1-2000 Hz; the pulse detector needs 20-500) raised ValueError in the derive tick, and no
device after it got a breathing or heart rate."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest
from scipy import signal

from signals.derived import PpgBeats
from signals.vitals import Metric
from signals.waveforms import WaveformChunk
from storage import devices
from tests.unit.test_ppg_resp import recording
from tests.waveform_feed import enrol, send_waveform
from wardwatch import derive
from wardwatch.service import Options, running
from wardwatch.settings import Settings

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=8)


def _derived(url: str, patient: str, metric: Metric) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select count(*) from readings where patient_id = %s and metric = %s",
            (patient, int(metric)),
        ).fetchone()
    assert row is not None
    return int(row[0])  # type: ignore[call-overload]


def test_an_odd_rate_is_passed_with_a_reason_and_the_others_are_derived(
    database_url: str, uid: str, caplog: pytest.LogCaptureFixture
) -> None:
    ppg = np.round(recording()["PPG"], 4)
    # "a-" sorts first, so the odd device is met before the good one.
    odd, good = f"a-odd-{uid}", f"b-good-{uid}"
    for device in (odd, good):
        enrol(database_url, device, f"pt-{device}", T0 - timedelta(hours=1))
    slow = signal.resample_poly(ppg, 1, 10)  # 10 Hz
    send_waveform(database_url, odd, kind="ppg", unit="au", samples=slow, fs=10, start=T0)
    send_waveform(database_url, good, kind="ppg", unit="au", samples=ppg, fs=100, start=T0)
    ecg_slow = np.sin(np.linspace(0, 600, 40 * 300))  # 40 Hz ECG: the R-peak finder needs 50
    send_waveform(database_url, odd, kind="ecg", unit="mV", samples=ecg_slow, fs=40, start=T0)

    with caplog.at_level(logging.WARNING, logger="wardwatch.derive"), \
            psycopg.connect(database_url) as conn:  # fmt: skip
        assert derive.derive_pulse(conn, now=NOW) > 5  # the good device's minutes and intervals
        assert derive.derive_resp_rate(conn, now=NOW) >= 4
        assert derive.derive_beats(conn, now=NOW) == 0
        passed = {
            what: devices.derived_until(conn, odd, what) for what in ("pulse", "resp_rate", "beats")
        }
    said = [r.getMessage() for r in caplog.records if odd in r.getMessage()]
    assert f"device {odd}: ppg at 10 Hz is stored but not derived (pulse needs 20-500 Hz)" in said
    assert f"device {odd}: ecg at 40 Hz is stored but not derived (beats needs 50-5000 Hz)" in said
    assert all(t is not None and t >= T0 + timedelta(minutes=4) for t in passed.values())
    assert _derived(database_url, f"pt-{good}", Metric.HEART_RATE) == 5
    assert _derived(database_url, f"pt-{odd}", Metric.HEART_RATE) == 0

    # Passed: the next tick neither retries nor repeats the warning.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="wardwatch.derive"), \
            psycopg.connect(database_url) as conn:  # fmt: skip
        derive.derive_pulse(conn, now=NOW + timedelta(minutes=1))
    assert not [r for r in caplog.records if odd in r.getMessage()]


def test_a_failing_derive_job_does_not_starve_the_others(
    mqtt_url: str, database_url: str, uid: str, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """The service's derive tick runs four jobs; one raising (here, injected) is logged with its
    traceback and the others still run: the PPG still gets its heart rate."""
    device, patient = f"ring-{uid}", f"pt-ring-{uid}"
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=7)
    enrol(database_url, device, patient, start - timedelta(hours=1))
    send_waveform(database_url, device, kind="ppg", unit="au",
                  samples=np.round(recording()["PPG"], 4), fs=100, start=start)  # fmt: skip

    def derive_resp_rate(conn: object, *, now: datetime) -> int:
        raise RuntimeError("injected fault")

    monkeypatch.setattr(derive, "derive_resp_rate", derive_resp_rate)
    settings = Settings(mqtt_url, database_url, "127.0.0.1", 0)
    deadline = time.monotonic() + 30
    with caplog.at_level(logging.ERROR, logger="wardwatch.service"), \
            running(settings, Options(client_id=f"ingest-{uid}", derive_tick_s=0.5)):  # fmt: skip
        while _derived(database_url, patient, Metric.HEART_RATE) < 5:
            assert time.monotonic() < deadline, "derive_pulse never ran"
            time.sleep(0.2)
    failed = [r for r in caplog.records if "derive_resp_rate failed" in r.getMessage()]
    assert failed
    assert failed[0].exc_info is not None
    assert "injected fault" in str(failed[0].exc_info[1])


def test_a_device_whose_derivation_fails_is_rolled_back_and_the_others_go_on(
    database_url: str, uid: str, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    ppg = np.round(recording()["PPG"], 4)
    bad, good = f"a-bad-{uid}", f"b-fine-{uid}"
    for device in (bad, good):
        enrol(database_url, device, f"pt-{device}", T0 - timedelta(hours=1))
        send_waveform(database_url, device, kind="ppg", unit="au", samples=ppg, fs=100, start=T0)
    real = derive.ppg_beats

    def flaky(segment: WaveformChunk, **kwargs: int) -> PpgBeats:
        if segment.device_id == bad:
            raise RuntimeError("injected fault")
        return real(segment, **kwargs)

    monkeypatch.setattr(derive, "ppg_beats", flaky)
    with caplog.at_level(logging.ERROR, logger="wardwatch.derive"), \
            psycopg.connect(database_url) as conn:  # fmt: skip
        assert derive.derive_pulse(conn, now=NOW) > 5  # the good device's minutes and intervals
        assert devices.derived_until(conn, bad, "pulse") is None  # rolled back, not passed
    (failed,) = [r for r in caplog.records if bad in r.getMessage()]
    assert failed.getMessage() == f"device {bad}: pulse failed; the other devices go on"
    assert failed.exc_info is not None
    assert "injected fault" in str(failed.exc_info[1])
    # Fixed (here: the fault gone), the next tick derives what was missed.
    monkeypatch.setattr(derive, "ppg_beats", real)
    with psycopg.connect(database_url) as conn:
        assert derive.derive_pulse(conn, now=NOW) > 5
    assert _derived(database_url, f"pt-{bad}", Metric.HEART_RATE) == 5
    assert _derived(database_url, f"pt-{good}", Metric.HEART_RATE) == 5
