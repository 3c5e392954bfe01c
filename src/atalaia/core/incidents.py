"""Incidents: anomalies grouped into the events a person acts on.

A sensor's anomalies (`sensor_001_radial`, `sensor_001_axial`… are its axes;
a series without an axis is a sensor of its own) are one incident while each
follows the one before within `gap_s` seconds: a level shift scored on every
reading for an hour, or on two axes at once, is one incident, not hundreds.
Data-quality anomalies (a stuck sensor, a dropout, a silent one) make
incidents of their own kind, apart from the others; while a sensor has a live
data-quality incident, its other anomalies are held back (its readings cannot
be trusted: no alarm storm of them), counted in a `suppressed` line of the
data-quality incident's history.

An incident is `open`, then `acknowledged` by a person, then `resolved`: by a
person, or by itself when every series that was anomalous in it has read
`resolve_after` normal readings in a row (a `Recovery`), or when an anomaly
comes after more than `gap_s` of quiet (the old incident is resolved and a new
one opens). Its severity follows its peak score (how many band half-widths
the worst reading was off), so it can rise while the incident lasts (an
escalation) but never falls. Every change is a `Change`; all but an anomaly
that only grew the incident (it is in its count) are lines of its history.

The grouping is pure: `Grouper.apply` takes the live incidents of the sensors
concerned (loaded by the caller) and the signals, in the order they were
logged, and returns what changed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

from atalaia.core.series import sensor_of
from atalaia.errors import Conflict, InvalidInput

Kind = Literal["anomaly", "data_quality"]
KINDS: tuple[Kind, ...] = get_args(Kind)
State = Literal["open", "acknowledged", "resolved"]
Severity = Literal["minor", "major", "critical"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)  # lowest first
DATA_QUALITY_REASONS = frozenset({"stuck", "dropout", "silent"})
RECENT = 256  # the latest anomaly times an incident keeps (windowed rules)
_GROUP_SEPARATOR = re.compile(r"[_.:-]")


@dataclass(frozen=True, slots=True)
class IncidentPolicy:
    """How anomalies are grouped and graded."""

    gap_s: float = 600.0
    resolve_after: int = 10  # normal readings in a row
    major_score: float = 2.0
    critical_score: float = 4.0

    def severity(self, peak_score: float) -> Severity:
        if peak_score >= self.critical_score:
            return "critical"
        if peak_score >= self.major_score:
            return "major"
        return "minor"


@dataclass(frozen=True, slots=True)
class Anomaly:
    """An anomalous reading as the log keeps it."""

    series_id: str
    timestamp: float
    value: float
    score: float
    expected: float | None
    lower: float | None
    upper: float | None
    direction: str
    reason: str
    version: int
    algorithm: str

    @property
    def kind(self) -> Kind:
        return "data_quality" if self.reason in DATA_QUALITY_REASONS else "anomaly"

    def explanation(self) -> dict[str, object]:
        """What an incident shows of its peak."""
        return {
            "series_id": self.series_id,
            "timestamp": self.timestamp,
            "value": self.value,
            "score": self.score,
            "expected": self.expected,
            "lower": self.lower,
            "upper": self.upper,
            "direction": self.direction,
            "reason": self.reason,
            "version": self.version,
            "algorithm": self.algorithm,
        }


@dataclass(frozen=True, slots=True)
class Recovery:
    """A series read `resolve_after` normal readings in a row, the last at
    `timestamp`."""

    series_id: str
    timestamp: float


Signal = Anomaly | Recovery


@dataclass(slots=True)
class Incident:
    """One incident; `id` is None until stored. `active` holds the series
    still anomalous (not yet recovered), each with its last anomaly's time;
    `recent` the latest anomaly times."""

    id: int | None
    sensor_id: str
    kind: Kind
    state: State
    severity: Severity
    started_at: float
    last_at: float
    peak_score: float
    peak: dict[str, object]
    count: int
    series: list[str]
    active: dict[str, float]
    recent: list[float]
    assignee: str | None = None
    resolved_at: float | None = None
    resolved_by: str | None = None

    @property
    def live(self) -> bool:
        return self.state != "resolved"

    @property
    def group(self) -> str:
        return sensor_group(self.sensor_id)

    def anomalies_within(self, window_s: float) -> int:
        """How many of its latest anomalies (up to RECENT) fall within
        `window_s` seconds before its last one."""
        return sum(1 for t in self.recent if t >= self.last_at - window_s)


@dataclass(frozen=True, slots=True)
class Change:
    """A line of an incident's history: `action` is opened, grew, escalated,
    suppressed, acknowledged, assigned, commented or resolved; `actor` a
    person's name or "atalaia"."""

    incident: Incident
    action: str
    actor: str
    detail: str
    at: float


