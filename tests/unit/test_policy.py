"""The alerting policy: each kind of mistake is refused naming its line; a good one round-trips."""

from __future__ import annotations

import doctest
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import alerts.policy
from alerts.escalation import EscalationPolicy
from alerts.model import Rule, Severity
from alerts.policy import (
    DEFAULT_POLICY,
    MAX_PAUSE,
    OverrideError,
    Overrides,
    Pause,
    PolicyError,
    check_overrides,
    dump,
    format_duration,
    parse,
)

EXAMPLE = Path(__file__).parents[2] / "deploy" / "policy.example.yaml"
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def test_the_example_parses_and_wards_inherit_the_default() -> None:
    policy = parse(EXAMPLE.read_text(), "policy.example.yaml")
    resp = policy.for_ward("respiratory-vw")
    assert resp.escalation.clinical_tiers == ("ward nurse", "respiratory consultant")
    assert resp.escalation.ack_within[Severity.EMERGENCY] == timedelta(minutes=3)
    assert resp.escalation.ack_within[Severity.REVIEW] == timedelta(minutes=30)  # from default
    assert resp.escalation.technical_tiers == ("device team",)
    frailty = policy.for_ward("frailty-vw")
    assert frailty.thresholds.no_data_silent_after == timedelta(minutes=30)
    assert not frailty.rule(Rule.NOT_WORN).enabled
    assert frailty.escalation == policy.default.escalation
    # A ward the file does not name gets the default.
    assert policy.for_ward("ward-x") is policy.default
    assert policy.default.rule(Rule.NEWS2).hold_down == timedelta(minutes=15)


def test_a_valid_policy_round_trips_through_dump() -> None:
    policy = parse(EXAMPLE.read_text())
    assert parse(dump(policy)) == policy
    assert parse(dump(DEFAULT_POLICY)) == DEFAULT_POLICY
    assert policy != DEFAULT_POLICY  # the round trip could tell them apart


def test_an_empty_text_is_the_built_in_policy() -> None:
    assert parse("") == DEFAULT_POLICY
    assert parse("version: 1\n") == DEFAULT_POLICY


