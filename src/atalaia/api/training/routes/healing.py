"""Self-healing: what the engine decided and did; its rules and their policies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query

from atalaia.adapters.db.repositories import ActionFilter, HealingLog
from atalaia.api.common.deps import (
    FleetAdmin,
    FleetViewer,
    ResourcesDep,
    SessionDep,
    Viewer,
)
from atalaia.api.common.openapi import error_responses
from atalaia.api.common.params import EPOCH_SECONDS, Text, id_cursor
from atalaia.api.training.healing_schemas import (
    ActionPage,
    ActionView,
    RuleChange,
    RuleList,
    RuleView,
)
from atalaia.core.healing import Outcome
from atalaia.services.healing import HealingRuleNotFound, change_rule, rule_states

router = APIRouter(prefix="/healing", tags=["healing"])

MAX_PAGE = 1_000
RuleName = Annotated[str, Path(pattern=r"^[a-z_]{1,64}$")]


@router.get("/actions", response_model=ActionPage)
def list_actions(
    session: SessionDep,
    resources: ResourcesDep,
    _: FleetViewer,
    rule: Text | None = None,
    outcome: Outcome | None = None,
    target: Annotated[
        Text | None, Query(description="A series, a sensor, a queue, a dependency")
    ] = None,
    since: Annotated[
        float | None,
        Query(
            description="Decided at or after, epoch seconds",
            json_schema_extra=EPOCH_SECONDS,
        ),  # fmt: skip
    ] = None,
    cursor: Annotated[Text | None, id_cursor("the newest")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> ActionPage:
    """The engine's decisions matching every filter given, newest first."""
    if since is not None:
        resources.time_range.check_one(since, name="since")
    where = ActionFilter(
        rule=rule,
        outcome=outcome,
        target=target,
        since=None if since is None else datetime.fromtimestamp(since, UTC),
    )
    found, next_cursor = HealingLog(session).page(where, cursor, limit)
    return ActionPage(
        actions=[ActionView.of(a) for a in found], next_cursor=next_cursor
    )


@router.get("/rules", response_model=RuleList)
def list_rules(session: SessionDep, resources: ResourcesDep, _: Viewer) -> RuleList:
    """Every rule, what it watches and does, and its policy in force."""
    states = rule_states(session, resources.settings)
    return RuleList(rules=[RuleView.of(s) for s in states])


@router.patch(
    "/rules/{rule}",
    response_model=RuleView,
    responses=error_responses(HealingRuleNotFound),
)
def change(
    rule: RuleName,
    body: RuleChange,
    session: SessionDep,
    resources: ResourcesDep,
    principal: FleetAdmin,
) -> RuleView:
    """Turn a rule on or off, into or out of dry run, or change its rate limit."""
    state = change_rule(
        session=session, settings=resources.settings, name=rule,
        enabled=body.enabled, dry_run=body.dry_run,
        max_actions_per_hour=body.max_actions_per_hour, actor=principal.subject,
    )  # fmt: skip
    return RuleView.of(state)
