"""Alert rules and silences: which incidents and platform events are told to
whom, and when.

A rule routes the incidents it matches (severity at least, kinds, duration at
least, anomalies within a window at least, a series prefix or a sensor group)
and the lifecycle events it names (`model.drift`, `training.failed`…) to its
channels. Per incident and rule there is one notification when the incident
first matches (`incident.opened`), one more each time its severity rises
(`incident.escalated`), one when it has stayed open — not acknowledged —
`escalate_after_min` minutes (to the rule's `escalate_to` channels), and one
when it is resolved. A silence (time-boxed, by matcher, with an author and a
reason) holds back what it covers while it lasts; an incident still matching
when it ends is told then.

Every notification of an incident carries a key made of the incident, what
happened, the rule and the channel: made twice, it is the same notification.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from atalaia.core.incidents import (
    KINDS,
    SEVERITIES,
    Incident,
    Kind,
    Severity,
    sensor_group,
    severity_rank,
)
from atalaia.core.notifications import Event, Notification

BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 300.0


@dataclass(frozen=True, slots=True)
class AlertRule:
    """A routing rule (see the module)."""

    name: str
    channels: tuple[str, ...]
    min_severity: Severity = "minor"
    kinds: tuple[Kind, ...] = KINDS
    min_duration_s: float = 0.0
    min_anomalies: int = 1
    window_s: float = 0.0  # 0: over the whole incident
    series_prefix: str | None = None
    sensor_group: str | None = None
    events: tuple[Event, ...] = ()  # lifecycle events it routes
    escalate_after_min: float | None = None
    escalate_to: tuple[str, ...] = ()
    notify_resolved: bool = True
    enabled: bool = True

    @property
    def routes_incidents(self) -> bool:
        return bool(self.kinds)

    @property
    def prefixes(self) -> tuple[str, ...]:
        """Prefixes every series it routes begins with (none: any series; its
        `sensor_group` holds for incidents only, not for events)."""
        return (self.series_prefix,) if self.series_prefix else ()

    def matches(self, incident: Incident) -> bool:
        """Does `incident`, as it is now, meet every condition?"""
        if not (self.enabled and incident.kind in self.kinds):
            return False
        if severity_rank(incident.severity) < severity_rank(self.min_severity):
            return False
        if incident.last_at - incident.started_at < self.min_duration_s:
            return False
        count = (
            incident.anomalies_within(self.window_s)
            if self.window_s
            else incident.count
        )
        if count < self.min_anomalies:
            return False
        return _where(incident, self.series_prefix, self.sensor_group)

    def routes(self, event: Event, series_id: str | None) -> bool:
        """Does it route lifecycle `event` (of `series_id`, if any)?"""
        if not (self.enabled and event in self.events):
            return False
        if self.series_prefix and not (series_id or "").startswith(self.series_prefix):
            return False
        return True


def _where(incident: Incident, prefix: str | None, group: str | None) -> bool:
    if prefix and not any(s.startswith(prefix) for s in incident.series):
        return False
    return not group or incident.group == group


@dataclass(frozen=True, slots=True)
class Silence:
    """Holds back the notifications it covers from `starts_at` to `ends_at`.
    Every matcher given must hold; none given covers everything."""

    id: int | None
    starts_at: float
    ends_at: float
    author: str
    reason: str
    series_prefix: str | None = None
    sensor_id: str | None = None
    sensor_group: str | None = None
    kinds: tuple[Kind, ...] = ()
    max_severity: Severity | None = None
    rule: str | None = None
    events: tuple[Event, ...] = ()

    def active(self, at: float) -> bool:
        return self.starts_at <= at < self.ends_at

    @property
    def prefixes(self) -> tuple[str, ...]:
        """Prefixes every series it holds back begins with (none: any series):
        its series prefix, sensor and sensor group, those given."""
        given = (self.series_prefix, self.sensor_id, self.sensor_group)
        return tuple(p for p in given if p)

    def covers(self, incident: Incident, rule: str, at: float) -> bool:
        """Does it hold back `incident`'s notifications by `rule` at `at`?"""
        if not self.active(at) or self.events:
            return False
        if self.rule and self.rule != rule:
            return False
        if self.sensor_id and incident.sensor_id != self.sensor_id:
            return False
        if self.kinds and incident.kind not in self.kinds:
            return False
        if self.max_severity and severity_rank(incident.severity) > severity_rank(
            self.max_severity
        ):
            return False
        return _where(incident, self.series_prefix, self.sensor_group)

    def covers_event(
        self, event: Event, series_id: str | None, rule: str, at: float
    ) -> bool:
        """Does it hold back lifecycle `event` (of `series_id`) by `rule`?"""
        if not self.active(at) or (self.kinds or self.max_severity):
            return False
        if self.rule and self.rule != rule:
            return False
        if self.events and event not in self.events:
            return False
        sid = series_id or ""
        if self.series_prefix and not sid.startswith(self.series_prefix):
            return False
        if self.sensor_id and not sid.startswith(self.sensor_id):
            return False
        return not self.sensor_group or sensor_group(sid) == self.sensor_group


@dataclass(frozen=True, slots=True)
class Planned:
    """A notification to make: for `incident` (None: a lifecycle event) by
    `rule` to `channel`."""

    rule: str
    channel: str
    notification: Notification
    incident: Incident | None = None


def silenced(
    silences: Iterable[Silence], incident: Incident, rule: str, at: float
) -> bool:
    return any(s.covers(incident, rule, at) for s in silences)


