"""The fleet at a glance: what is wrong in the plant right now, and every
sensor's state."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, Response

from atalaia.adapters.db.repositories import AssetStore
from atalaia.api.common.compression import json_response
from atalaia.api.common.deps import (
    FleetViewer,
    ResourcesDep,
    SessionDep,
    Viewer,
    scope_of,
)
from atalaia.api.common.openapi import error_responses
from atalaia.api.common.params import Text
from atalaia.api.common.state import state_as
from atalaia.api.training.incident_schemas import FleetGridView, FleetStatusView
from atalaia.api.training.state import FleetState
from atalaia.errors import NotFound
from atalaia.services import assets, fleet
from atalaia.services.fleet import GroupRates
from atalaia.services.fleet_grid import FleetGrids

router = APIRouter(prefix="/fleet", tags=["incidents"])

TOP = 10  # live incidents shown, highest peak score first


def get_group_rates(request: Request) -> GroupRates:
    return state_as(FleetState, request)["group_rates"]


def get_fleet_grids(request: Request) -> FleetGrids:
    return state_as(FleetState, request)["fleet_grids"]


@router.get("/status", response_model=FleetStatusView)
def fleet_status(
    session: SessionDep,
    resources: ResourcesDep,
    rates: Annotated[GroupRates, Depends(get_group_rates)],
    background: BackgroundTasks,
    _: FleetViewer,
    groups: Annotated[
        int, Query(ge=1, le=10_000, description="Sensor groups shown, at most")
    ] = 100,
) -> FleetStatusView:
    """Live incidents by severity and kind, the sensors anomalous now, each
    sensor group's live incidents and anomaly rate, the worst live incidents."""
    kept, stale = rates.current()
    if stale:
        background.add_task(rates.refresh)  # after this answer: it waits for none
    status = fleet.fleet_status(
        session,
        rates=kept,
        at=time.time(),
        anomalous_within_s=resources.settings.incident_gap_s,
        groups=groups,
        top=TOP,
    )
    return FleetStatusView.of(status)


@router.get(
    "/sensors", response_model=FleetGridView, responses=error_responses(NotFound)
)
def fleet_sensors(
    request: Request,
    session: SessionDep,
    resources: ResourcesDep,
    grids: Annotated[FleetGrids, Depends(get_fleet_grids)],
    background: BackgroundTasks,
    principal: Viewer,
    prefix: Annotated[
        Text | None, Query(description="Sensors of a series with this prefix")
    ] = None,
    group: Annotated[Text | None, Query(description="One sensor group")] = None,
    asset: Annotated[
        Text | None, Query(description="The sensors under a node of the hierarchy")
    ] = None,
) -> Response:
    """Every sensor's state (the worst of its live incidents, a recent anomaly,
    drift, no recent reading, no production model), by group; zstd or gzip when
    asked."""
    grid, stale = grids.current()
    if stale:
        background.add_task(grids.refresh)  # after this answer: it waits for none
    if (scope := scope_of(resources, principal)) is not None:
        grid = grid.of_sensors({s for s in grid.sensors if scope.covers_sensor(s)})
        if asset:
            assets.visible_to(
                session=session, shown=scope.covers_sensor, including=asset
            )
    if group:
        grid = grid.of_group(group)
    if prefix:
        grid = grid.of_prefix(prefix)
    if asset:
        under = AssetStore(session).sensors_under(asset)
        grid = grid.of_sensors(set(session.scalars(under)))
    return json_response(request, FleetGridView.payload(grid))