def test_the_built_in_escalation_is_the_one_the_service_used_before() -> None:
    assert DEFAULT_POLICY.default.escalation == EscalationPolicy()
    assert DEFAULT_POLICY.default.channels == ("log",)


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        pytest.param(
            "default:\n  escalation:\n    ack_within:\n      emergency: soon\n",
            4,
            "default.escalation.ack_within.emergency: expected a duration such as '5m'",
            id="bad-duration",
        ),
        pytest.param(
            "default:\n  escalation:\n    repeat_every: 15\n",
            3,
            "repeat_every: expected a duration such as '5m', '90s' or '1h', got 15",
            id="bare-number-is-not-a-duration",
        ),
        pytest.param(
            "default:\n  escalation:\n    ack_within: {urgent: -5m}\n",
            3,
            "ack_within.urgent: must not be negative, got '-5m'",
            id="negative-duration",
        ),
        pytest.param(
            "default:\n  escalation:\n    ack_within: {urgent: 0s}\n",
            3,
            "must be more than zero",
            id="zero-ack",
        ),
        pytest.param(
            "default:\n  escalation:\n    max_repeats: -1\n",
            3,
            "max_repeats: must not be negative, got -1",
            id="negative-count",
        ),
        pytest.param(
            "default:\n  escalation:\n    max_repeats: three\n",
            3,
            "max_repeats: expected a whole number, got 'three'",
            id="wrong-type-count",
        ),
        pytest.param(
            "default:\n  escalation:\n    max_repeats: true\n",
            3,
            "expected a whole number, got True",
            id="bool-is-not-a-count",
        ),
        pytest.param(
            "default:\n  escalation:\n    clinical_tiers: ward nurse\n",
            3,
            "clinical_tiers: expected a non-empty list of recipients",
            id="tiers-not-a-list",
        ),
        pytest.param(
            "default:\n  escalation:\n    clinical_tiers: [a, a]\n",
            3,
            "'a' is listed twice",
            id="tier-twice",
        ),
        pytest.param(
            "default:\n  escalation:\n    ack_within: {minor: 5m}\n",
            3,
            "unknown severity 'minor'",
            id="unknown-severity",
        ),
        pytest.param(
            "default:\n  escalation:\n    pager: yes\n",
            3,
            "default.escalation.pager: unknown key 'pager'",
            id="unknown-key",
        ),
        pytest.param("colour: red\n", 1, "colour: unknown key 'colour'", id="unknown-top-key"),
        pytest.param(
            "default:\n  channels: [log, pager]\n",
            2,
            "unknown channel 'pager'",
            id="unknown-channel",
        ),
        pytest.param(
            "default:\n  channels: []\n", 2, "non-empty list of channels", id="no-channel"
        ),
        pytest.param(
            "default:\n  rules:\n    nodata: {enabled: false}\n",
            3,
            "unknown rule 'nodata'",
            id="unknown-rule",
        ),
        pytest.param(
            "default:\n  rules:\n    no_data: {enabled: perhaps}\n",
            3,
            "no_data.enabled: expected true or false, got 'perhaps'",
            id="wrong-type-flag",
        ),
        pytest.param(
            "default:\n  rules:\n    no_data: {silent_after: 5 minutes}\n",
            3,
            "silent_after: expected a duration",
            id="bad-threshold-duration",
        ),
        pytest.param(
            "default:\n  rules:\n    battery: {low_pct: 120}\n",
            3,
            "low_pct: must be between 0 and 100, got 120",
            id="percent-out-of-range",
        ),
        pytest.param(
            "default:\n  rules:\n    battery: {low_pct: 5}\n",
            3,
            "critical_pct (10) must be below low_pct (5)",
            id="critical-above-low",
        ),
        pytest.param(
            "default:\n  rules:\n    news2:\n      emergency_total: 6\n",
            4,
            "NEWS2 thresholds are the RCP's",
            id="news2-bands-are-fixed",
        ),
        pytest.param(
            "default:\n  rules:\n    news2: {enabled: false}\n",
            3,
            "news2 cannot be disabled",
            id="news2-cannot-be-disabled",
        ),
        pytest.param(
            "default:\n  rules:\n    battery: {tolerance: 2m}\n",
            3,
            "battery.tolerance: unknown key 'tolerance'",
            id="another-rules-threshold",
        ),
        pytest.param(
            "wards:\n  a: {channels: [log]}\n  a: {channels: [log]}\n",
            3,
            "wards.a: 'a' is given twice (first on line 2)",
            id="duplicate-ward",
        ),
        pytest.param(
            "default:\n  channels: [log]\n  channels: [log]\n",
            3,
            "'channels' is given twice",
            id="duplicate-key",
        ),
        pytest.param("wards: [a, b]\n", 1, "wards: expected a mapping", id="wards-not-a-mapping"),
        pytest.param("version: 2\n", 1, "version: expected 1, got 2", id="unknown-version"),
        pytest.param(
            "default:\n  channels: log: webhook\n",
            2,
            "not valid YAML: mapping values are not allowed here",
            id="not-yaml",
        ),
        pytest.param("- a\n- b\n", 1, "expected a mapping", id="top-not-a-mapping"),
    ],
)
def test_a_bad_policy_is_refused_naming_the_line(text: str, line: int, expected: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse(text, "ward.yaml")
    message = str(caught.value)
    assert message.startswith(f"ward.yaml line {line}: "), message
    assert expected in message
    assert caught.value.issues[0].line == line


def test_every_mistake_is_reported_at_once_in_line_order() -> None:
    text = (
        "default:\n"
        "  escalation:\n"
        "    ack_within: {emergency: soon}\n"
        "    max_repeats: -2\n"
        "wards:\n"
        "  a:\n"
        "    channels: [fax]\n"
    )
    with pytest.raises(PolicyError) as caught:
        parse(text)
    assert [i.line for i in caught.value.issues] == [3, 4, 7]
    assert len(str(caught.value).splitlines()) == 3


def test_a_channel_this_service_cannot_deliver_through_is_refused() -> None:
    text = "default:\n  channels: [log, webhook]\n"
    assert parse(text).default.channels == ("log", "webhook")
    with pytest.raises(PolicyError, match=r"line 2: default\.channels: channel 'webhook' is not"):
        parse(text, channels=frozenset({"log"}))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90s", timedelta(seconds=90)), ("1h30m", timedelta(minutes=90)), ("2d", timedelta(days=2))],
)
def test_durations(text: str, expected: timedelta) -> None:
    policy = parse(f"default:\n  escalation:\n    repeat_every: {text}\n")
    assert policy.default.escalation.repeat_every == expected
    assert parse(f"default:\n  escalation:\n    repeat_every: {format_duration(expected)}\n") == (
        policy
    )


