"""Where things are: sensors within a map's bounds, a site's floor plan, and
its machines and sensors placed on it, coloured by their state."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from atalaia.api.common.auth import Principal
from atalaia.api.common.deps import (
    FleetEngineer,
    ResourcesDep,
    SessionDep,
    Viewer,
    scope_of,
)
from atalaia.api.common.openapi import error_responses
from atalaia.api.common.resources import Resources
from atalaia.api.training.asset_schemas import AssetView
from atalaia.api.training.map_schemas import (
    Floorplan,
    PlacedView,
    SensorOnMap,
    SensorsOnMap,
    SitePlan,
    SiteSummaries,
    SiteSummaryView,
)
from atalaia.api.training.routes.assets import AssetId
from atalaia.api.training.routes.fleet import get_fleet_grids
from atalaia.errors import InvalidInput, NotFound
from atalaia.services import maps
from atalaia.services.fleet_grid import FleetGrids

sensors_router = APIRouter(prefix="/sensors", tags=["assets"])
sites_router = APIRouter(prefix="/sites", tags=["assets"])
Grids = Annotated[FleetGrids, Depends(get_fleet_grids)]
Days = Annotated[
    float,
    Query(gt=0, le=36_500, description="The incidents counted: those of the last days"),
]
_IMAGES = {
    "content": {
        t: {"schema": {"type": "string", "format": "binary"}}
        for t in maps.FLOORPLAN_TYPES
    }
}


def _shown(resources: Resources, principal: Principal) -> maps.SensorFilter | None:
    """The sensors the caller's groups cover (None: no groups, every one)."""
    scope = scope_of(resources, principal)
    return None if scope is None else scope.covers_sensor


def _states(grids: FleetGrids) -> dict[str, int]:
    """Each sensor's state code in the fleet grid, as kept now."""
    grid, _ = grids.current()
    return dict(zip(grid.sensors, grid.states.tolist(), strict=True))


@sensors_router.get(
    "", response_model=SensorsOnMap, responses=error_responses(InvalidInput)
)
def sensors_on_map(
    session: SessionDep,
    resources: ResourcesDep,
    grids: Grids,
    principal: Viewer,
    bbox: Annotated[
        str,
        Query(
            description="west,south,east,north in degrees: the sensors of the "
            "sites within",
            pattern=r"^-?\d{1,3}(\.\d+)?(,-?\d{1,3}(\.\d+)?){3}$",
            examples=["-9.5,38.5,-8.0,41.5"],
        ),
    ],
) -> SensorsOnMap:
    """The sensors of the sites within `bbox`, each at its site's point, with
    its place on the site's floor plan and its state."""
    box = maps.BoundingBox.parse(bbox)
    found = maps.sensors_in(
        session=session, box=box, states=_states(grids),
        shown=_shown(resources, principal),
    )  # fmt: skip
    return SensorsOnMap(
        sensors=[SensorOnMap.of(site, sensor, state) for site, sensor, state in found]
    )


@sites_router.get("", response_model=SiteSummaries)
def sites(
    session: SessionDep,
    resources: ResourcesDep,
    grids: Grids,
    principal: Viewer,
    days: Days = 7.0,
) -> SiteSummaries:
    """Every site with its sensors counted by state and its incidents of the
    last `days` (what a map of the fleet shows), in tree order."""
    since = time.time() - days * 86_400
    found = maps.site_summaries(
        session=session, states=_states(grids), since=since,
        shown=_shown(resources, principal),
    )  # fmt: skip
    return SiteSummaries(
        sites=[SiteSummaryView.of(s) for s in found], incidents_since=since
    )


@sites_router.get(
    "/{site_id}/plan",
    response_model=SitePlan,
    responses=error_responses(NotFound),
)
def site_plan(
    site_id: AssetId,
    session: SessionDep,
    resources: ResourcesDep,
    grids: Grids,
    principal: Viewer,
    days: Days = 7.0,
) -> SitePlan:
    """A site, its floor plan (if one was uploaded) and its machines and
    sensors placed on it (x/y in the plan's pixels), each with its state and
    its incidents of the last `days`."""
    since = time.time() - days * 86_400
    site, plan, placed = maps.site_plan(
        session=session, site_id=site_id, states=_states(grids), since=since,
        shown=_shown(resources, principal),
    )  # fmt: skip
    return SitePlan(
        site=AssetView.of(site, 0),
        floorplan=Floorplan.of(site_id, plan) if plan else None,
        placed=[PlacedView.of(p) for p in placed],
        incidents_since=since,
    )


@sites_router.put(
    "/{site_id}/floorplan",
    response_model=Floorplan,
    responses=error_responses(NotFound, InvalidInput),
    openapi_extra={"requestBody": {"required": True, **_IMAGES}},
)
async def put_floorplan(
    site_id: AssetId,
    request: Request,
    session: SessionDep,
    resources: ResourcesDep,
    principal: FleetEngineer,
) -> Floorplan:
    """Upload a site's floor plan: a PNG, JPEG or WebP image whose pixels are
    the x/y of the machines and sensors placed on it."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip()
    plan = maps.put_floorplan(
        session=session, artifacts=resources.artifacts, site_id=site_id,
        data=await request.body(), media_type=media_type.lower(),
        actor=principal.subject,
    )  # fmt: skip
    return Floorplan.of(site_id, plan)


@sites_router.get(
    "/{site_id}/floorplan",
    response_class=Response,
    responses={200: _IMAGES, **error_responses(NotFound)},
)
def get_floorplan(
    site_id: AssetId, session: SessionDep, resources: ResourcesDep, principal: Viewer
) -> Response:
    """A site's floor plan image, as uploaded."""
    data, media_type = maps.floorplan(
        session=session, artifacts=resources.artifacts, site_id=site_id,
        shown=_shown(resources, principal),
    )  # fmt: skip
    return Response(data, media_type=media_type, headers={"Cache-Control": "no-cache"})