SYSTEM = "atalaia"


def sensor_group(sensor_id: str) -> str:
    """The group a sensor belongs to until an asset hierarchy names one: its id
    up to its last `_`, `.`, `:` or `-` (`sensor_001` → `sensor`, `press.l2.m07`
    → `press.l2`), or the whole id."""
    parts = _GROUP_SEPARATOR.split(sensor_id)
    if len(parts) < 2:
        return sensor_id
    return sensor_id[: len(sensor_id) - len(parts[-1]) - 1]


@dataclass(slots=True)
class Grouper:
    """Applies signals to the live incidents of their sensors (see the module).
    `live` maps (sensor, kind) to its live incident, for every sensor the
    signals name that has one; `apply` keeps it up to date."""

    policy: IncidentPolicy
    live: dict[tuple[str, Kind], Incident]
    changes: list[Change] = field(default_factory=list)
    suppressed: int = 0  # anomalies held back by a data-quality incident
    _held: dict[int, Held] = field(default_factory=dict)

    def apply(self, signals: Iterable[Signal]) -> list[Change]:
        """Apply `signals` in order; the changes they made, in order."""
        start = len(self.changes)
        for signal in signals:
            if isinstance(signal, Anomaly):
                self._anomaly(signal)
            else:
                self._recovery(signal)
        for held in self._held.values():
            self._record(held.incident, "suppressed", SYSTEM, held.describe(), held.at)
        self._held.clear()
        return self.changes[start:]

    def _anomaly(self, a: Anomaly) -> None:
        sensor, _ = sensor_of(a.series_id)
        quality = self.live.get((sensor, "data_quality"))
        if a.kind == "anomaly" and quality and a.timestamp >= quality.started_at:
            held = self._held.setdefault(id(quality), Held(quality))
            held.add(a)
            self.suppressed += 1
            return
        key = (sensor, a.kind)
        incident = self.live.get(key)
        if incident is not None and a.timestamp > incident.last_at + self.policy.gap_s:
            quiet = a.timestamp - incident.last_at
            self._resolve(
                incident,
                a.timestamp,
                f"no anomaly for {quiet:.0f} s (gap {self.policy.gap_s:.0f} s)",
            )
            incident = None
        if incident is None:
            incident = Incident(
                None, sensor, a.kind, "open", self.policy.severity(a.score),
                a.timestamp, a.timestamp, a.score, a.explanation(), 1,
                [a.series_id], {a.series_id: a.timestamp}, [a.timestamp],
            )  # fmt: skip
            self.live[key] = incident
            self._record(incident, "opened", SYSTEM, _describe(a), a.timestamp)
            return
        incident.count += 1
        incident.started_at = min(incident.started_at, a.timestamp)  # a late one
        incident.last_at = max(incident.last_at, a.timestamp)
        incident.recent = (incident.recent + [a.timestamp])[-RECENT:]
        if a.series_id not in incident.series:
            incident.series.append(a.series_id)
        last = incident.active.get(a.series_id, a.timestamp)
        incident.active[a.series_id] = max(last, a.timestamp)
        if a.score > incident.peak_score:
            incident.peak_score, incident.peak = a.score, a.explanation()
        severity = self.policy.severity(incident.peak_score)
        if severity_rank(severity) > severity_rank(incident.severity):
            incident.severity = severity
            self._record(
                incident,
                "escalated",
                SYSTEM,
                f"to {severity}: {_describe(a)}",
                a.timestamp,
            )
        else:
            self._record(incident, "grew", SYSTEM, _describe(a), a.timestamp)

    def _recovery(self, r: Recovery) -> None:
        sensor, _ = sensor_of(r.series_id)
        for kind in KINDS:
            incident = self.live.get((sensor, kind))
            last = None if incident is None else incident.active.get(r.series_id)
            if incident is None or last is None or r.timestamp <= last:
                continue  # not anomalous, or anomalous again since
            del incident.active[r.series_id]
            if not incident.active:
                self._resolve(
                    incident, r.timestamp,
                    f"{self.policy.resolve_after} normal readings in a row",
                )  # fmt: skip

    def _resolve(self, incident: Incident, at: float, why: str) -> None:
        close(incident, at, SYSTEM)
        del self.live[(incident.sensor_id, incident.kind)]
        self._record(incident, "resolved", SYSTEM, why, at)

    def _record(
        self, incident: Incident, action: str, actor: str, detail: str, at: float
    ) -> None:
        self.changes.append(Change(incident, action, actor, detail, at))


