"""A user closes an alert with an outcome: audited, escalation stops, mistakes refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from alerts.escalation import EscalationPolicy
from alerts.lifecycle import Fire
from alerts.model import RESOLUTION_OUTCOMES, AlertState, Condition, Rule, Severity
from alerts.policy import Policy
from storage import alerts as alert_store
from storage.views import ConflictError, NotFoundError

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_a_nurse_resolves_an_alert_with_an_outcome_and_the_history_says_so(
    database_url: str, uid: str
) -> None:
    policy = EscalationPolicy()
    with psycopg.connect(database_url) as conn:
        with conn.transaction():
            fired = alert_store.apply(
                conn,
                Fire(Condition(f"pt-{uid}", Rule.NEWS2, Severity.URGENT, "NEWS2 5 (medium)")),
                ward="ward-r",
                now=NOW,
                policy=policy,
                channels=("log",),
            )
        done = alert_store.resolve(
            conn,
            fired.alert_id,
            user="Nurse Okafor",
            outcome="managed at home",
            note="phoned: inhaler technique, RR settled",
            now=NOW + timedelta(minutes=7),
        )
        assert done.state is AlertState.RESOLVED
        assert done.resolved_at == NOW + timedelta(minutes=7)
        assert done.next_escalation_at is None  # nobody is paged about a closed alert
        last = alert_store.events(conn, fired.alert_id)[-1]
        assert (last.kind, last.actor, last.detail) == (
            "resolved",
            "Nurse Okafor",
            "managed at home: phoned: inhaler technique, RR settled",
        )
        with conn.transaction():
            assert (
                alert_store.escalate_due(conn, now=NOW + timedelta(hours=2), policy=Policy()) == []
            )
        with pytest.raises(ConflictError, match="already resolved"):
            alert_store.resolve(conn, fired.alert_id, user="x", outcome="other", note=None,
                                now=NOW)  # fmt: skip
        with pytest.raises(NotFoundError):
            alert_store.resolve(conn, 10**9, user="x", outcome="other", note=None, now=NOW)
        with pytest.raises(ValueError, match="outcome must be one of"):
            alert_store.resolve(conn, fired.alert_id, user="x", outcome="fine", note=None,
                                now=NOW)  # fmt: skip
    assert "false alarm (artefact)" in RESOLUTION_OUTCOMES
