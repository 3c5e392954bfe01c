"""Alert channels, rules and silences as people write them: validated the same
way whether they come through the API or the rules file (YAML).

The rules file (`ATALAIA_ALERT_RULES_FILE`) holds `channels:` and `rules:`
lists; the alerter reads it at start and makes the file's channels and rules
exactly those (the ones made through the API stay, and a name is owned by
where it was made). A `${NAME}` in a channel's target in the file is
replaced by the environment variable NAME, so a webhook's secret URL need not
be in the file (a target sent through the API is taken as it is).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from atalaia.core.alerting import AlertRule, Silence
from atalaia.core.incidents import KINDS, Kind, Severity
from atalaia.core.notifications import Channel, ChannelType, Event
from atalaia.errors import InvalidInput

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"  # no control character
Prefix = Annotated[str, Field(min_length=1, max_length=128, pattern=_PRINTABLE)]
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChannelSpec(_Spec):
    """A channel: `webhook` / `slack` (target: an http(s) URL), `email`
    (target: comma-separated addresses) or `apprise` (target: an Apprise URL)."""

    name: Name
    type: ChannelType
    target: Annotated[str, Field(min_length=1, max_length=2000, pattern=_PRINTABLE)]
    rate_per_min: Annotated[int, Field(ge=1, le=10_000)] = Field(
        60, description="At most this many notifications a minute; more wait"
    )

    @model_validator(mode="after")
    def _target_fits_type(self) -> ChannelSpec:
        target = self.target
        if self.type in ("webhook", "slack") and not re.match(r"^https?://", target):
            raise ValueError(f"a {self.type} channel's target is an http(s) URL")
        if self.type == "email" and not all(
            re.fullmatch(r"[^@\s,]+@[^@\s,]+", a.strip()) for a in target.split(",")
        ):
            raise ValueError("an email channel's target is addresses, comma-separated")
        if self.type == "apprise" and "://" not in target:
            raise ValueError("an apprise channel's target is an Apprise URL")
        return self

    def channel(self) -> Channel:
        return Channel(self.name, self.type, self.target)


class RuleSpec(_Spec):
    """A rule: which incidents (every condition given must hold) and which
    lifecycle events go to which channels."""

    name: Name
    channels: Annotated[list[Name], Field(min_length=1, max_length=20)]
    min_severity: Severity = "minor"
    kinds: list[Kind] = Field(
        default_factory=lambda: list(KINDS),
        description="Incident kinds it routes; [] for a rule of events only",
    )
    min_duration_s: Annotated[float, Field(ge=0, le=30 * 86_400)] = 0.0
    min_anomalies: Annotated[int, Field(ge=1, le=256)] = 1
    window_s: Annotated[float, Field(ge=0, le=30 * 86_400)] = Field(
        0.0, description="min_anomalies within this many seconds; 0: in all"
    )
    series_prefix: Prefix | None = None
    sensor_group: Prefix | None = None
    events: list[Event] = Field(default_factory=list)
    escalate_after_min: Annotated[float, Field(gt=0, le=7 * 1440)] | None = None
    escalate_to: Annotated[list[Name], Field(max_length=20)] = Field(
        default_factory=list
    )
    notify_resolved: bool = True
    enabled: bool = True

    @model_validator(mode="after")
    def _routes_something(self) -> RuleSpec:
        if not self.kinds and not self.events:
            raise ValueError("a rule routes incident kinds, events, or both")
        if (self.escalate_after_min is None) != (not self.escalate_to):
            raise ValueError("escalate_after_min and escalate_to go together")
        return self

    def rule(self) -> AlertRule:
        return AlertRule(
            self.name, tuple(self.channels), self.min_severity, tuple(self.kinds),
            self.min_duration_s, self.min_anomalies, self.window_s,
            self.series_prefix, self.sensor_group, tuple(self.events),
            self.escalate_after_min, tuple(self.escalate_to), self.notify_resolved,
            self.enabled,
        )  # fmt: skip


class SilenceMatchers(_Spec):
    """What a silence holds back: every matcher given must hold."""

    series_prefix: Prefix | None = None
    sensor_id: Prefix | None = None
    sensor_group: Prefix | None = None
    kinds: list[Kind] = Field(default_factory=list)
    max_severity: Severity | None = None
    rule: Name | None = None
    events: list[Event] = Field(default_factory=list)


def silence_of(
    silence_id: int, starts_at: float, ends_at: float, author: str, reason: str,
    matchers: Mapping[str, Any],
) -> Silence:  # fmt: skip
    m = SilenceMatchers.model_validate(matchers)
    return Silence(
        silence_id, starts_at, ends_at, author, reason, m.series_prefix,
        m.sensor_id, m.sensor_group, tuple(m.kinds), m.max_severity, m.rule,
        tuple(m.events),
    )  # fmt: skip


class RulesFile(_Spec):
    channels: list[ChannelSpec] = Field(default_factory=list)
    rules: list[RuleSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names_known_and_distinct(self) -> RulesFile:
        check_names(self.channels, self.rules)
        return self


def check_names(channels: list[ChannelSpec], rules: list[RuleSpec]) -> None:
    """Names are distinct and every channel a rule names exists; ValueError."""
    for what, names in (("channel", [c.name for c in channels]),
                        ("rule", [r.name for r in rules])):  # fmt: skip
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"{what} names must differ: {', '.join(twice)}")
    known = {c.name for c in channels}
    for rule in rules:
        unknown = sorted(set(rule.channels + rule.escalate_to) - known)
        if unknown:
            raise ValueError(
                f"rule {rule.name!r} names no channel {', '.join(unknown)}"
            )


def read_rules_file(path: Path) -> RulesFile:
    """The rules file at `path`; InvalidInput (`alert_rules_file`) naming what
    is wrong with it."""
    try:
        document = yaml.safe_load(path.read_text()) or {}
        if isinstance(document, dict):
            for channel in document.get("channels") or ():
                if isinstance(channel, dict) and isinstance(channel.get("target"), str):
                    channel["target"] = _expand(channel["target"])
        return RulesFile.model_validate(document)
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidInput(f"{path}: {exc}", rule="alert_rules_file") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidInput(f"{path}: {problems}", rule="alert_rules_file") from exc


def _expand(target: str) -> str:
    """`target` with each `${NAME}` replaced by the environment's NAME."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise InvalidInput(
                f"a channel's target needs ${{{name}}}, which is not set",
                rule="alert_rules_file",
            )
        return os.environ[name]

    return _ENV.sub(value, target)
