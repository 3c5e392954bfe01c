"""Request and response bodies of the healing routes: the engine's decisions
and its rules' policies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from atalaia.adapters.db.repositories import HealingAction
from atalaia.core.healing import Outcome
from atalaia.services.healing import RuleState

MAX_ACTIONS_PER_HOUR = 1_000_000_000


class ActionView(BaseModel):
    """A decision of the engine and what became of it."""

    id: int
    at: datetime
    rule: str
    action: str = Field(
        description="retrain, recalibrate, open_incident, close_incident, alert, "
        "open_circuit, close_circuit"
    )
    target: str = Field(description="A series, a sensor, a queue or a dependency")
    outcome: Outcome
    reason: str = Field(description="Why, in words (and why not done, in brackets)")
    evidence: dict[str, Any]
    episode: str = Field(description="The occurrence it answers; empty: none")
    request_id: str | None = Field(description="The run or request that decided it")

    @classmethod
    def of(cls, action: HealingAction) -> ActionView:
        return cls(
            id=action.id, at=action.at, rule=action.rule, action=action.action,
            target=action.target, outcome=action.outcome, reason=action.reason,
            evidence=action.evidence, episode=action.episode,
            request_id=action.request_id,
        )  # fmt: skip


class ActionPage(BaseModel):
    actions: list[ActionView] = Field(description="Newest first")
    next_cursor: str | None = Field(description="`cursor` of the next page; none: last")


class RuleView(BaseModel):
    name: str
    description: str
    enabled: bool
    dry_run: bool = Field(description="Decisions recorded, nothing done")
    max_actions_per_hour: int = Field(description="0: no limit")
    source: Literal["settings", "api"] = Field(
        description="Where its policy comes from: the settings, or an admin's change"
    )
    updated_by: str | None
    updated_at: datetime | None

    @classmethod
    def of(cls, state: RuleState) -> RuleView:
        policy = state.policy
        return cls(
            name=state.rule.name, description=state.rule.description,
            enabled=policy.enabled, dry_run=policy.dry_run,
            max_actions_per_hour=policy.max_actions_per_hour,
            source="api" if state.updated_by is not None else "settings",
            updated_by=state.updated_by, updated_at=state.updated_at,
        )  # fmt: skip


class RuleList(BaseModel):
    rules: list[RuleView]


def _whole(value: object) -> object:
    """75.0 is an integer to JSON Schema: take it as 75 (as `VersionNumber`)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class RuleChange(BaseModel):
    """What to change of a rule's policy; the fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid", strict=True)

    enabled: bool | None = None
    dry_run: bool | None = None
    max_actions_per_hour: Annotated[
        int | None,
        Field(ge=0, le=MAX_ACTIONS_PER_HOUR, description="0: no limit"),
        BeforeValidator(_whole),
    ] = None
