"""Request and response bodies of the incident routes and the fleet's status."""

from __future__ import annotations

from typing import Annotated, Any, cast

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from atalaia.adapters.db.repositories.incidents import HistoryLine
from atalaia.api.common.params import NOT_BLANK_PATTERN, Text
from atalaia.core.fleet_states import LEGEND
from atalaia.core.incidents import KINDS, SEVERITIES, Incident, Kind, Severity, State
from atalaia.services.fleet import FleetStatus, GroupFigures
from atalaia.services.fleet_grid import FleetGrid

_REQUEST = ConfigDict(extra="forbid", strict=True)

Person = Annotated[Text, Field(min_length=1, max_length=128)]


class HistoryLineView(BaseModel):
    action: str = Field(
        description="opened, grew, escalated, acknowledged, assigned, commented "
        "or resolved"
    )
    actor: str = Field(description='A person (token subject), or "atalaia"')
    detail: str
    at: float = Field(description="Epoch seconds")

    @classmethod
    def of(cls, line: HistoryLine) -> HistoryLineView:
        return cls(action=line.action, actor=line.actor, detail=line.detail, at=line.at)


class IncidentView(BaseModel):
    id: int
    sensor_id: str
    sensor_group: str
    kind: Kind
    state: State
    severity: Severity
    started_at: float = Field(description="Its first anomaly, epoch seconds")
    last_at: float = Field(description="Its latest anomaly, epoch seconds")
    count: int = Field(description="Anomalous readings in it")
    series: list[str] = Field(description="The sensor's series that were anomalous")
    active: dict[str, float] = Field(
        description="Those not recovered yet, each with its last anomaly's time"
    )
    peak_score: float
    peak: dict[str, JsonValue] = Field(
        description="Its worst reading and its explanation (expected, band, reason)"
    )
    assignee: str | None
    resolved_at: float | None
    resolved_by: str | None

    @classmethod
    def of(cls, incident: Incident) -> IncidentView:
        assert incident.id is not None  # stored
        return cls(
            id=incident.id,
            sensor_id=incident.sensor_id,
            sensor_group=incident.group,
            kind=incident.kind,
            state=incident.state,
            severity=incident.severity,
            started_at=incident.started_at,
            last_at=incident.last_at,
            count=incident.count,
            series=incident.series,
            active=incident.active,
            peak_score=incident.peak_score,
            peak=incident.peak,
            assignee=incident.assignee,
            resolved_at=incident.resolved_at,
            resolved_by=incident.resolved_by,
        )


class IncidentDetail(IncidentView):
    history: list[HistoryLineView] = Field(description="Oldest first")


class IncidentPage(BaseModel):
    incidents: list[IncidentView]
    next_cursor: str | None = Field(description="`after` for the next page")


class AcknowledgeBody(BaseModel):
    model_config = _REQUEST

    assignee: Person | None = Field(default=None, description="Who takes it")
    note: Text = Field(default="", description="Added to its history as a comment")


class ResolveBody(BaseModel):
    model_config = _REQUEST

    note: Text = Field(default="", description="Why, for its history")


class CommentBody(BaseModel):
    model_config = _REQUEST

    text: Text = Field(
        description="Not blank (`comment_text`)",
        json_schema_extra={"minLength": 1, "pattern": NOT_BLANK_PATTERN},
    )


class LiveCounts(BaseModel):
    total: int
    by_severity: dict[Severity, int]
    by_kind: dict[Kind, int]


class GroupView(BaseModel):
    group: str = Field(
        description="A sensor group: a sensor id up to its last _ . : or -"
    )
    live_incidents: int
    sensors_affected: int = Field(description="Sensors with a live incident")
    predictions: int = Field(description="Over the current and the previous hour")
    anomalies: int = Field(description="Over the current and the previous hour")
    anomaly_rate: float | None = Field(description="null: no predictions")

    @classmethod
    def of(cls, figures: GroupFigures) -> GroupView:
        return cls(
            group=figures.group,
            live_incidents=figures.live_incidents,
            sensors_affected=figures.sensors_affected,
            predictions=figures.predictions,
            anomalies=figures.anomalies,
            anomaly_rate=figures.anomaly_rate,
        )


class FleetStatusView(BaseModel):
    at: float = Field(description="Epoch seconds of the figures")
    live: LiveCounts = Field(description="Incidents open or acknowledged")
    sensors_anomalous_now: int = Field(
        description="Sensors with a live incident whose last anomaly is within "
        "`anomalous_within_s`"
    )
    anomalous_within_s: float
    groups: list[GroupView] = Field(
        description="Most live incidents first, then highest anomaly rate"
    )
    groups_total: int = Field(description="Groups with live incidents or predictions")
    rates_since: float = Field(description="Start of the rates' previous hour")
    rates_as_of: float = Field(description="When the rates were read (cached 15 s)")
    top: list[IncidentView] = Field(description="Live incidents of highest peak score")

    @classmethod
    def of(cls, status: FleetStatus) -> FleetStatusView:
        by_severity = dict.fromkeys(SEVERITIES, 0)
        by_kind = dict.fromkeys(KINDS, 0)
        for (kind, severity), n in status.live_counts.items():
            by_severity[cast(Severity, severity)] += n
            by_kind[cast(Kind, kind)] += n
        return cls(
            at=status.at,
            live=LiveCounts(
                total=sum(by_kind.values()), by_severity=by_severity, by_kind=by_kind
            ),
            sensors_anomalous_now=status.sensors_anomalous,
            anomalous_within_s=status.anomalous_within_s,
            groups=[GroupView.of(g) for g in status.groups],
            groups_total=status.groups_total,
            rates_since=status.rates.since,
            rates_as_of=status.rates.as_of,
            top=[IncidentView.of(i) for i in status.top],
        )


class GroupRunView(BaseModel):
    name: str = Field(description="A sensor group")
    start: int = Field(description="Index of its first sensor in `sensors`")
    count: int = Field(description="Its sensors, one after the other")


class FleetGridView(BaseModel):
    """The fleet's grid, as `payload` makes it (for the OpenAPI document)."""

    at: float = Field(description="Epoch seconds of the figures (kept ~10 s)")
    legend: list[str] = Field(
        description="The states, best to worst: " + ", ".join(LEGEND)
    )
    counts: dict[str, int] = Field(description="Sensors in each state of `legend`")
    total: int = Field(description="Sensors listed")
    groups: list[GroupRunView] = Field(description="The runs of `sensors`, by group")
    sensors: list[str] = Field(description="Sensor ids, by group, then id")
    states: str = Field(
        description="One digit a sensor, in the order of `sensors`: its "
        "state's index in `legend`"
    )

    @staticmethod
    def payload(grid: FleetGrid) -> dict[str, Any]:
        """The answer's body: plain values (95,000 sensors are too many to
        validate one by one)."""
        return {
            "at": grid.at,
            "legend": list(LEGEND),
            "counts": grid.counts(),
            "total": len(grid.sensors),
            "groups": [
                {"name": r.name, "start": r.start, "count": r.count}
                for r in grid.groups
            ],
            "sensors": grid.sensors,
            "states": grid.states_text(),
        }
