"""A batch through ingest → storage → NEWS2 → alerts against a real PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest
from prometheus_client import CollectorRegistry

from alerts.model import AlertState, Rule, Severity
from alerts.policy import Policy, Thresholds, WardPolicy
from ingest import pipeline as pipe
from ingest.loop import run as run_loop
from signals.vitals import Metric
from storage import alerts as alert_store
from storage import assignments
from tests.clock import Clock
from wardwatch import jobs

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
QUIET = timedelta(minutes=15)


def _us(t: datetime) -> int:
    return int(t.timestamp() * 1_000_000)


def _msg(
    device: str, samples: list[dict[str, object]], received: datetime
) -> tuple[str, bytes, int]:
    return (f"wardwatch/v1/devices/{device}/vitals", orjson.dumps(samples), _us(received))


@pytest.fixture
def ward(database_url: str, uid: str) -> tuple[str, str, str]:
    device, patient = f"dev-{uid}", f"pt-{uid}"
    with psycopg.connect(database_url) as conn:
        assignments.enrol(
            conn,
            device_id=device,
            patient_id=patient,
            ward="ward-a",
            valid_from=T0 - timedelta(hours=1),
        )
    return database_url, device, patient


_OPEN: list[pipe.Pipeline] = []


@pytest.fixture(autouse=True)
def _close_pipelines() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def _pipeline(url: str, clock: Clock) -> tuple[pipe.Pipeline, CollectorRegistry]:
    registry = CollectorRegistry()
    p = pipe.Pipeline(
        url, settings=pipe.Settings(), metrics=pipe.PipelineMetrics.create(registry), clock=clock
    )
    _OPEN.append(p)
    return p, registry


def test_batch_is_stored_once_scored_and_alerted(ward: tuple[str, str, str]) -> None:
    url, device, patient = ward
    clock = Clock(T0)
    p, registry = _pipeline(url, clock)
    sick = {
        "ts": T0.isoformat(),
        "heart_rate": 135,
        "resp_rate": 27,
        "spo2": 90,
        "temperature": 39.4,
        "on_oxygen": False,
    }
    batch = [
        _msg(device, [sick], T0),
        _msg(device, [sick], T0),  # duplicate delivery
        _msg(device, [{"ts": T0.isoformat(), "heart_rate": 400}], T0),  # impossible
        (f"wardwatch/v1/devices/{device}/vitals", b"{not json", _us(T0)),
        _msg("stranger", [{"ts": T0.isoformat(), "heart_rate": 70}], T0),  # unknown device
    ]
    result = p.process(batch)
    assert result.stored == 5  # hr, rr, spo2, temp, on_oxygen
    assert result.quarantined == 3
    assert [(o.kind, o.severity) for o in result.alerts] == [("fired", Severity.EMERGENCY)]

    # RR 27 → 3, SpO2 90 → 3, air → 0, HR 135 → 3, temp 39.4 → 2: 11, high; BP and ACVPU missing.
    with psycopg.connect(url) as conn:
        score = conn.execute(
            "select total, risk, missing from scores where patient_id = %s", (patient,)
        ).fetchone()
        reasons = sorted(r for (r,) in conn.execute("select reason from quarantine"))
    assert score == (11, "high", ["systolic_bp", "consciousness"])
    assert reasons == ["impossible value", "invalid json", "unknown device"]
    assert registry.get_sample_value("wardwatch_readings_stored_total") == 5
    assert (
        registry.get_sample_value(
            "wardwatch_readings_quarantined_total", {"reason": "unknown device"}
        )
        == 1
    )
    assert (
        registry.get_sample_value("wardwatch_alerts_raised_total", {"severity": "emergency"}) == 1
    )

    # The same batch again (a redelivery after a crash) stores nothing and raises nothing new.
    again = p.process(batch[:2])
    assert again.stored == 0
    assert again.alerts == []


def test_alert_worsens_then_resolves_with_history(ward: tuple[str, str, str]) -> None:
    url, device, _patient = ward
    clock = Clock(T0)
    p, _ = _pipeline(url, clock)
    base = {"resp_rate": 16, "spo2": 97, "on_oxygen": False, "temperature": 37.0}
    p.process([_msg(device, [{"ts": T0.isoformat(), **base, "heart_rate": 135}], T0)])  # HR 3
    t1 = T0 + timedelta(minutes=1)
    p.process([_msg(device, [{"ts": t1.isoformat(), **base, "heart_rate": 135, "resp_rate": 26,
                              "temperature": 39.2}], t1)])  # fmt: skip  # 3+3+2 = 8
    # Clear at t2; back (a single 3) at t3 within the hold-down: the same alert carries on.
    for minute, hr in [(2, 72), (3, 135), (4, 72), (10, 72), (18, 72)]:
        t = T0 + timedelta(minutes=minute)
        p.process([_msg(device, [{"ts": t.isoformat(), **base, "heart_rate": hr}], t)])
    with psycopg.connect(url) as conn:
        (still_open,) = alert_store.list_alerts(conn)
        assert still_open.state is AlertState.OPEN
    # Clear for the 15-minute hold-down (event time, from minute 4): resolved.
    t2 = T0 + timedelta(minutes=20)
    p.process([_msg(device, [{"ts": t2.isoformat(), **base, "heart_rate": 72}], t2)])
    with psycopg.connect(url) as conn:
        alerts = alert_store.list_alerts(conn)
        assert len(alerts) == 1
        alert = alerts[0]
        kinds = [e.kind for e in alert_store.events(conn, alert.id)]
    assert alert.rule is Rule.NEWS2
    assert alert.severity is Severity.EMERGENCY
    assert alert.state is AlertState.RESOLVED
    assert kinds == ["fired", "worsened", "clearing", "recurred", "clearing", "resolved"]


def test_escalation_and_acknowledgement(ward: tuple[str, str, str]) -> None:
    url, device, _patient = ward
    clock = Clock(T0)
    p, _ = _pipeline(url, clock)
    p.process(
        [
            _msg(
                device,
                [
                    {
                        "ts": T0.isoformat(),
                        "heart_rate": 150,
                        "resp_rate": 30,
                        "spo2": 85,
                        "on_oxygen": False,
                    }
                ],
                T0,
            )
        ]
    )
    policy = Policy()
    with psycopg.connect(url) as conn:
        # Before the deadline nothing happens; after it, the next tier is paged exactly once.
        assert jobs.escalate(conn, now=T0 + timedelta(minutes=4), policy=policy) == 0
        assert jobs.escalate(conn, now=T0 + timedelta(minutes=5), policy=policy) == 1
        assert jobs.escalate(conn, now=T0 + timedelta(minutes=6), policy=policy) == 0
        (alert,) = alert_store.list_alerts(conn, AlertState.OPEN)
        assert alert.escalation_level == 1
        recipients = [r for (r,) in conn.execute("select recipient from notifications order by id")]
        assert recipients == ["ward nurse", "senior clinician"]
        acked = alert_store.acknowledge(
            conn, alert.id, user="Nurse Okafor", note="seen", now=T0 + timedelta(minutes=7)
        )
        assert acked.state is AlertState.ACKNOWLEDGED
        assert acked.acknowledged_by == "Nurse Okafor"
        assert jobs.escalate(conn, now=T0 + timedelta(hours=1), policy=policy) == 0


def test_silent_device_raises_technical_alert(ward: tuple[str, str, str]) -> None:
    url, device, _patient = ward
    clock = Clock(T0)
    p, _ = _pipeline(url, clock)
    p.process([_msg(device, [{"ts": T0.isoformat(), "heart_rate": 70}], T0)])
    policy = Policy(default=WardPolicy(thresholds=Thresholds(no_data_silent_after=QUIET)))
    with psycopg.connect(url) as conn:
        assert (
            jobs.check_silence(
                conn,
                now=T0 + timedelta(minutes=10),
                policy=policy,
            )
            == 0
        )
        assert (
            jobs.check_silence(
                conn,
                now=T0 + timedelta(minutes=20),
                policy=policy,
            )
            == 1
        )
        (alert,) = alert_store.list_alerts(conn, AlertState.OPEN)
        assert alert.rule is Rule.NO_DATA
        assert alert.severity is Severity.TECHNICAL
        recipients = [r for (r,) in conn.execute("select recipient from notifications")]
        assert recipients == ["device team"]


def test_database_outage_retries_the_same_batch(ward: tuple[str, str, str]) -> None:
    url, device, _ = ward
    clock = Clock(T0)
    good, _ = _pipeline(url, clock)
    broken, _ = _pipeline("postgresql://nobody@127.0.0.1:1/none", clock)
    committed: list[int] = []
    attempts = iter([0.0, 0.0])

    class Flaky:
        """Fails twice like a database restart, then reaches the real database."""

        def __init__(self) -> None:
            self.calls = 0

        def process(self, items: list[tuple[str, bytes, int]]) -> pipe.BatchResult:
            self.calls += 1
            return (broken if self.calls <= 2 else good).process(items)

        def close(self) -> None:
            broken.close()

    flaky = Flaky()
    total = run_loop(
        flaky,
        [[_msg(device, [{"ts": T0.isoformat(), "heart_rate": 70}], T0)]],  # type: ignore[arg-type]
        on_committed=committed.append,
        stop=threading.Event(),
        retry_delays=attempts,
    )
    assert flaky.calls == 3
    assert committed == [0]
    assert total.stored == 1


def test_a_poisonous_message_is_quarantined_and_its_batch_mates_stored(
    database_url: str, uid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(T0)
    with psycopg.connect(database_url) as conn:
        for n in ("a", "b"):
            assignments.enrol(
                conn,
                device_id=f"dev-{uid}-{n}",
                patient_id=f"pt-{uid}-{n}",
                ward="w",
                valid_from=T0 - timedelta(hours=1),
            )
    real = pipe.news2_from_latest

    def fails_for_b(latest: Any, **kw: Any) -> Any:
        if any(v[1] == 66.0 for v in latest.values()):
            raise ZeroDivisionError("a bug in scoring")
        return real(latest, **kw)

    monkeypatch.setattr(pipe, "news2_from_latest", fails_for_b)
    p, registry = _pipeline(database_url, clock)
    batch = [
        _msg(f"dev-{uid}-a", [{"ts": T0.isoformat(), "heart_rate": 70}], T0),
        _msg(f"dev-{uid}-b", [{"ts": T0.isoformat(), "heart_rate": 66}], T0),
    ]
    committed: list[int] = []
    total = run_loop(p, [batch], on_committed=committed.append, stop=threading.Event())
    assert committed == [0]  # the batch is acknowledged: nothing in it is lost
    assert (total.stored, total.quarantined) == (1, 1)
    with psycopg.connect(database_url) as conn:
        row = conn.execute("select device_id, reason, detail, payload from quarantine").fetchone()
    assert row is not None
    device, reason, detail, payload = row
    assert (device, reason) == (f"dev-{uid}-b", "processing error")
    assert "ZeroDivisionError" in str(detail)
    assert b'"heart_rate":66' in bytes(payload)  # type: ignore[arg-type]
    assert (
        registry.get_sample_value(
            "wardwatch_readings_quarantined_total", {"reason": "processing error"}
        )
        == 1
    )


def test_late_floods_and_quarantine_retry(database_url: str, uid: str) -> None:
    from ingest.ratelimit import Limit  # noqa: PLC0415
    from ingest.requeue import retry  # noqa: PLC0415
    from storage.quarantine import Selection  # noqa: PLC0415

    clock = Clock(T0)
    device = f"dev-{uid}"
    registry = CollectorRegistry()
    p = pipe.Pipeline(
        database_url,
        settings=pipe.Settings(rate_limit=Limit(per_second=1, burst=3)),
        metrics=pipe.PipelineMetrics.create(registry),
        clock=clock,
    )
    _OPEN.append(p)
    # A device nobody has enrolled yet, then a flood, then a watch syncing yesterday's buffer.
    early = [_msg(device, [{"ts": (T0 - timedelta(hours=5)).isoformat(), "heart_rate": 61}], T0)]
    assert p.process(early).quarantined == 1
    with psycopg.connect(database_url) as conn:
        assignments.enrol(
            conn,
            device_id=device,
            patient_id=f"pt-{uid}",
            ward="w",
            valid_from=T0 - timedelta(days=1),
        )
    flood = [
        _msg(
            device,
            [{"ts": (T0 + timedelta(milliseconds=100 * i)).isoformat(), "heart_rate": 70}],
            T0,
        )
        for i in range(5)
    ]
    result = p.process(flood)
    assert (result.stored, result.quarantined) == (3, 2)  # the burst of 3 passes, 2 set aside
    with psycopg.connect(database_url) as conn:
        reasons = sorted(r for (r,) in conn.execute("select reason from quarantine"))
        assert reasons == ["rate limited", "rate limited", "unknown device"]
        late = conn.execute("select late from readings where ts < %s", (T0,)).fetchall()
    assert late == []  # nothing of the early message is stored yet

    # After the enrolment and the flood are dealt with, retry everything: nothing is doubled.
    clock.now = T0 + timedelta(minutes=1)
    done = retry(p, database_url, Selection(), now=clock.now)
    assert (done.messages, done.stored, done.quarantined_again) == (3, 3, 0)
    again = retry(p, database_url, Selection(), now=clock.now)
    assert again.messages == 0
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("select ts, late from readings order by ts").fetchall()
        waiting = conn.execute(
            "select count(*) from quarantine where retried_at is null"
        ).fetchone()
    assert len(rows) == 6
    assert rows[0] == (T0 - timedelta(hours=5), True)  # received 5 h after it was measured
    assert all(not late for _, late in rows[1:])
    assert waiting == (0,)
    assert registry.get_sample_value("wardwatch_readings_late_total") == 1


def test_waveforms_and_status_are_routed_stored_and_numbered(
    ward: tuple[str, str, str],
) -> None:
    from storage import devices  # noqa: PLC0415

    url, device, patient = ward
    clock = Clock(T0)
    p, _ = _pipeline(url, clock)
    base = f"wardwatch/v1/devices/{device}"
    received = _us(T0)
    chunk = {"ts": T0.isoformat(), "kind": "ppg", "fs_hz": 25, "samples": [0.5] * 250, "seq": 7}
    status = {
        "ts": T0.isoformat(),
        "battery": 14,
        "worn": False,
        "firmware": "2.3.1",
        "clock": (T0 + timedelta(seconds=90)).isoformat(),
        "seq": 9,
    }
    result = p.process(
        [
            (f"{base}/waveform", orjson.dumps(chunk), received),
            (f"{base}/status", orjson.dumps(status), received),
            (f"{base}/waveform", orjson.dumps({**chunk, "fs_hz": 0}), received),  # impossible rate
            (f"{base}/elsewhere", b"{}", received),  # not one of the three streams
        ]
    )
    assert result.stored == 2  # battery and worn, as readings of the patient
    assert result.quarantined == 2
    with psycopg.connect(url) as conn:
        (stored,) = devices.load_waveform(
            conn, device, devices.WaveformKind.PPG, T0, T0 + timedelta(seconds=10)
        )
        latest = devices.latest_status(conn, [device])[device]
        metrics = conn.execute(
            "select metric, value from readings where patient_id = %s order by metric", (patient,)
        ).fetchall()
        reasons = sorted(r for (r,) in conn.execute("select reason from quarantine"))
        seqs = conn.execute("select stream, seq from message_seq order by stream").fetchall()
    assert stored.n_samples == 250
    assert latest.battery_pct == 14
    assert latest.clock_offset_s == pytest.approx(90, abs=1)
    assert metrics == [(int(Metric.BATTERY), 14.0), (int(Metric.WORN), 0.0)]
    assert reasons == ["bad topic", "impossible value"]
    assert seqs == [("status", 9), ("waveform", 7)]


def test_a_gap_in_a_devices_numbered_messages_raises_a_technical_alert(
    ward: tuple[str, str, str],
) -> None:
    url, device, patient = ward
    clock = Clock(T0)
    p, _ = _pipeline(url, clock)
    topic = f"wardwatch/v1/devices/{device}/status"
    for seq in (1, 2, 5, 3):  # 3 arrives late, 4 never does
        t = T0 + timedelta(seconds=seq)
        p.process([(topic, orjson.dumps({"ts": t.isoformat(), "battery": 80, "seq": seq}), _us(t))])
    limits = Thresholds(
        message_gap_window=timedelta(hours=1), message_gap_grace=timedelta(minutes=2)
    )
    kw = {"policy": Policy(default=WardPolicy(thresholds=limits))}
    with psycopg.connect(url) as conn:
        # Within the grace time nothing is said: message 4 may still be on its way.
        assert jobs.check_gaps(conn, now=T0 + timedelta(minutes=1), **kw) == 0  # type: ignore[arg-type]
        assert jobs.check_gaps(conn, now=T0 + timedelta(minutes=3), **kw) == 1  # type: ignore[arg-type]
        (alert,) = alert_store.list_alerts(conn, AlertState.OPEN)
        assert alert.rule is Rule.MESSAGE_GAP
        assert alert.severity is Severity.TECHNICAL
        assert alert.patient_id == patient
        assert "1 message from device" in alert.summary
        assert "status #4" in alert.summary
        # An hour later the gap has left the window: the alert resolves by itself.
        assert jobs.check_gaps(conn, now=T0 + timedelta(hours=2), **kw) == 1  # type: ignore[arg-type]
        assert alert_store.list_alerts(conn, AlertState.OPEN) == []
