"""Incidents: list and read them; acknowledge, resolve and comment on them."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import IncidentFilter, IncidentStore
from atalaia.adapters.db.repositories.incidents import IncidentNotFound
from atalaia.api.common.auth import Principal
from atalaia.api.common.compression import CompressedRoute
from atalaia.api.common.deps import (
    DataScientist,
    ResourcesDep,
    SessionDep,
    Viewer,
    scope_of,
)
from atalaia.api.common.openapi import error_responses
from atalaia.api.common.params import EPOCH_SECONDS, Text, id_cursor
from atalaia.api.common.resources import Resources
from atalaia.api.training.incident_schemas import (
    AcknowledgeBody,
    CommentBody,
    HistoryLineView,
    IncidentDetail,
    IncidentPage,
    IncidentView,
    ResolveBody,
)
from atalaia.core.access import SeriesScope
from atalaia.core.incidents import Incident, Kind, Severity, State
from atalaia.errors import Conflict, NotFound
from atalaia.services import assets, incidents

router = APIRouter(prefix="/incidents", tags=["incidents"], route_class=CompressedRoute)

MAX_PAGE = 1_000
IncidentId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _epoch(description: str) -> Any:
    return Query(
        description=f"{description}, epoch seconds", json_schema_extra=EPOCH_SECONDS
    )


@router.get("", response_model=IncidentPage, responses=error_responses(NotFound))
def list_incidents(
    session: SessionDep,
    resources: ResourcesDep,
    principal: Viewer,
    state: Annotated[list[State] | None, Query(description="Repeatable")] = None,
    kind: Kind | None = None,
    severity: Annotated[list[Severity] | None, Query(description="Repeatable")] = None,
    series_prefix: Annotated[
        Text | None, Query(description="Incidents of a series with this prefix")
    ] = None,
    sensor: Annotated[Text | None, Query(description="A sensor id")] = None,
    sensor_group: Text | None = None,
    asset: Annotated[
        Text | None,
        Query(description="A node of the asset hierarchy: the sensors under it"),
    ] = None,
    start: Annotated[float | None, _epoch("Still going at or after")] = None,
    end: Annotated[float | None, _epoch("Started before")] = None,
    after: Annotated[Text | None, id_cursor("the newest")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> IncidentPage:
    """Incidents matching every filter given, newest first, a page at a time."""
    for name, bound in (("start", start), ("end", end)):
        if bound is not None:
            resources.time_range.check_one(bound, name=name)
    scope = scope_of(resources, principal)
    if asset and scope is not None:
        assets.visible_to(session=session, shown=scope.covers_sensor, including=asset)
    where = IncidentFilter(
        states=state or (),
        kinds=(kind,) if kind else (),
        severities=severity or (),
        series_prefix=series_prefix,
        sensor_id=sensor,
        sensor_group=sensor_group,
        asset=asset,
        start=start,
        end=end,
    )
    found, cursor = IncidentStore(session).page(where, after, limit)
    if scope is not None:
        found = [i for i in found if _covers(scope, i)]
    return IncidentPage(
        incidents=[IncidentView.of(i) for i in found], next_cursor=cursor
    )


@router.get(
    "/{incident_id}",
    response_model=IncidentDetail,
    responses=error_responses(IncidentNotFound),
)
def get_incident(
    incident_id: IncidentId,
    session: SessionDep,
    resources: ResourcesDep,
    principal: Viewer,
) -> IncidentDetail:
    """One incident with its history."""
    return _detail(session, _visible(session, resources, principal, incident_id))


def _covers(scope: SeriesScope, incident: Incident) -> bool:
    """Whether every series of the incident (its sensor's: none yet) is covered."""
    if not incident.series:
        return scope.covers_sensor(incident.sensor_id)
    return not scope.outside(incident.series)


def _visible(
    session: Session, resources: Resources, principal: Principal, incident_id: int
) -> Incident:
    """The incident, or IncidentNotFound when it is outside the caller's groups."""
    incident = IncidentStore(session).get(incident_id)
    scope = scope_of(resources, principal)
    if scope is not None and not _covers(scope, incident):
        raise IncidentNotFound(f"no incident {incident_id}")
    return incident


@router.post(
    "/{incident_id}/acknowledge",
    response_model=IncidentDetail,
    responses=error_responses(IncidentNotFound, Conflict),
)
def acknowledge(
    incident_id: IncidentId,
    session: SessionDep,
    resources: ResourcesDep,
    principal: DataScientist,
    body: AcknowledgeBody | None = None,
) -> IncidentDetail:
    """Take an open incident, optionally assigning it; 409 unless it is open."""
    _visible(session, resources, principal, incident_id)
    body = body or AcknowledgeBody()
    incident = incidents.acknowledge(
        session=session, incident_id=incident_id, actor=principal.subject,
        at=time.time(), assignee=body.assignee, note=body.note,
    )  # fmt: skip
    return _detail(session, incident)


@router.post(
    "/{incident_id}/resolve",
    response_model=IncidentDetail,
    responses=error_responses(IncidentNotFound, Conflict),
)
def resolve(
    incident_id: IncidentId,
    session: SessionDep,
    resources: ResourcesDep,
    principal: DataScientist,
    body: ResolveBody | None = None,
) -> IncidentDetail:
    """Resolve a live incident; 409 once it is resolved."""
    _visible(session, resources, principal, incident_id)
    incident = incidents.resolve(
        session=session, incident_id=incident_id, actor=principal.subject,
        at=time.time(), note=body.note if body else "",
    )  # fmt: skip
    return _detail(session, incident)


@router.post(
    "/{incident_id}/comment",
    response_model=IncidentDetail,
    responses=error_responses(IncidentNotFound),
)
def comment(
    incident_id: IncidentId,
    body: CommentBody,
    session: SessionDep,
    resources: ResourcesDep,
    principal: DataScientist,
) -> IncidentDetail:
    """Add a comment to an incident's history, in any state."""
    _visible(session, resources, principal, incident_id)
    incident = incidents.comment(
        session=session, incident_id=incident_id, actor=principal.subject,
        at=time.time(), text=body.text,
    )  # fmt: skip
    return _detail(session, incident)


def _detail(session: Session, incident: Incident) -> IncidentDetail:
    assert incident.id is not None  # stored
    lines = IncidentStore(session).history(incident.id)
    history = [HistoryLineView.of(line) for line in lines]
    return IncidentDetail(**IncidentView.of(incident).model_dump(), history=history)