def plan_incident(
    incident: Incident,
    action: str,
    rules: Sequence[AlertRule],
    told: set[str],
    silences: Sequence[Silence],
    at: float,
) -> list[Planned]:
    """The notifications an incident's change (`action`: opened, grew,
    escalated or resolved) makes; `told` holds the names of the rules it was
    already told by (updated in place)."""
    planned: list[Planned] = []
    for rule in rules:
        if not rule.enabled:
            continue
        if rule.name in told:
            if action == "escalated":
                event: Event = "incident.escalated"
                tag = f"escalated.{incident.severity}"
            elif action == "resolved" and rule.notify_resolved:
                event, tag = "incident.resolved", "resolved"
            else:
                continue
        elif action != "resolved" and rule.matches(incident):
            if silenced(silences, incident, rule.name, at):
                continue
            told.add(rule.name)
            event, tag = "incident.opened", "opened"
        else:
            continue
        planned += [
            Planned(
                rule.name,
                c,
                incident_notification(incident, event, tag, rule.name, c, at),
                incident,
            )
            for c in rule.channels
        ]
    return planned


def escalation_due(
    incident: Incident, rule: AlertRule, told_at: float, at: float
) -> bool:
    """Has `incident` stayed open (not acknowledged) past the rule's
    `escalate_after_min` since it was told by it?"""
    if rule.escalate_after_min is None or not rule.escalate_to:
        return False
    return incident.state == "open" and at - told_at >= 60.0 * rule.escalate_after_min


def plan_escalation(incident: Incident, rule: AlertRule, at: float) -> list[Planned]:
    """The notifications of an escalation for not being acknowledged."""
    tag = "escalated.unacknowledged"
    return [
        Planned(
            rule.name,
            c,
            incident_notification(
                incident, "incident.escalated", tag, rule.name, c, at
            ),
            incident,
        )
        for c in rule.escalate_to
    ]


def plan_event(
    event: Event,
    key: str,
    title: str,
    text: str,
    document: dict[str, object],
    series_id: str | None,
    rules: Sequence[AlertRule],
    silences: Sequence[Silence],
    at: float,
) -> list[Planned]:
    """The notifications of lifecycle event `key` (unique per event)."""
    severity = "major" if event in ("training.failed", "model.rolled_back") else "info"
    if event == "platform.alert":
        severity = str(document.get("severity", "major"))
    planned = []
    for rule in rules:
        if not rule.routes(event, series_id):
            continue
        if any(s.covers_event(event, series_id, rule.name, at) for s in silences):
            continue
        for channel in rule.channels:
            notification = Notification(
                f"{key}.{rule.name}.{channel}", event, severity, title, text, at,
                document,
            )  # fmt: skip
            planned.append(Planned(rule.name, channel, notification))
    return planned


def incident_notification(
    incident: Incident, event: Event, tag: str, rule: str, channel: str, at: float
) -> Notification:
    """What is told of `incident` when `event` happens (`tag`: which time)."""
    what = {
        "incident.opened": "opened",
        "incident.escalated": "escalated",
        "incident.resolved": "resolved",
    }[event]
    kind = "data quality" if incident.kind == "data_quality" else "anomaly"
    title = f"{incident.severity} {kind} on {incident.sensor_id} {what}"
    peak = incident.peak
    series = ", ".join(incident.series)
    peak_at = _iso(float(str(peak.get("timestamp", 0))))
    model = f"{peak.get('algorithm')} v{peak.get('version')}"
    lines = [
        f"Incident {incident.id} on {incident.sensor_id} ({series}) is "
        f"{incident.state}: {incident.count} anomalous readings since "
        f"{_iso(incident.started_at)}, the last at {_iso(incident.last_at)}.",
        f"Peak: {peak.get('series_id')} read {peak.get('value')} at {peak_at}, "
        f"expected {peak.get('expected')} within [{peak.get('lower')}, "
        f"{peak.get('upper')}] ({peak.get('reason')}, score "
        f"{incident.peak_score:.2f}, {model}).",
    ]
    if tag == "escalated.unacknowledged":
        lines.append("Not acknowledged in time: escalated.")
    if incident.resolved_by:
        lines.append(f"Resolved by {incident.resolved_by}.")
    document: dict[str, object] = {
        "incident": incident_document(incident),
        "rule": rule,
        "tag": tag,
    }
    return Notification(
        f"incident-{incident.id}.{tag}.{rule}.{channel}", event, incident.severity,
        title, "\n".join(lines), at, document,
    )  # fmt: skip


def incident_document(incident: Incident) -> dict[str, object]:
    """An incident as JSON-ready values."""
    return {
        "id": incident.id,
        "sensor_id": incident.sensor_id,
        "kind": incident.kind,
        "state": incident.state,
        "severity": incident.severity,
        "started_at": incident.started_at,
        "last_at": incident.last_at,
        "count": incident.count,
        "series": list(incident.series),
        "peak_score": incident.peak_score,
        "peak": dict(incident.peak),
        "assignee": incident.assignee,
        "resolved_at": incident.resolved_at,
        "resolved_by": incident.resolved_by,
    }


def backoff_s(attempts: int) -> float:
    """How long to wait after `attempts` failed deliveries (1 s doubling, at
    most 5 min)."""
    return min(BACKOFF_BASE_S * 2.0 ** max(attempts - 1, 0), BACKOFF_CAP_S)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


assert SEVERITIES[0] == "minor"  # AlertRule's default is the lowest
