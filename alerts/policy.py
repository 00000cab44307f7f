"""Alerting policy as data: escalation, channels and rule settings per ward, and patient overrides.

The policy is a YAML text a ward edits; ``parse`` turns it into frozen values or refuses it with
a ``PolicyError`` that names the line of every mistake at once, so a nurse in charge fixing a file
at 3 a.m. sees all of them in one go. Pure: no files, no clock, no database; the callers (the
CLI, the API, the service) read the text and decide what a refusal means (the running policy
stays).

YAML is composed, not loaded: ``yaml.compose`` keeps each node's line, which ``yaml.safe_load``
throws away, and keeps duplicate keys, which ``safe_load`` silently merges (the last one wins).

    >>> p = parse("wards:\\n  ward-a:\\n    escalation:\\n      ack_within: {emergency: 3m}\\n")
    >>> p.for_ward("ward-a").escalation.ack_within[Severity.EMERGENCY]
    datetime.timedelta(seconds=180)
    >>> p.for_ward("ward-b").escalation.ack_within[Severity.EMERGENCY]
    datetime.timedelta(seconds=300)
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

import yaml

from alerts.escalation import EscalationPolicy
from alerts.lifecycle import DEFAULT_HOLD_DOWN
from alerts.model import Rule, Severity
from alerts.rules import (
    BATTERY_CRITICAL_PCT,
    BATTERY_LOW_PCT,
    CLOCK_SKEW_TOLERANCE_S,
    NOT_WORN_AFTER,
)

#: Channel names a policy may use. Which of them a running service can deliver through is its
#: configuration (``parse(..., channels=...)``): the webhook needs WARDWATCH_WEBHOOK_URL, email
#: and mqtt are named so that policies can be written before their notifiers exist.
KNOWN_CHANNELS: frozenset[str] = frozenset({"log", "webhook", "email", "mqtt"})

#: The only policy format so far; the key lets a later format be told apart, not guessed.
FORMAT_VERSION = 1

# Alerts that concern the patient (a clinician answers) rather than the device (the device team).
CLINICAL_RULES = frozenset({Rule.NEWS2, Rule.RISK})

_SEVERITIES = {s.label: s for s in Severity}


class PolicyError(ValueError):
    """The policy text is not a valid policy; ``issues`` holds every mistake with its line."""

    def __init__(self, issues: tuple[Issue, ...], source: str) -> None:
        self.issues = issues
        self.source = source
        super().__init__("\n".join(i.render(source) for i in issues))


@dataclass(frozen=True, slots=True)
class Issue:
    """One mistake: the 1-based line, the dotted key path, and what is wrong there."""

    line: int
    path: str
    message: str

    def render(self, source: str) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{source} line {self.line}: {where}{self.message}"


@dataclass(frozen=True, slots=True)
class RuleSettings:
    """How one rule behaves on a ward.

    ``for_`` is how long a condition must persist before it fires (Alertmanager's ``for``);
    ``hold_down`` how long it must stay clear before its alert resolves (alerts.lifecycle).
    """

    enabled: bool = True
    for_: timedelta = timedelta(0)
    hold_down: timedelta = timedelta(0)


def _default_rules() -> Mapping[Rule, RuleSettings]:
    # Clinical alerts keep the lifecycle's hold-down (a value at a band edge makes one alert);
    # a device problem is cured by the device working again, so technical alerts resolve at once.
    return MappingProxyType(
        {
            r: RuleSettings(hold_down=DEFAULT_HOLD_DOWN if r in CLINICAL_RULES else timedelta(0))
            for r in Rule
        }
    )


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The technical rules' tunable limits.

    NEWS2's bands are deliberately absent: they are the RCP's (NEWS2 2017, Chart 1 and the
    clinical response chart), validated nationally, and what every NHS clinician reads a score
    against; a ward that "tunes" them silently makes its NEWS2 mean something else. A patient
    with prescribed hypercapnic targets gets SpO2 Scale 2 through an override instead.
    """

    no_data_silent_after: timedelta = timedelta(minutes=15)  # docs/alerts.md
    # The device-health rules' defaults, with their reasons beside them in alerts.rules.
    battery_low_pct: float = BATTERY_LOW_PCT
    battery_critical_pct: float = BATTERY_CRITICAL_PCT
    clock_skew_tolerance: timedelta = timedelta(seconds=CLOCK_SKEW_TOLERANCE_S)
    not_worn_after: timedelta = NOT_WORN_AFTER
    message_gap_window: timedelta = timedelta(hours=1)  # a gap keeps its alert open this long
    message_gap_grace: timedelta = timedelta(minutes=2)  # time for reordered messages to arrive
    stall_after: timedelta = timedelta(minutes=2)  # no batch committed for this long


@dataclass(frozen=True, slots=True)
class WardPolicy:
    """Everything a ward decides about its alerts."""

    escalation: EscalationPolicy = field(default_factory=EscalationPolicy)
    channels: tuple[str, ...] = ("log",)
    rules: Mapping[Rule, RuleSettings] = field(default_factory=_default_rules)
    thresholds: Thresholds = field(default_factory=Thresholds)

    def rule(self, rule: Rule) -> RuleSettings:
        return self.rules[rule]


@dataclass(frozen=True, slots=True)
class Policy:
    """The default ward policy and the wards that differ from it."""

    default: WardPolicy = field(default_factory=WardPolicy)
    wards: Mapping[str, WardPolicy] = field(default_factory=lambda: MappingProxyType({}))

    def for_ward(self, ward: str) -> WardPolicy:
        return self.wards.get(ward, self.default)


DEFAULT_POLICY = Policy()

# --- parsing ----------------------------------------------------------------------------------

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_DURATION_HINT = "expected a duration such as '5m', '90s' or '1h'"
_NEWS2_FIXED = (
    "NEWS2 thresholds are the RCP's (NEWS2 2017) and cannot be changed by a policy;"
    " for prescribed hypercapnic targets set the patient's SpO2 Scale 2 instead"
)
_RULE_COMMON = ("enabled", "for", "hold_down")
_TOP_KEYS = ("version", "default", "wards")
_WARD_KEYS = ("escalation", "channels", "rules")
_ESCALATION_KEYS = (
    "clinical_tiers",
    "technical_tiers",
    "ack_within",
    "repeat_every",
    "max_repeats",
)

Kind = Callable[["_Parser", yaml.Node, str], Any]


class _Parser:
    """Walks composed YAML nodes, collecting issues instead of stopping at the first."""

    def __init__(self, channels: frozenset[str]) -> None:
        self.issues: list[Issue] = []
        self.channels = channels
        self._construct = yaml.constructor.SafeConstructor()

    def fail(self, node: yaml.Node, path: str, message: str) -> None:
        self.issues.append(Issue(node.start_mark.line + 1, path, message))

    def value(self, node: yaml.Node) -> object:
        return self._construct.construct_object(node, deep=True)

    def mapping(
        self, node: yaml.Node, path: str, allowed: tuple[str, ...], what: str = "key"
    ) -> dict[str, yaml.Node] | None:
        """The mapping's keys to value nodes; unknown and repeated keys are issues."""
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, path, f"expected a mapping of {', '.join(allowed) or 'names'}")
            return None
        out: dict[str, yaml.Node] = {}
        lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = self.value(key_node)
            here = _join(path, str(key))
            if not isinstance(key, str):
                self.fail(key_node, here, f"expected a name as key, got {key!r}")
            elif allowed and key not in allowed:
                self.fail(
                    key_node, here, f"unknown {what} {key!r}; expected one of " + ", ".join(allowed)
                )
            elif key in out:
                self.fail(key_node, here, f"{key!r} is given twice (first on line {lines[key]})")
            else:
                out[key] = value_node
                lines[key] = key_node.start_mark.line + 1
        return out

    def duration(self, node: yaml.Node, path: str, *, positive: bool = False) -> timedelta | None:
        raw = self.value(node)
        text = raw.strip() if isinstance(raw, str) else None
        if text is not None and text.startswith("-") and _DURATION.fullmatch(text[1:]):
            self.fail(node, path, f"must not be negative, got {raw!r}")
            return None
        match = _DURATION.fullmatch(text) if text else None
        if match is None or not any(match.groups()):
            self.fail(node, path, f"{_DURATION_HINT}, got {raw!r}")
            return None
        d, h, m, s = (int(g or 0) for g in match.groups())
        value = timedelta(days=d, hours=h, minutes=m, seconds=s)
        if positive and not value:
            self.fail(node, path, f"must be more than zero, got {raw!r}")
            return None
        return value

    def positive_duration(self, node: yaml.Node, path: str) -> timedelta | None:
        return self.duration(node, path, positive=True)

    def count(self, node: yaml.Node, path: str) -> int | None:
        raw = self.value(node)
        if isinstance(raw, bool) or not isinstance(raw, int):
            self.fail(node, path, f"expected a whole number, got {raw!r}")
            return None
        if raw < 0:
            self.fail(node, path, f"must not be negative, got {raw}")
            return None
        return raw

    def percent(self, node: yaml.Node, path: str) -> float | None:
        raw = self.value(node)
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            self.fail(node, path, f"expected a percentage (0-100), got {raw!r}")
            return None
        if not 0 <= raw <= 100:
            self.fail(node, path, f"must be between 0 and 100, got {raw}")
            return None
        return float(raw)

    def flag(self, node: yaml.Node, path: str) -> bool | None:
        raw = self.value(node)
        if not isinstance(raw, bool):
            self.fail(node, path, f"expected true or false, got {raw!r}")
            return None
        return raw

    def names(self, node: yaml.Node, path: str, what: str) -> tuple[str, ...] | None:
        """A non-empty list of distinct, non-blank names."""
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            self.fail(node, path, f"expected a non-empty list of {what}, got {self.value(node)!r}")
            return None
        out: list[str] = []
        ok = True
        for i, item in enumerate(node.value):
            raw = self.value(item)
            if not isinstance(raw, str) or not raw.strip():
                self.fail(item, f"{path}[{i}]", f"expected a name, got {raw!r}")
                ok = False
            elif raw.strip() in out:
                self.fail(item, f"{path}[{i}]", f"{raw!r} is listed twice")
                ok = False
            else:
                out.append(raw.strip())
        return tuple(out) if ok else None

    # --- sections ---

    def ward(self, node: yaml.Node, path: str, base: WardPolicy) -> WardPolicy:
        """``base`` with what this section sets; a key left out keeps the base's value."""
        keys = self.mapping(node, path, _WARD_KEYS)
        if keys is None:
            return base
        policy = base
        if "escalation" in keys:
            escalation = self.escalation(keys["escalation"], _join(path, "escalation"), base)
            policy = dataclasses.replace(policy, escalation=escalation)
        if "channels" in keys:
            channels = self.channel_list(keys["channels"], _join(path, "channels"))
            if channels is not None:
                policy = dataclasses.replace(policy, channels=channels)
        if "rules" in keys:
            rules, thresholds = self.rules(keys["rules"], _join(path, "rules"), base)
            policy = dataclasses.replace(policy, rules=rules, thresholds=thresholds)
        return policy

    def channel_list(self, node: yaml.Node, path: str) -> tuple[str, ...] | None:
        names = self.names(node, path, "channels")
        if names is None:
            return None
        ok = True
        for item, name in zip(node.value, names, strict=True):
            if name not in KNOWN_CHANNELS:
                self.fail(
                    item,
                    path,
                    f"unknown channel {name!r}; known: " + ", ".join(sorted(KNOWN_CHANNELS)),
                )
                ok = False
            elif name not in self.channels:
                self.fail(
                    item,
                    path,
                    f"channel {name!r} is not configured on this service"
                    f" (configured: {', '.join(sorted(self.channels))})",
                )
                ok = False
        return names if ok else None

    def escalation(self, node: yaml.Node, path: str, base: WardPolicy) -> EscalationPolicy:
        keys = self.mapping(node, path, _ESCALATION_KEYS)
        esc = base.escalation
        if keys is None:
            return esc
        changes: dict[str, Any] = {}
        for name in ("clinical_tiers", "technical_tiers"):
            if name in keys:
                tiers = self.names(keys[name], _join(path, name), "recipients")
                if tiers is not None:
                    changes[name] = tiers
        if "ack_within" in keys:
            ack = self.ack_within(keys["ack_within"], _join(path, "ack_within"), esc)
            changes["ack_within"] = ack
        if "repeat_every" in keys:
            every = self.positive_duration(keys["repeat_every"], _join(path, "repeat_every"))
            if every is not None:
                changes["repeat_every"] = every
        if "max_repeats" in keys:
            repeats = self.count(keys["max_repeats"], _join(path, "max_repeats"))
            if repeats is not None:
                changes["max_repeats"] = repeats
        return dataclasses.replace(esc, **changes)

    def ack_within(
        self, node: yaml.Node, path: str, base: EscalationPolicy
    ) -> Mapping[Severity, timedelta]:
        keys = self.mapping(node, path, tuple(_SEVERITIES), "severity")
        ack = dict(base.ack_within)
        for label, value in (keys or {}).items():
            # Zero would page every tier at once: that is a broadcast, not an escalation.
            wait = self.positive_duration(value, _join(path, label))
            if wait is not None:
                ack[_SEVERITIES[label]] = wait
        return MappingProxyType(ack)

    def rules(
        self, node: yaml.Node, path: str, base: WardPolicy
    ) -> tuple[Mapping[Rule, RuleSettings], Thresholds]:
        keys = self.mapping(node, path, tuple(r.value for r in Rule), "rule")
        rules = dict(base.rules)
        thresholds = base.thresholds
        for name, value in (keys or {}).items():
            rule = Rule(name)
            here = _join(path, name)
            allowed = _RULE_COMMON + tuple(_THRESHOLDS.get(rule, {}))
            settings = self.mapping(value, here, ())
            if settings is None:
                continue
            changes: dict[str, Any] = {}
            limits: dict[str, Any] = {}
            for key, item in settings.items():
                at = _join(here, key)
                if key not in allowed:
                    message = (
                        _NEWS2_FIXED
                        if rule is Rule.NEWS2
                        else f"unknown key {key!r}; expected one of {', '.join(allowed)}"
                    )
                    self.fail(_key_node(value, key), at, message)
                elif key == "enabled":
                    enabled = self.flag(item, at)
                    # NEWS2 is the clinical safety net: a patient who must not be alerted on is
                    # paused (with a reason and an end), never a whole ward switched off.
                    if enabled is False and rule is Rule.NEWS2:
                        self.fail(item, at, "news2 cannot be disabled; pause a patient instead")
                    elif enabled is not None:
                        changes["enabled"] = enabled
                elif key in ("for", "hold_down"):
                    d = self.duration(item, at)
                    if d is not None:
                        changes["for_" if key == "for" else key] = d
                else:
                    attr, kind = _THRESHOLDS[rule][key]
                    parsed = kind(self, item, at)
                    if parsed is not None:
                        limits[attr] = parsed
            rules[rule] = dataclasses.replace(rules[rule], **changes)
            thresholds = dataclasses.replace(thresholds, **limits)
            if (
                rule is Rule.BATTERY
                and thresholds.battery_critical_pct >= thresholds.battery_low_pct
            ):
                self.fail(
                    value,
                    here,
                    f"critical_pct ({thresholds.battery_critical_pct:g}) must be"
                    f" below low_pct ({thresholds.battery_low_pct:g})",
                )
        return MappingProxyType(rules), thresholds


