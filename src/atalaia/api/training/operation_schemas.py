"""Request and response bodies of fleet operations (`/operations`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from atalaia.api.common.params import SeriesId, Text
from atalaia.api.training.schemas import CanaryConfig, GatesConfig
from atalaia.core.operations import (
    MAX_SERIES,
    Action,
    CanaryStart,
    Condition,
    Operation,
    OperationRequest,
    Selector,
)
from atalaia.errors import InvalidInput
from atalaia.services.operations import DryRun

# No unknown field; numbers are JSON numbers (not strings or booleans).
_REQUEST = ConfigDict(extra="forbid", strict=True)
_ONE_OF = ("series_ids", "sensor", "prefix", "batch_id", "asset", "all")
MAX_RELATIVE = 100.0  # anomaly_rate_within: ±10,000 % at most
_NAMED = {"type": "string", "minLength": 1}
_SELECTOR_SCHEMA: dict[str, Any] = {
    "minProperties": 1,
    "maxProperties": 1,
    "oneOf": [
        {
            "required": ["series_ids"],
            "properties": {
                "series_ids": {"type": "array", "minItems": 1, "maxItems": MAX_SERIES}
            },
        },
        *(
            {"required": [name], "properties": {name: _NAMED}}
            for name in ("sensor", "prefix", "batch_id", "asset")
        ),
        {"required": ["all"], "properties": {"all": {"const": True}}},
    ],
    "examples": [{"prefix": "plant1_"}, {"sensor": "pump7"}, {"all": True}],
}


class SelectorBody(BaseModel):
    """The series of the operation: exactly one of `series_ids` (at most
    300,000), `sensor` (its axes' series), `prefix`, `batch_id` (the series of
    a training batch), `asset` (the series under a node of the asset
    hierarchy) or `all: true`."""

    model_config = _REQUEST | ConfigDict(json_schema_extra=_SELECTOR_SCHEMA)

    series_ids: list[SeriesId] | None = None
    sensor: Text | None = None
    prefix: Text | None = None
    batch_id: Text | None = None
    asset: Text | None = None
    all: Literal[True] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SelectorBody:
        given = [name for name in _ONE_OF if name in self.model_fields_set]
        if len(given) != 1 or getattr(self, given[0]) is None:
            raise InvalidInput(
                f"the selector takes exactly one of {', '.join(_ONE_OF)}; "
                f"given: {', '.join(given) or 'none'}",
                rule="selector_exactly_one",
            )
        if self.series_ids is not None and not 1 <= len(self.series_ids) <= MAX_SERIES:
            raise InvalidInput(
                f"series_ids names 1 to {MAX_SERIES:,} series, not "
                f"{len(self.series_ids):,}",
                rule="series_ids_count",
            )
        for name in ("sensor", "prefix", "batch_id", "asset"):
            if getattr(self, name) == "":
                raise InvalidInput(f"{name} is empty", rule="selector_not_empty")
        return self

    def selector(self) -> Selector:
        ids = tuple(self.series_ids) if self.series_ids is not None else None
        return Selector(
            ids, self.sensor, self.prefix, self.batch_id, bool(self.all), self.asset
        )


class ConditionBody(BaseModel):
    """What each candidate must show to be promoted or to start a canary, from
    its training's holdout (versions trained by `auto`; others are
    skipped)."""

    model_config = _REQUEST

    max_holdout_false_alarm_rate: float | None = Field(
        default=None,
        description="The highest share of its holdout's readings the candidate "
        "may flag (its metric `auto_<chosen>_false_alarm_rate`), 0 to 1",
        json_schema_extra={"minimum": 0, "maximum": 1},
    )
    anomaly_rate_within: float | None = Field(
        default=None,
        description="Relative: 0.2 keeps the candidate's holdout anomaly rate "
        "within ±20 % of the production version's",
        json_schema_extra={"minimum": 0, "maximum": MAX_RELATIVE},
    )
    better_than_production: bool = Field(
        default=False,
        description="On its own holdout, the candidate found at least the share "
        "of injected anomalies the production version found on its own, with no "
        "more false alarms",
    )

    @model_validator(mode="after")
    def _in_range(self) -> ConditionBody:
        rate, within = self.max_holdout_false_alarm_rate, self.anomaly_rate_within
        if rate is not None and not 0 <= rate <= 1:
            raise InvalidInput(
                f"max_holdout_false_alarm_rate is a share, 0 to 1, not {rate}",
                rule="condition_range",
            )
        if within is not None and not 0 <= within <= MAX_RELATIVE:
            raise InvalidInput(
                f"anomaly_rate_within is relative, 0 to {MAX_RELATIVE:g}, not {within}",
                rule="condition_range",
            )
        return self


_OPERATION_SCHEMA: dict[str, Any] = {
    # A condition judges candidates: a rollback takes none; a canary's
    # plan and gates belong to a canary.
    "allOf": [
        {
            "anyOf": [
                {"properties": {"action": {"enum": ["promote", "canary"]}}},
                {"properties": {"condition": {"type": "null"}}},
            ]
        },
        *[
            {
                "anyOf": [
                    {"properties": {"action": {"const": "canary"}}},
                    {"properties": {name: {"type": "null"}}},
                ]
            }
            for name in ("canary_config", "gates")
        ],
    ],
    "examples": [
        {
            "action": "promote",
            "selector": {"prefix": "plant1_"},
            "condition": {
                "max_holdout_false_alarm_rate": 0.002,
                "anomaly_rate_within": 0.2,
            },
            "reason": "weekly retraining",
        },
        {
            "action": "canary",
            "selector": {"batch_id": "0b6f7c8e-2f43-4a59-9d0e-3c1b5a7e9f21"},
            "condition": {"max_holdout_false_alarm_rate": 0.002},
            "canary_config": {"initial_percentage": 5},
        },
        {"action": "rollback", "selector": {"sensor": "pump7"}},
    ],
}


class OperationBody(BaseModel):
    """Promote each selected series' newest Staging version, start a canary of
    it beside the production version (the rollout task then grows or rolls
    back each one), or roll the series back: one operation run in chunks."""

    model_config = _REQUEST | ConfigDict(json_schema_extra=_OPERATION_SCHEMA)

    action: Literal["promote", "rollback", "canary"]
    selector: SelectorBody
    condition: ConditionBody | None = Field(
        default=None, description="Promotions and canaries"
    )
    canary_config: CanaryConfig | None = Field(
        default=None, description="Canaries: each one's steps (the defaults of promote)"
    )
    gates: GatesConfig | None = Field(
        default=None, description="Canaries: what each one must show to go on"
    )
    archive_existing: bool = Field(
        default=True,
        description="Promotions: archive the production versions replaced "
        "(false: send them back to Staging)",
    )
    reason: Text = ""
    dry_run: bool = Field(
        default=False, description="Count what it would do; change nothing (200)"
    )

    @model_validator(mode="after")
    def _parts_of_its_action(self) -> OperationBody:
        action = Action(self.action)
        if self.condition is not None and not action.takes_condition:
            raise InvalidInput(
                "a condition judges candidates: only a promote or a canary takes one",
                rule="condition_of_candidates",
            )
        for name in ("canary_config", "gates"):
            if getattr(self, name) is not None and action is not Action.CANARY:
                raise InvalidInput(
                    f"{name} belongs to action 'canary'", rule="canary_config_canary"
                )
        return self

    def request(self) -> OperationRequest:
        action, condition, canary = Action(self.action), None, None
        if self.condition is not None:
            condition = Condition(
                self.condition.max_holdout_false_alarm_rate,
                self.condition.anomaly_rate_within,
                self.condition.better_than_production,
            )
        if action is Action.CANARY:
            config = self.canary_config or CanaryConfig()
            canary = CanaryStart(config.plan(), (self.gates or GatesConfig()).gates())
        return OperationRequest(
            action, self.selector.selector(), condition, self.archive_existing,
            self.reason, canary,
        )  # fmt: skip


class OperationAccepted(BaseModel):
    operation_id: str
    status: str
    total: int
    links: dict[str, str]

    @classmethod
    def of(cls, operation: Operation) -> OperationAccepted:
        return cls(
            operation_id=operation.id,
            status=operation.status.value,
            total=operation.total,
            links={"self": _path(operation.id)},
        )


class DryRunView(BaseModel):
    dry_run: Literal[True] = True
    action: str
    selected: int
    eligible: int = Field(description="Series it would move")
    skipped: int
    skipped_by_reason: dict[str, int]
    failed: int
    errors: list[dict[str, str | None]] = Field(description="The first 20")

    @classmethod
    def of(cls, action: str, found: DryRun) -> DryRunView:
        return cls(
            action=action,
            selected=found.selected,
            eligible=found.eligible,
            skipped=sum(found.skipped.values()),
            skipped_by_reason=found.skipped,
            failed=found.failed,
            errors=found.errors,
        )


class OperationView(BaseModel):
    """An operation and its progress: `done` series moved, `skipped` (by
    reason), `failed` (the first 20 errors), `remaining`, and its pace."""

    id: str
    action: str
    status: str
    total: int
    done: int
    failed: int
    skipped: int
    remaining: int
    skipped_by_reason: dict[str, int]
    rate_per_s: float | None = Field(
        description="Series handled per second since it started (up to its end)"
    )
    eta_s: float | None = Field(description="Seconds left at that rate")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    errors: list[dict[str, str | None]]
    actor: str
    reason: str
    selector: dict[str, Any]
    condition: dict[str, float | bool]
    canary: dict[str, Any] | None = Field(
        description="A canary operation's: each canary's plan and gates"
    )
    wave_of: str | None = Field(
        description="The training batch whose weekly wave it is (the scheduler's)"
    )
    archive_existing: bool
    cancel_requested: bool
    links: dict[str, str]

    @classmethod
    def of(cls, operation: Operation, *, now: datetime) -> OperationView:
        rate, eta = operation.pace(now)
        o = operation
        return cls(
            id=o.id, action=o.action.value, status=o.status.value, total=o.total,
            done=o.done, failed=o.failed, skipped=o.skipped, remaining=o.remaining,
            skipped_by_reason=o.skipped_by_reason, rate_per_s=rate, eta_s=eta,
            created_at=o.created_at, started_at=o.started_at,
            finished_at=o.finished_at, errors=o.errors, actor=o.actor,
            reason=o.reason, selector=o.selector, condition=o.condition,
            canary=o.canary or None, wave_of=o.wave_of,
            archive_existing=o.archive_existing,
            cancel_requested=o.cancel_requested,
            links={"self": _path(o.id), "cancel": f"{_path(o.id)}/cancel"},
        )  # fmt: skip


class OperationPage(BaseModel):
    operations: list[OperationView]
    next_cursor: str | None


def _path(operation_id: str) -> str:
    return f"/api/v1/operations/{operation_id}"
