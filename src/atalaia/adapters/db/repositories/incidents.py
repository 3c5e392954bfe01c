"""Incidents and their history.

The alerter is the one process that groups anomalies into incidents
(`core.incidents.Grouper`); people acknowledge, resolve and comment through the
API at the same time. Neither overwrites the other: the alerter's update of an
incident never touches its state unless it resolves it, and only while it is
not resolved (else `ConcurrentChange`: its batch is applied again); a person's
change is a conditional update on the state it was read in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, insert, select, update
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories.assets import AssetStore
from atalaia.adapters.db.tables import IncidentHistoryRow, IncidentRow, utcnow
from atalaia.core.incidents import Change, Incident, Kind, State, sensor_group
from atalaia.errors import ConcurrentChange, InvalidInput, NotFound


class IncidentNotFound(NotFound):
    rule = "incident_exists"


@dataclass(frozen=True, slots=True)
class HistoryLine:
    action: str
    actor: str
    detail: str
    at: float


@dataclass(frozen=True, slots=True)
class IncidentFilter:
    """What `IncidentStore.page` lists; None: any."""

    states: Sequence[State] = ()
    kinds: Sequence[Kind] = ()
    severities: Sequence[str] = ()
    series_prefix: str | None = None
    sensor_id: str | None = None
    sensor_group: str | None = None
    asset: str | None = None  # the sensors at or under a node of the hierarchy
    start: float | None = None  # incidents still going at or after
    end: float | None = None  # incidents started before


class IncidentStore:
    def __init__(self, session: Session) -> None:
        self.session = session

    def live(self, sensors: Iterable[str]) -> list[Incident]:
        """The live incidents of these sensors."""
        keys = [f"{s}/{k}" for s in set(sensors) for k in ("anomaly", "data_quality")]
        found: list[Incident] = []
        for start in range(0, len(keys), 5_000):
            stmt = select(IncidentRow).where(
                IncidentRow.live_key.in_(keys[start : start + 5_000])
            )
            found += [_incident(row) for row in self.session.scalars(stmt)]
        return found

    def save(self, changes: Sequence[Change]) -> None:
        """Write the incidents `changes` touched and their history lines (an
        anomaly that only grew an incident is in its count, not its history)."""
        incidents: dict[int, Incident] = {}
        for change in changes:
            incidents.setdefault(id(change.incident), change.incident)
        fresh = {key for key, i in incidents.items() if i.id is None}
        new = [i for key, i in incidents.items() if key in fresh]
        if new:
            stmt = insert(IncidentRow).returning(
                IncidentRow.id, sort_by_parameter_order=True
            )
            ids = self.session.scalars(stmt, [_columns(i) for i in new]).all()
            for incident, incident_id in zip(new, ids, strict=True):
                incident.id = incident_id
        for key, incident in incidents.items():
            if key not in fresh:
                self._update(incident)
        lines = [_line(c) for c in changes if c.action != "grew"]
        if lines:
            self.session.execute(insert(IncidentHistoryRow), lines)

    def _update(self, incident: Incident) -> None:
        columns = _columns(incident)
        if incident.live:  # a person's fields stay theirs
            for name in ("state", "assignee", "resolved_at", "resolved_by"):
                columns.pop(name)
        stmt = (
            update(IncidentRow)
            .where(IncidentRow.id == incident.id, IncidentRow.state != "resolved")
            .values(**columns)
        )
        if self.session.execute(stmt).rowcount != 1:  # type: ignore[attr-defined]
            raise ConcurrentChange(f"incident {incident.id} was resolved meanwhile")

    def get(self, incident_id: int) -> Incident:
        row = self.session.get(IncidentRow, incident_id)
        if row is None:
            raise IncidentNotFound(f"no incident {incident_id}")
        return _incident(row)

    def by_ids(self, ids: Iterable[int]) -> list[Incident]:
        ids = list(ids)
        found: list[Incident] = []
        for start in range(0, len(ids), 5_000):
            stmt = select(IncidentRow).where(
                IncidentRow.id.in_(ids[start : start + 5_000])
            )
            found += [_incident(row) for row in self.session.scalars(stmt)]
        return found

    def live_all(self) -> list[Incident]:
        """Every live incident."""
        stmt = select(IncidentRow).where(IncidentRow.live_key.is_not(None))
        return [_incident(row) for row in self.session.scalars(stmt)]

    def history(self, incident_id: int) -> list[HistoryLine]:
        stmt = (
            select(IncidentHistoryRow)
            .where(IncidentHistoryRow.incident_id == incident_id)
            .order_by(IncidentHistoryRow.id)
        )
        return [
            HistoryLine(r.action, r.actor, r.detail, r.at)
            for r in self.session.scalars(stmt)
        ]

    def act(
        self, incident_id: int, action: Callable[[Incident], list[Change]]
    ) -> Incident:
        """Apply a person's `action` (`core.incidents.acknowledge`, …) to the
        incident and write it, unless it changed state meanwhile."""
        incident = self.get(incident_id)
        before = incident.state
        changes = action(incident)
        columns = _columns(incident)
        people = ["state", "live_key", "assignee", "resolved_at", "resolved_by"]
        if not incident.live:  # else the alerter's, which may have moved since
            people.append("active")
        stmt = (
            update(IncidentRow)
            .where(IncidentRow.id == incident_id, IncidentRow.state == before)
            .values(**{name: columns[name] for name in people}, updated_at=utcnow())
        )
        if self.session.execute(stmt).rowcount != 1:  # type: ignore[attr-defined]
            raise ConcurrentChange(
                f"incident {incident_id} changed meanwhile; read it and retry"
            )
        self.session.execute(insert(IncidentHistoryRow), [_line(c) for c in changes])
        return incident

    def page(
        self, where: IncidentFilter, after: str | None, limit: int
    ) -> tuple[list[Incident], str | None]:
        """Incidents matching `where`, newest first, after cursor `after`; the
        cursor of the next page (None: no more)."""
        stmt = select(IncidentRow)
        if after is not None:
            stmt = stmt.where(IncidentRow.id < parse_cursor(after))
        stmt = stmt.where(*self._matching(where)).order_by(IncidentRow.id.desc())
        rows = list(self.session.scalars(stmt.limit(limit + 1)))
        more = len(rows) > limit
        rows = rows[:limit]
        return [_incident(r) for r in rows], (str(rows[-1].id) if more else None)

    def counts(self, where: IncidentFilter) -> dict[tuple[str, str], int]:
        """Incidents matching `where` by (kind, severity)."""
        i = IncidentRow
        stmt = (
            select(i.kind, i.severity, func.count())
            .where(*self._matching(where))
            .group_by(i.kind, i.severity)
        )
        return {(k, s): int(n) for k, s, n in self.session.execute(stmt)}

    def by_sensor(self, where: IncidentFilter) -> dict[str, int]:
        """Incidents matching `where` by sensor (those with some)."""
        i = IncidentRow
        stmt = (
            select(i.sensor_id, func.count())
            .where(*self._matching(where))
            .group_by(i.sensor_id)
        )
        return {sensor: int(n) for sensor, n in self.session.execute(stmt)}

    def _matching(self, where: IncidentFilter) -> list[ColumnElement[bool]]:
        conditions = _conditions(where)
        if where.asset is not None:
            sensors = AssetStore(self.session).sensors_under(where.asset)
            conditions.append(IncidentRow.sensor_id.in_(sensors))
        return conditions

    def live_counts(self) -> dict[tuple[str, str], int]:
        """Live incidents by (kind, severity)."""
        stmt = (
            select(IncidentRow.kind, IncidentRow.severity, func.count())
            .where(IncidentRow.live_key.is_not(None))
            .group_by(IncidentRow.kind, IncidentRow.severity)
        )
        return {(k, s): int(n) for k, s, n in self.session.execute(stmt)}

    def anomalous_sensors(self, since: float) -> int:
        """Sensors with a live incident whose last anomaly is at or after `since`."""
        stmt = select(func.count(func.distinct(IncidentRow.sensor_id))).where(
            IncidentRow.live_key.is_not(None), IncidentRow.last_at >= since
        )
        return int(self.session.scalar(stmt) or 0)

    def live_by_group(self) -> dict[str, tuple[int, int]]:
        """Per sensor group: its live incidents and the sensors they are on."""
        stmt = (
            select(
                IncidentRow.sensor_group, func.count(),
                func.count(func.distinct(IncidentRow.sensor_id)),
            )
            .where(IncidentRow.live_key.is_not(None))
            .group_by(IncidentRow.sensor_group)
        )  # fmt: skip
        return {g: (int(n), int(s)) for g, n, s in self.session.execute(stmt)}

    def top_live(self, limit: int) -> list[Incident]:
        """The live incidents of highest peak score."""
        stmt = (
            select(IncidentRow)
            .where(IncidentRow.live_key.is_not(None))
            .order_by(IncidentRow.peak_score.desc(), IncidentRow.id.desc())
            .limit(limit)
        )
        return [_incident(r) for r in self.session.scalars(stmt)]

    def live_series(self) -> list[str]:
        """The series still anomalous in some live incident."""
        stmt = select(IncidentRow.active).where(IncidentRow.live_key.is_not(None))
        return [s for active in self.session.scalars(stmt) for s in active]


def _conditions(where: IncidentFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if where.states:
        conditions.append(IncidentRow.state.in_(where.states))
    if where.kinds:
        conditions.append(IncidentRow.kind.in_(where.kinds))
    if where.severities:
        conditions.append(IncidentRow.severity.in_(where.severities))
    if where.sensor_id:
        conditions.append(IncidentRow.sensor_id == where.sensor_id)
    if where.sensor_group:
        conditions.append(IncidentRow.sensor_group == where.sensor_group)
    if where.series_prefix:
        escaped = (
            where.series_prefix.replace("\\", "\\\\")
            .replace("%", "\\%")
            .replace("_", "\\_")
        )
        # A sensor's series are its id, or its id, `_` and an axis: a prefix
        # of one of them is a prefix of the sensor's id, or begins with the
        # sensor's id and `_` (`pump1_ra`, not `pump10`, for sensor `pump1`).
        with_axis = IncidentRow.sensor_id + "_"
        conditions.append(
            IncidentRow.sensor_id.like(f"{escaped}%", escape="\\")
            | (func.substr(where.series_prefix, 1, func.length(with_axis)) == with_axis)
        )
    if where.start is not None:
        conditions.append(IncidentRow.last_at >= where.start)
    if where.end is not None:
        conditions.append(IncidentRow.started_at < where.end)
    return conditions


def parse_cursor(after: str) -> int:
    """The id a page's cursor stands for; InvalidInput when it is not one."""
    if not (after.isdigit() and int(after) < 2**63):
        raise InvalidInput(f"cursor {after!r} is not one this list gave", rule="cursor")
    return int(after)