#: Rule-specific settings: file key → (``Thresholds`` attribute, how to read it).
_THRESHOLDS: dict[Rule, dict[str, tuple[str, Kind]]] = {
    Rule.NO_DATA: {"silent_after": ("no_data_silent_after", _Parser.positive_duration)},
    Rule.BATTERY: {
        "low_pct": ("battery_low_pct", _Parser.percent),
        "critical_pct": ("battery_critical_pct", _Parser.percent),
    },
    Rule.CLOCK_SKEW: {"tolerance": ("clock_skew_tolerance", _Parser.positive_duration)},
    Rule.MESSAGE_GAP: {
        "window": ("message_gap_window", _Parser.positive_duration),
        "grace": ("message_gap_grace", _Parser.duration),
    },
    Rule.NOT_WORN: {"after": ("not_worn_after", _Parser.positive_duration)},
    Rule.STALL: {"after": ("stall_after", _Parser.positive_duration)},
}


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _key_node(mapping: yaml.Node, key: str) -> yaml.Node:
    return next(k for k, _ in mapping.value if k.value == key)


def parse(
    text: str, source: str = "policy.yaml", *, channels: frozenset[str] = KNOWN_CHANNELS
) -> Policy:
    """Read a policy; raise ``PolicyError`` naming the line of every mistake.

    ``source`` names the text in messages (a file name); ``channels`` are those the caller can
    deliver through: a policy naming another one is refused rather than silently not paging.
    An empty text is the built-in default policy.
    """
    p = _Parser(channels)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "not YAML"
        raise PolicyError((Issue(line, "", f"not valid YAML: {problem}"),), source) from None
    if root is None:
        return DEFAULT_POLICY
    keys = p.mapping(root, "", _TOP_KEYS) or {}
    if "version" in keys and p.value(keys["version"]) != FORMAT_VERSION:
        p.fail(
            keys["version"],
            "version",
            f"expected {FORMAT_VERSION}, got {p.value(keys['version'])!r}",
        )
    base = WardPolicy()
    default = p.ward(keys["default"], "default", base) if "default" in keys else base
    wards: dict[str, WardPolicy] = {}
    if "wards" in keys:
        for name, node in (p.mapping(keys["wards"], "wards", ()) or {}).items():
            if not name.strip():
                p.fail(node, "wards", "a ward needs a name")
                continue
            wards[name] = p.ward(node, _join("wards", name), default)
    if p.issues:
        raise PolicyError(tuple(sorted(p.issues, key=lambda i: i.line)), source)
    return Policy(default, MappingProxyType(wards))


