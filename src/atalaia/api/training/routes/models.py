"""Model registry: versions, promotion, rollback, deployment config."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import ModelStore
from atalaia.api.common.compression import CompressedRoute
from atalaia.api.common.deps import (
    FleetViewer,
    MlEngineer,
    ResourcesDep,
    SessionDep,
    Viewer,
    scope_of,
)
from atalaia.api.common.openapi import error_responses
from atalaia.api.common.params import SeriesId, Text, VersionNumber
from atalaia.api.common.resources import Resources
from atalaia.api.training.rollout_schemas import RolloutStarted, RolloutView
from atalaia.api.training.schemas import (
    AbConfig,
    CanaryConfig,
    GatesConfig,
    ModelsOverview,
    PromoteBody,
    RollbackBody,
    ShadowConfig,
    StageChangeView,
    VersionView,
)
from atalaia.core.registry import StageChange, Strategy
from atalaia.errors import (
    InvalidInput,
    NothingToRollBack,
    RolloutConflict,
    VersionNotFound,
    VersionNotPromotable,
)
from atalaia.services import (
    monitoring,
    registry,
    registry_overview,
    rollouts,
    training_data,
)
from atalaia.services.registry_overview import ChangeKind
from atalaia.services.rollouts import RolloutRequest

router = APIRouter(prefix="/models", tags=["models"], route_class=CompressedRoute)


@router.get("")
def list_models(
    session: SessionDep,
    resources: ResourcesDep,
    principal: Viewer,
    prefix: Text | None = None,
    cursor: Text | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Series with models: version count, latest and production version."""
    models = ModelStore(session).summaries(prefix=prefix, after=cursor, limit=limit)
    next_cursor = models[-1]["series_id"] if len(models) == limit else None
    if (scope := scope_of(resources, principal)) is not None:
        models = [m for m in models if scope.covers(m["series_id"])]
    return {"models": models, "next_cursor": next_cursor}


@router.get("/overview", response_model=ModelsOverview)
def models_overview(
    session: SessionDep,
    _: FleetViewer,
    kind: Annotated[
        list[Literal[ChangeKind.PROMOTION, ChangeKind.ROLLBACK]] | None,
        Query(
            description="Only the ledger's promotions, or its rollbacks, or both "
            "(`?kind=promotion&kind=rollback`): no registration"
        ),
    ] = None,
) -> ModelsOverview:
    """The registry at a glance: production versions by algorithm, versions by
    stage, staging versions waiting, the latest stage changes."""
    found = registry_overview.overview(session=session, kinds=kind or ())
    return ModelsOverview.of(found)


@router.get(
    "/{series_id}/versions",
    response_model=list[VersionView],
    responses=error_responses(VersionNotFound),
)
def list_versions(
    series_id: SeriesId, session: SessionDep, _: Viewer
) -> list[VersionView]:
    """Every version of a series, newest first."""
    versions = ModelStore(session).versions(series_id)
    if not versions:
        raise VersionNotFound(series_id)
    return [VersionView.of(v) for v in versions]


@router.get(
    "/{series_id}/versions/{version}",
    response_model=VersionView,
    responses=error_responses(VersionNotFound),
)
def get_version(
    series_id: SeriesId, version: VersionNumber, session: SessionDep, _: Viewer
) -> VersionView:
    """One version with its parameters, metrics, reference statistics and lineage."""
    return VersionView.of(ModelStore(session).get(series_id, version))


def _changes_view(series_id: SeriesId, changes: list[StageChange]) -> dict[str, Any]:
    return {
        "series_id": series_id,
        "changes": [
            StageChangeView(
                version=c.version, from_stage=c.from_stage, to_stage=c.to_stage
            )
            for c in changes
        ],
    }


@router.post(
    "/{series_id}/versions/{version}/promote",
    responses={
        202: {"model": RolloutStarted, "description": "A canary or shadow started"},
        **error_responses(VersionNotFound, VersionNotPromotable, RolloutConflict),
    },
)
def promote(
    series_id: SeriesId,
    version: VersionNumber,
    body: PromoteBody,
    session: SessionDep,
    resources: ResourcesDep,
    principal: MlEngineer,
) -> Any:
    """Promote a Staging version: `direct` at once; or start a `canary` (a
    growing share of the readings, stepped by the scheduler while the gates
    hold), a `shadow` (scores every reading beside production) or an `ab`
    test (a fixed share for a period, then a report), answered 202 with the
    rollout."""
    if body.strategy == "direct":
        changes = registry.promote_version(
            session=session, series_id=series_id, version=version,
            archive_existing=body.archive_existing, actor=principal.subject,
            reason=body.reason,
        )  # fmt: skip
        _announce(resources, session, changes, "promoted")
        return {"strategy": body.strategy, **_changes_view(series_id, changes)}
    rollout = rollouts.start(
        session=session, series_id=series_id, version=version,
        request=_rollout_request(body), actor=principal.subject,
        reason=body.reason, now=datetime.now(UTC),
    )  # fmt: skip
    rollouts.announce(resources.redis, rollout, "rollout_started")
    started = RolloutStarted(
        series_id=series_id,
        strategy=rollout.strategy,
        rollout=RolloutView.model_validate(rollouts.describe(rollout, {})),
    )
    return JSONResponse(started.model_dump(mode="json"), status_code=202)


