"""The asset hierarchy: sites → areas/lines → machines → sensors, whose axes
are the platform's series."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from atalaia.adapters.db.repositories import AssetStore
from atalaia.api.common.deps import (
    FleetEngineer,
    ResourcesDep,
    SessionDep,
    Viewer,
    scope_of,
)
from atalaia.api.common.openapi import error_responses
from atalaia.api.common.params import Text
from atalaia.api.training.asset_schemas import (
    AssetBody,
    AssetDetail,
    AssetPage,
    AssetsPut,
    AssetView,
)
from atalaia.core.assets import AssetKind
from atalaia.errors import Conflict, InvalidAssets, InvalidInput, NotFound
from atalaia.services import assets
from atalaia.services.assets import AssetFormat

router = APIRouter(prefix="/assets", tags=["assets"])

MAX_PAGE = 1_000
AssetId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")]
_FORMATS = {
    "text/csv": AssetFormat.CSV,
    "application/yaml": AssetFormat.YAML,
    "application/x-yaml": AssetFormat.YAML,
    "text/yaml": AssetFormat.YAML,
}


@router.get("", response_model=AssetPage, responses=error_responses(NotFound))
def list_assets(
    session: SessionDep,
    resources: ResourcesDep,
    principal: Viewer,
    kind: AssetKind | None = None,
    parent: Annotated[Text | None, Query(description="Its children")] = None,
    under: Annotated[
        Text | None, Query(description="It and every node under it")
    ] = None,
    cursor: Annotated[
        Text | None, Query(description="`next_cursor` of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> AssetPage:
    """Nodes in tree order (each after its parent), filtered."""
    store = AssetStore(session)
    found = store.page(kind=kind, parent=parent, under=under, after=cursor, limit=limit)
    next_cursor = found[-1].path if len(found) == limit else None
    children: Mapping[str, int]
    if (scope := scope_of(resources, principal)) is None:
        children = store.counts(s.asset.id for s in found)
    else:  # the caller's sensors and the nodes above one
        visible = assets.visible_to(
            session=session, shown=scope.covers_sensor, including=under
        )
        found = [s for s in found if s.asset.id in visible.ids]
        children = visible.children
    return AssetPage(
        assets=[AssetView.of(s, children.get(s.asset.id, 0)) for s in found],
        next_cursor=next_cursor,
    )


@router.post(
    "/import",
    response_model=AssetsPut,
    responses=error_responses(InvalidAssets),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/yaml": {"schema": {"type": "string"}},
            },
        }
    },
)
async def import_assets(
    request: Request, session: SessionDep, principal: FleetEngineer
) -> AssetsPut:
    """Create or replace the nodes of a CSV file (`id, kind, name, parent,
    latitude, longitude, x, y`, other columns as attributes) or a YAML file
    (nodes nested in `children`): all of them, or none with every error."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    form = _FORMATS.get(kind)
    if form is None:
        raise InvalidInput(
            f"an asset file is text/csv or application/yaml, not {kind or 'none'}",
            rule="asset_file_type",
        )
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            "an asset file is UTF-8 text", rule="asset_file_type"
        ) from exc
    done = assets.import_assets(
        session=session, text=text, form=form, actor=principal.subject
    )
    return AssetsPut(created=done.created, replaced=done.replaced)


@router.get(
    "/{asset_id}", response_model=AssetDetail, responses=error_responses(NotFound)
)
def get_asset(
    asset_id: AssetId, session: SessionDep, resources: ResourcesDep, principal: Viewer
) -> AssetDetail:
    """A node, the nodes above it, and how many children and series it has
    (those of the caller's groups)."""
    store = AssetStore(session)
    stored = store.get(asset_id)
    above = store.ancestors(stored)
    scope = scope_of(resources, principal)
    children: Mapping[str, int]
    if scope is None:
        series = store.count_series_under(asset_id)
        children = store.counts([asset_id, *(a.asset.id for a in above)])
    else:
        visible = assets.visible_to(
            session=session, shown=scope.covers_sensor, including=asset_id
        )
        under = session.scalars(store.series_under(asset_id))
        series = sum(1 for s in under if scope.covers(s))
        children = visible.children
    view = AssetView.of(stored, children.get(asset_id, 0))
    return AssetDetail(
        **view.model_dump(),
        ancestors=[AssetView.of(a, children.get(a.asset.id, 0)) for a in above],
        series=series,
    )


@router.put(
    "/{asset_id}", response_model=AssetsPut, responses=error_responses(InvalidAssets)
)
def put_asset(
    asset_id: AssetId, body: AssetBody, session: SessionDep, principal: FleetEngineer
) -> AssetsPut:
    """Create or replace one node (moving it takes the nodes under it along)."""
    done = assets.put_asset(
        session=session, asset=body.asset(asset_id), actor=principal.subject
    )
    return AssetsPut(created=done.created, replaced=done.replaced)


@router.delete(
    "/{asset_id}", status_code=204, responses=error_responses(NotFound, Conflict)
)
def remove_asset(
    asset_id: AssetId, session: SessionDep, principal: FleetEngineer
) -> None:
    """Delete a node with nothing under it."""
    assets.remove_asset(session=session, asset_id=asset_id, actor=principal.subject)
