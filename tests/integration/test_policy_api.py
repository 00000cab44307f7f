"""The alerting policy and patient overrides against a real PostgreSQL: API, CLI, pipeline."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg
import pytest
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

from alerts.model import Rule, Severity
from alerts.policy import Overrides, Pause
from dashboard.app import create_app
from ingest import pipeline as pipe
from storage import alerts as alert_store
from storage import assignments
from storage import policy as policy_store
from storage.policy import PostgresPolicy
from storage.ward import PostgresWard
from wardwatch import cli

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

from tests.clock import Clock

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
EXAMPLE = Path(__file__).parents[2] / "deploy" / "policy.example.yaml"
GOOD = "wards:\n  ward-a:\n    escalation:\n      ack_within: {emergency: 3m}\n"
BAD = "wards:\n  ward-a:\n    escalation:\n      ack_within: {emergency: soon}\n"


@pytest.fixture
def ward(database_url: str, uid: str) -> tuple[str, str, str]:
    device, patient = f"dev-{uid}", f"pt-{uid}"
    with psycopg.connect(database_url) as conn:
        assignments.enrol(
            conn, device_id=device, patient_id=patient, ward="ward-a", valid_from=T0 - timedelta(1)
        )
    return database_url, device, patient


@pytest.fixture
def client(ward: tuple[str, str, str]) -> Iterator[tuple[TestClient, Clock]]:
    url = ward[0]
    pool: ConnectionPool[psycopg.Connection[tuple[object, ...]]] = ConnectionPool(
        url, min_size=1, max_size=2, open=True
    )
    clock = Clock(T0)
    app = create_app(
        PostgresWard(pool),
        registry=CollectorRegistry(),
        clock=clock,
        policy=PostgresPolicy(pool, channels=frozenset({"log"})),
    )
    with TestClient(app) as c:
        yield c, clock
    pool.close()


# --- the policy --------------------------------------------------------------------------------


def test_a_bad_policy_is_refused_with_its_line_and_the_running_one_stays(
    client: tuple[TestClient, Clock],
) -> None:
    c, _ = client
    first = c.get("/api/policy").json()
    assert first["version"] == 0  # built-in: nothing stored yet
    assert first["policy"]["default"]["escalation"]["ack_within"]["emergency"] == "5m"

    resp = c.put("/api/policy", json={"user": "Sister Jones", "text": GOOD})
    assert resp.status_code == 200, resp.text
    assert resp.json()["version"] == 1
    assert resp.json()["policy"]["wards"]["ward-a"]["escalation"]["ack_within"]["emergency"] == (
        "3m"
    )

    refused = c.put("/api/policy", json={"user": "Sister Jones", "text": BAD})
    assert refused.status_code == 422
    detail = refused.json()["detail"]
    assert detail["issues"] == [
        {
            "line": 4,
            "path": "wards.ward-a.escalation.ack_within.emergency",
            "message": "expected a duration such as '5m', '90s' or '1h', got 'soon'",
        }
    ]
    assert detail["message"].startswith("policy.yaml line 4: wards.ward-a.escalation")

    now = c.get("/api/policy").json()
    assert (now["version"], now["text"], now["set_by"]) == (1, GOOD, "Sister Jones")
    assert now["set_at"] == "2026-11-28T09:00:00Z"


def test_a_policy_naming_an_unconfigured_channel_is_refused(
    client: tuple[TestClient, Clock],
) -> None:
    c, _ = client
    resp = c.put("/api/policy", json={"user": "x", "text": "default:\n  channels: [webhook]\n"})
    assert resp.status_code == 422
    assert "channel 'webhook' is not configured" in resp.json()["detail"]["message"]


def test_saving_the_same_text_again_makes_no_new_version(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        assert policy_store.save(conn, GOOD, set_by="a", at=T0).version == 1
        assert policy_store.save(conn, GOOD, set_by="b", at=T0).version == 1
        assert policy_store.save(conn, EXAMPLE.read_text(), set_by="b", at=T0).version == 2
        stored = policy_store.current(conn)
    assert stored.version == 2
    assert "respiratory-vw" in stored.policy.wards


# --- patient overrides -------------------------------------------------------------------------


def test_overrides_need_a_clinician_and_reason_and_keep_a_history(
    client: tuple[TestClient, Clock], ward: tuple[str, str, str]
) -> None:
    c, clock = client
    url, _, patient = ward
    path = f"/api/patients/{patient}/overrides"
    assert c.get("/api/patients/nobody/overrides").status_code == 404
    assert (
        c.put("/api/patients/nobody/overrides", json={"user": "Dr A", "reason": "x"}).status_code
        == 404
    )
    initial = c.get(path).json()
    assert (initial["spo2_scale"], initial["set_by"], initial["paused"]) == (1, None, False)

    assert c.put(path, json={"user": "Dr A", "spo2_scale": 2}).status_code == 422  # no reason
    assert c.put(path, json={"user": "", "reason": "x", "spo2_scale": 2}).status_code == 422

    resp = c.put(
        path,
        json={
            "user": "Dr A",
            "reason": "COPD with hypercapnia; BTS target 88-92 %",
            "spo2_scale": 2,
            "spo2_target_pct": [88, 92],
        },
    )
    assert resp.status_code == 200, resp.text
    with psycopg.connect(url) as conn:
        row = conn.execute("select spo2_scale from patients where patient_id = %s", (patient,))
        assert row.fetchone() == (2,)

    clock.now = T0 + timedelta(minutes=10)
    until = T0 + timedelta(hours=4)
    pause = {"reason": "admitted for a procedure", "until": until.isoformat()}
    resp = c.put(
        path,
        json={"user": "Dr B", "reason": "day case", "spo2_scale": 2, "pause": pause},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["paused"] is True
    assert body["pause"]["since"] == "2026-11-28T09:10:00Z"
    assert body["spo2_target_pct"] is None  # a PUT sets the whole state: the target was dropped

    past = {"reason": "x", "until": (T0 - timedelta(hours=1)).isoformat()}
    refused = c.put(path, json={"user": "Dr B", "reason": "x", "pause": past})
    assert refused.status_code == 422
    assert "pause.until: must be in the future" in refused.json()["detail"]

    clock.now = until  # the pause has ended by itself
    assert c.get(path).json()["paused"] is False

    history = c.get(f"{path}/history").json()
    assert [(h["set_by"], h["spo2_scale"], h["paused"]) for h in history] == [
        ("Dr B", 2, False),
        ("Dr A", 2, False),
    ]
    assert history[1]["reason"] == "COPD with hypercapnia; BTS target 88-92 %"


# --- the pipeline applies the pause, Scale 2 and the ward's policy ------------------------------


def _pipeline(url: str, clock: Clock) -> pipe.Pipeline:
    return pipe.Pipeline(
        url,
        settings=pipe.Settings(),
        metrics=pipe.PipelineMetrics.create(CollectorRegistry()),
        clock=clock,
    )


def _vitals(device: str, at: datetime, **values: object) -> tuple[str, bytes, int]:
    body = orjson.dumps([{"ts": at.isoformat(), **values}])
    return (f"wardwatch/v1/devices/{device}/vitals", body, int(at.timestamp() * 1e6))


SICK = {"heart_rate": 135, "resp_rate": 27, "spo2": 90, "temperature": 39.4, "on_oxygen": False}


def test_a_paused_patient_is_scored_but_not_alerted_until_the_pause_ends(
    ward: tuple[str, str, str],
) -> None:
    url, device, patient = ward
    with psycopg.connect(url) as conn:
        policy_store.set_overrides(
            conn,
            patient,
            Overrides(pause=Pause("in hospital for a procedure", T0, T0 + timedelta(hours=1))),
            set_by="Dr A",
            reason="day case",
            now=T0,
        )
    clock = Clock(T0)
    p = _pipeline(url, clock)
    try:
        during = p.process([_vitals(device, T0 + timedelta(minutes=5), **SICK)])
        assert during.stored == 5
        assert during.alerts == []
        clock.now = T0 + timedelta(hours=1)
        after = p.process([_vitals(device, T0 + timedelta(hours=1), **SICK)])
        assert [(o.kind, o.severity) for o in after.alerts] == [("fired", Severity.EMERGENCY)]
    finally:
        p.close()
    with psycopg.connect(url) as conn:
        n = conn.execute("select count(*) from scores where patient_id = %s", (patient,))
        assert n.fetchone() == (2,)  # the paused reading was scored too


def test_scale_2_set_by_a_clinician_reaches_news2(ward: tuple[str, str, str]) -> None:
    url, device, patient = ward
    clock = Clock(T0)
    low = {"spo2": 88, "on_oxygen": False}  # Scale 1: 3 (an urgent review); Scale 2: 0
    p = _pipeline(url, clock)
    try:
        assert [o.severity for o in p.process([_vitals(device, T0, **low)]).alerts] == [
            Severity.REVIEW
        ]
    finally:
        p.close()
    with psycopg.connect(url) as conn:
        policy_store.set_overrides(
            conn, patient, Overrides(spo2_scale=2), set_by="Dr A", reason="COPD", now=T0
        )
        conn.execute("delete from alert_events")
        conn.execute("delete from notifications")
        conn.execute("delete from alerts")
        conn.commit()
    p = _pipeline(url, clock)
    try:
        later = T0 + timedelta(minutes=1)
        assert p.process([_vitals(device, later, **low)]).alerts == []
    finally:
        p.close()


def test_the_pipeline_uses_the_stored_policy_of_the_patients_ward(
    ward: tuple[str, str, str],
) -> None:
    url, device, patient = ward
    with psycopg.connect(url) as conn:
        policy_store.save(conn, GOOD, set_by="Sister Jones", at=T0)
    clock = Clock(T0)
    p = _pipeline(url, clock)
    try:
        p.process([_vitals(device, T0, **SICK)])
    finally:
        p.close()
    with psycopg.connect(url) as conn:
        alert = alert_store.open_alerts(conn, [patient])[(patient, Rule.NEWS2)]
    assert alert.next_escalation_at == T0 + timedelta(minutes=3)  # ward-a's, not the default 5


# --- the command line --------------------------------------------------------------------------


def test_cli_check_set_show(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    assert cli.main(["policy", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad} line 4: wards.ward-a.escalation.ack_within.emergency" in err
    assert cli.main(["policy", "check", str(good)]) == 0
    capsys.readouterr()

    db = ["--database-url", database_url]
    assert cli.main(["policy", "set", str(bad), "--user", "x", *db]) == 2
    assert "the policy in force is unchanged" in capsys.readouterr().err
    assert cli.main(["policy", "set", str(good), "--user", "Sister Jones", *db]) == 0
    assert "version 1" in capsys.readouterr().out
    assert cli.main(["policy", "show", *db]) == 0
    shown = capsys.readouterr()
    assert shown.out == GOOD
    assert "set by Sister Jones" in shown.err


def test_run_refuses_to_start_with_a_bad_policy_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    monkeypatch.setenv("WARDWATCH_POLICY_FILE", str(bad))
    assert cli.main(["run"]) == 2
    err = capsys.readouterr().err
    assert "refusing to start" in err
    assert f"{bad} line 4:" in err


def test_enrol_with_scale_2_needs_a_clinician(
    database_url: str, uid: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["enrol", "--device", f"d-{uid}", "--patient", f"p-{uid}", "--ward", "w"]
    db = ["--database-url", database_url]
    assert cli.main([*args, "--spo2-scale", "2", *db]) == 2
    assert "--clinician" in capsys.readouterr().err
    assert (
        cli.main([*args, "--spo2-scale", "2", "--clinician", "Dr A", "--reason", "COPD", *db]) == 0
    )
    # Re-enrolling without --spo2-scale keeps the clinician's scale.
    assert cli.main([*args, *db]) == 0
    with psycopg.connect(database_url) as conn:
        record = policy_store.current_overrides(conn, f"p-{uid}")
        scale = conn.execute("select spo2_scale from patients where patient_id = %s", (f"p-{uid}",))
        assert scale.fetchone() == (2,)
    assert record is not None
    assert (record.set_by, record.reason, record.overrides.spo2_scale) == ("Dr A", "COPD", 2)