# --- writing back -----------------------------------------------------------------------------


def format_duration(value: timedelta) -> str:
    """The policy file's spelling of a duration: ``90s`` → ``1m30s``; zero is ``0s``."""
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts) or "0s"


def ward_data(policy: WardPolicy) -> dict[str, Any]:
    """A ward policy as plain data in the file's layout, every setting spelt out."""
    esc = policy.escalation
    t = policy.thresholds
    limits: dict[Rule, dict[str, Any]] = {
        Rule.NO_DATA: {"silent_after": format_duration(t.no_data_silent_after)},
        Rule.BATTERY: {"low_pct": t.battery_low_pct, "critical_pct": t.battery_critical_pct},
        Rule.CLOCK_SKEW: {"tolerance": format_duration(t.clock_skew_tolerance)},
        Rule.MESSAGE_GAP: {
            "window": format_duration(t.message_gap_window),
            "grace": format_duration(t.message_gap_grace),
        },
        Rule.NOT_WORN: {"after": format_duration(t.not_worn_after)},
        Rule.STALL: {"after": format_duration(t.stall_after)},
    }
    return {
        "escalation": {
            "clinical_tiers": list(esc.clinical_tiers),
            "technical_tiers": list(esc.technical_tiers),
            "ack_within": {s.label: format_duration(esc.ack_within[s]) for s in Severity},
            "repeat_every": format_duration(esc.repeat_every),
            "max_repeats": esc.max_repeats,
        },
        "channels": list(policy.channels),
        "rules": {
            r.value: {
                "enabled": s.enabled,
                "for": format_duration(s.for_),
                "hold_down": format_duration(s.hold_down),
                **limits.get(r, {}),
            }
            for r, s in policy.rules.items()
        },
    }


