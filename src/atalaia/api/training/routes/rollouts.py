"""Rollouts: the canaries, shadows and A/B tests running and past, and
ending one."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from atalaia.adapters.db.repositories import RolloutStore
from atalaia.api.common.deps import (
    MlEngineer,
    ResourcesDep,
    SessionDep,
    Viewer,
    hide_outside,
    scope_of,
)
from atalaia.api.common.openapi import error_responses
from atalaia.api.common.params import IdCursor, RowId, SeriesId
from atalaia.api.training.rollout_schemas import RolloutPage, RolloutView
from atalaia.api.training.schemas import RollbackBody
from atalaia.core.rollout import State
from atalaia.errors import RolloutConflict, RolloutNotFound
from atalaia.services import rollouts

router = APIRouter(prefix="/rollouts", tags=["models"])

# `state=ended`: any but running; a shadow's decision, once it ended.
StateQuery = Literal[
    "running",
    "ended",
    "promoted",
    "rolled_back",
    "passed",
    "rejected",
    "reported",
    "cancelled",
]
_DECIDED = {"canary": State.PASSED, "reject": State.REJECTED}


@router.get("", response_model=RolloutPage)
def list_rollouts(
    session: SessionDep,
    resources: ResourcesDep,
    principal: Viewer,
    series_id: SeriesId | None = None,
    strategy: Literal["canary", "shadow", "ab"] | None = None,
    state: StateQuery | None = None,
    decision: Annotated[
        Literal["canary", "reject"] | None,
        Query(description="A shadow's decision: passed (canary) or rejected"),
    ] = None,
    cursor: IdCursor | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> RolloutPage:
    """Rollouts, newest first."""
    states = _states(state, decision)
    store = RolloutStore(session)
    found = store.page(
        series_id=series_id, strategy=strategy, states=states,
        before=int(cursor) if cursor else None, limit=limit,
    )  # fmt: skip
    next_cursor = str(found[-1].id) if len(found) == limit else None
    if (scope := scope_of(resources, principal)) is not None:
        found = [r for r in found if scope.covers(r.series_id)]
    counts = store.counts(r.id for r in found)
    views = [
        RolloutView.model_validate(rollouts.describe(r, counts.get(r.id, {})))
        for r in found
    ]
    return RolloutPage(rollouts=views, next_cursor=next_cursor)


def _states(
    state: StateQuery | None, decision: Literal["canary", "reject"] | None
) -> list[State] | None:
    """The states a query asks for (None: any)."""
    chosen: list[State]
    if state == "ended":
        chosen = [s for s in State if s is not State.RUNNING]
    else:
        chosen = list(State) if state is None else [State(state)]
    if decision is not None:
        chosen = [s for s in chosen if s is _DECIDED[decision]]
    return None if len(chosen) == len(State) else chosen


@router.get(
    "/{rollout_id}",
    response_model=RolloutView,
    responses=error_responses(RolloutNotFound),
)
def get_rollout(
    rollout_id: RowId, session: SessionDep, resources: ResourcesDep, principal: Viewer
) -> RolloutView:
    """One rollout with its figures so far."""
    store = RolloutStore(session)
    rollout = store.get(rollout_id)
    hide_outside(resources, principal, [rollout.series_id], RolloutNotFound(rollout_id))
    counts = store.counts([rollout_id]).get(rollout_id, {})
    return RolloutView.model_validate(rollouts.describe(rollout, counts))


@router.post(
    "/{rollout_id}/cancel",
    response_model=RolloutView,
    responses=error_responses(RolloutNotFound, RolloutConflict),
)
def cancel_rollout(
    rollout_id: RowId,
    session: SessionDep,
    resources: ResourcesDep,
    principal: MlEngineer,
    body: RollbackBody | None = None,
) -> RolloutView:
    """End a running canary or shadow: production answers every reading
    again, and the candidate stays in Staging."""
    found = RolloutStore(session).get(rollout_id)
    hide_outside(resources, principal, [found.series_id], RolloutNotFound(rollout_id))
    rollout = rollouts.cancel(
        session=session, rollout_id=rollout_id, actor=principal.subject,
        reason=body.reason if body else "",
    )  # fmt: skip
    rollouts.announce(resources.redis, rollout, "rollout_cancelled")
    counts = RolloutStore(session).counts([rollout_id]).get(rollout_id, {})
    return RolloutView.model_validate(rollouts.describe(rollout, counts))