def test_docstring_examples() -> None:
    assert doctest.testmod(alerts.policy).failed == 0


# --- per-patient overrides ---------------------------------------------------------------------


def _pause(hours: float, reason: str = "in hospital for a procedure") -> Pause:
    return Pause(reason, NOW, NOW + timedelta(hours=hours))


@pytest.mark.parametrize(
    ("overrides", "set_by", "reason", "expected"),
    [
        pytest.param(Overrides(spo2_scale=2), "", "COPD, target 88-92", "set_by", id="no-name"),
        pytest.param(Overrides(spo2_scale=2), "Dr A", " ", "reason", id="no-reason"),
        pytest.param(Overrides(spo2_scale=3), "Dr A", "x", "spo2_scale", id="bad-scale"),
        pytest.param(
            Overrides(spo2_target_pct=(92, 88)), "Dr A", "x", "spo2_target_pct", id="target-upside"
        ),
        pytest.param(
            Overrides(spo2_target_pct=(60, 70)), "Dr A", "x", "spo2_target_pct", id="target-low"
        ),
        pytest.param(Overrides(pause=_pause(-1)), "Dr A", "x", "in the future", id="pause-past"),
        pytest.param(
            Overrides(pause=_pause(24 * 8)), "Dr A", "x", "at most 7 days", id="pause-too-long"
        ),
        pytest.param(
            Overrides(pause=_pause(2, reason="")), "Dr A", "x", "pause.reason", id="pause-no-why"
        ),
    ],
)
def test_a_bad_override_is_refused(
    overrides: Overrides, set_by: str, reason: str, expected: str
) -> None:
    with pytest.raises(OverrideError, match=expected):
        check_overrides(overrides, set_by=set_by, reason=reason, now=NOW, previous=Overrides())


def test_a_good_override_passes_and_a_kept_pause_is_not_rechecked() -> None:
    good = Overrides(spo2_scale=2, spo2_target_pct=(88, 92), pause=_pause(MAX_PAUSE.days * 24))
    check_overrides(good, set_by="Dr A", reason="hypercapnic, BTS target", now=NOW, previous=good)
    # Changing the target later keeps the same pause, though less than 7 days now remain.
    later = NOW + timedelta(days=1)
    check_overrides(good, set_by="Dr B", reason="review", now=later, previous=good)


def test_a_pause_covers_its_window_and_ends_by_itself() -> None:
    o = Overrides(pause=_pause(2))
    assert not o.paused_at(NOW - timedelta(seconds=1))
    assert o.paused_at(NOW)
    assert o.paused_at(NOW + timedelta(hours=1, minutes=59))
    assert not o.paused_at(NOW + timedelta(hours=2))
    assert not Overrides().paused_at(NOW)