def _columns(incident: Incident) -> dict[str, object]:
    return {
        "live_key": f"{incident.sensor_id}/{incident.kind}" if incident.live else None,
        "sensor_id": incident.sensor_id,
        "sensor_group": sensor_group(incident.sensor_id),
        "kind": incident.kind,
        "state": incident.state,
        "severity": incident.severity,
        "started_at": incident.started_at,
        "last_at": incident.last_at,
        "peak_score": incident.peak_score,
        "peak": incident.peak,
        "count": incident.count,
        "series": list(incident.series),
        "active": dict(incident.active),
        "recent": list(incident.recent),
        "assignee": incident.assignee,
        "resolved_at": incident.resolved_at,
        "resolved_by": incident.resolved_by,
        "updated_at": utcnow(),
    }


def _line(change: Change) -> dict[str, object]:
    return {
        "incident_id": change.incident.id,
        "action": change.action,
        "actor": change.actor,
        "detail": change.detail[:4000],
        "at": change.at,
    }


def _incident(row: IncidentRow) -> Incident:
    return Incident(
        row.id, row.sensor_id, row.kind, row.state, row.severity,  # type: ignore[arg-type]
        row.started_at, row.last_at, row.peak_score, dict(row.peak), row.count,
        list(row.series), dict(row.active), list(row.recent), row.assignee,
        row.resolved_at, row.resolved_by,
    )  # fmt: skip