def _rollout_request(body: PromoteBody) -> RolloutRequest:
    plan = (body.canary_config or CanaryConfig()).plan()
    gates = (body.gates or GatesConfig()).gates()
    if body.strategy == "ab":
        ab = body.ab_config or AbConfig()
        return RolloutRequest(
            Strategy.AB,
            replace(plan, initial=ab.percentage),
            duration_s=ab.duration_hours * 3600.0,
        )
    if body.strategy == "shadow":
        shadow = body.shadow_config or ShadowConfig()
        return RolloutRequest(
            Strategy.SHADOW, plan, gates, shadow.then,
            duration_s=shadow.duration_hours * 3600.0,
        )  # fmt: skip
    return RolloutRequest(Strategy.CANARY, plan, gates)


@router.post(
    "/{series_id}/rollback",
    responses=error_responses(NothingToRollBack, RolloutConflict),
)
def rollback(
    series_id: SeriesId,
    session: SessionDep,
    resources: ResourcesDep,
    principal: MlEngineer,
    body: RollbackBody | None = None,
) -> dict[str, Any]:
    """Roll back the series' running canary (its candidate archived) or end
    its shadow; without one, put back the version that was in production
    before the current one."""
    reason = body.reason if body else ""
    ended = rollouts.roll_back_running(
        session=session, series_id=series_id, actor=principal.subject, reason=reason
    )
    if ended is not None:
        if ended:
            _announce(resources, session, ended, "rolled_back")
        return {**_changes_view(series_id, ended), "rollout_ended": True}
    changes = registry.rollback(
        session=session, series_id=series_id, actor=principal.subject, reason=reason
    )
    _announce(resources, session, changes, "rolled_back")
    return {**_changes_view(series_id, changes), "rollout_ended": False}


def _announce(
    resources: Resources, session: Session, changes: list[StageChange], event: str
) -> None:
    registry.announce_change(
        session=session,
        redis=resources.redis,
        ttl_s=resources.settings.redis_model_ttl_s,
        changes=changes,
        event=event,
    )


_WINDOW = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_WINDOW_S = 90 * 86400


WindowQuery = Annotated[
    str,
    Query(
        description="A duration such as 30m, 24h or 7d; at most 90d",
        json_schema_extra={"pattern": r"^\s*[0-9]+(\.[0-9]+)?[smhd]\s*$"},
    ),
]


def parse_window(window: str) -> float:
    """`30m`, `24h`, `7d` → seconds; at most 90 days."""
    match = _WINDOW.fullmatch(window.strip())
    seconds = float(match[1]) * _UNIT_S[match[2]] if match else 0.0
    if not 0 < seconds <= MAX_WINDOW_S:
        raise InvalidInput(
            f"window {window!r} must look like 30m, 24h or 7d, and be at most 90d",
            rule="window_format",
        )
    return seconds


@router.get("/{series_id}/metrics", responses=error_responses(VersionNotFound))
def series_metrics(
    series_id: SeriesId, session: SessionDep, _: Viewer, window: WindowQuery = "24h"
) -> dict[str, Any]:
    """Prediction count, anomaly rate, latency and drift of a series' model."""
    return monitoring.series_metrics(
        session=session, series_id=series_id, window_s=parse_window(window)
    )


@router.get("/{series_id}/deployment-config")
def deployment_config(
    series_id: SeriesId, session: SessionDep, _: Viewer
) -> dict[str, Any]:
    """What serves the series now (the live split while a canary runs), its
    running canary, its latest shadow, and the latest ledger entries."""
    return rollouts.deployment_config(session=session, series_id=series_id)


@router.get(
    "/{series_id}/versions/{version}/training-data",
    response_class=Response,
    responses={
        200: {
            "description": "The readings the version was fitted on.",
            "content": {media: {} for media in training_data.MEDIA_TYPES.values()},
        },
        **error_responses(VersionNotFound, training_data.SnapshotNotKept),
    },
)
def get_training_data(
    series_id: SeriesId,
    version: VersionNumber,
    session: SessionDep,
    resources: ResourcesDep,
    _: Viewer,
    format: training_data.Format = "parquet",
) -> Response:
    """The data the version was fitted on (`format`: parquet or csv), kept in
    the artifact store when it was trained: to inspect it or train it again."""
    body, name = training_data.training_data(
        session, resources.artifacts, series_id, version, format
    )
    return Response(
        body,
        media_type=training_data.MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