@dataclass(slots=True)
class Held:
    """The anomalies a data-quality incident held back in one `apply`."""

    incident: Incident
    count: int = 0
    at: float = 0.0
    series: set[str] = field(default_factory=set)

    def add(self, a: Anomaly) -> None:
        self.count += 1
        self.at = max(self.at, a.timestamp)
        self.series.add(a.series_id)

    def describe(self) -> str:
        return (
            f"{self.count} anomalies of {', '.join(sorted(self.series))} held back "
            "while the sensor's data quality is in doubt"
        )


def _describe(a: Anomaly) -> str:
    return f"{a.series_id} {a.reason} score {a.score:.2f} at {a.timestamp:.0f}"


def acknowledge(
    incident: Incident, actor: str, at: float, assignee: str | None
) -> list[Change]:
    """A person takes the incident; it must be open."""
    if incident.state != "open":
        raise Conflict(
            f"incident {incident.id} is {incident.state}; only an open one is "
            "acknowledged",
            rule="incident_state",
        )
    incident.state = "acknowledged"
    changes = [Change(incident, "acknowledged", actor, "", at)]
    if assignee is not None:
        incident.assignee = assignee
        changes.append(Change(incident, "assigned", actor, assignee, at))
    return changes


def close(incident: Incident, at: float, actor: str) -> None:
    """Mark `incident` resolved by `actor` at `at`."""
    incident.state, incident.resolved_at, incident.resolved_by = "resolved", at, actor
    incident.active = {}


def resolve(incident: Incident, actor: str, at: float, note: str) -> list[Change]:
    """A person resolves the incident; it must be live."""
    if not incident.live:
        raise Conflict(
            f"incident {incident.id} is already resolved", rule="incident_state"
        )
    close(incident, at, actor)
    return [Change(incident, "resolved", actor, note, at)]


def comment(incident: Incident, actor: str, at: float, text: str) -> list[Change]:
    """A comment on the incident, in any state."""
    if not text.strip():
        raise InvalidInput("a comment needs some text", rule="comment_text")
    return [Change(incident, "commented", actor, text, at)]


def live_keys(signals: Sequence[Signal]) -> set[str]:
    """The sensors whose live incidents applying `signals` needs."""
    return {sensor_of(s.series_id)[0] for s in signals}


def by_key(incidents: Iterable[Incident]) -> dict[tuple[str, Kind], Incident]:
    return {(i.sensor_id, i.kind): i for i in incidents if i.live}


def severity_rank(severity: Severity) -> int:
    """0 for minor, up to 2 for critical."""
    return SEVERITIES.index(severity)