def to_data(policy: Policy) -> dict[str, Any]:
    """The whole policy as plain data (JSON- and YAML-ready); ``parse(dump(p)) == p``."""
    return {
        "version": FORMAT_VERSION,
        "default": ward_data(policy.default),
        "wards": {name: ward_data(w) for name, w in sorted(policy.wards.items())},
    }


def dump(policy: Policy) -> str:
    """The policy as a complete YAML text, every setting spelt out."""
    return str(yaml.safe_dump(to_data(policy), sort_keys=False, allow_unicode=True))


# --- per-patient overrides --------------------------------------------------------------------

#: The longest monitoring pause: a pause someone forgot must still end within the week, when the
#: virtual ward's weekly review would notice a patient who has not been watched.
MAX_PAUSE = timedelta(days=7)
#: SpO2 targets outside this range are not a prescription wardwatch should act on (BTS 2017
#: oxygen guideline: the lowest target in use is 88-92 %, for hypercapnic failure).
SPO2_TARGET_RANGE_PCT = (80, 100)


class OverrideError(ValueError):
    """A patient override is refused; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class Pause:
    """Monitoring paused: no clinical alert is raised for readings in [since, until)."""

    reason: str
    since: datetime
    until: datetime

    def covers(self, at: datetime) -> bool:
        return self.since <= at < self.until


@dataclass(frozen=True, slots=True)
class Overrides:
    """What a clinician set for one patient; the defaults are "no override"."""

    spo2_scale: int = 1  # RCP NEWS2 2017: Scale 2 only for prescribed hypercapnic targets
    spo2_target_pct: tuple[int, int] | None = None  # e.g. (88, 92)
    pause: Pause | None = None

    def paused_at(self, at: datetime) -> bool:
        return self.pause is not None and self.pause.covers(at)


def check_overrides(
    overrides: Overrides, *, set_by: str, reason: str, now: datetime, previous: Overrides
) -> None:
    """Refuse an override a clinician could not have meant; raise ``OverrideError``.

    Every change needs a named clinician and a reason: they are the audit trail's who and why.
    A pause already in force may be kept as it is; a new or changed one must end in the future
    and within ``MAX_PAUSE``.
    """
    problems = []
    if not set_by.strip():
        problems.append("set_by: name the clinician who sets this")
    if not reason.strip():
        problems.append("reason: say why (it is kept in the patient's override history)")
    if overrides.spo2_scale not in (1, 2):
        problems.append(f"spo2_scale: expected 1 or 2, got {overrides.spo2_scale}")
    if overrides.spo2_target_pct is not None:
        low, high = overrides.spo2_target_pct
        lo, hi = SPO2_TARGET_RANGE_PCT
        if not lo <= low < high <= hi:
            problems.append(
                f"spo2_target_pct: expected low < high within {lo}-{hi} %, got {low}-{high}"
            )
    pause = overrides.pause
    if pause is not None and pause != previous.pause:
        if not pause.reason.strip():
            problems.append("pause.reason: say why monitoring is paused")
        if pause.until <= now:
            problems.append("pause.until: must be in the future")
        elif pause.until - max(pause.since, now) > MAX_PAUSE:
            problems.append(f"pause.until: a pause may last at most {MAX_PAUSE.days} days")
        if pause.since > pause.until:
            problems.append("pause.since: must be before pause.until")
    if problems:
        raise OverrideError("; ".join(problems))
