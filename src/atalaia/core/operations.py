"""Fleet operations: one promotion or rollback of many series, run in chunks.

An operation freezes the series it selects when it is created, then moves them
a chunk at a time. Each chunk is planned here from what the registry holds of
its series, under the rules of `core.registry` (legal transitions; only a
Staging version is promoted; a rollback needs an earlier Production version):

- promote: a series' newest Staging version, when newer than its Production
  one, becomes Production; the Production one is Archived (or sent back to
  Staging without `archive_existing`);
- rollback: the Production version is Archived and the version promoted before
  it comes back.

A series the plan leaves alone is skipped with the reason (`Skip`: among
them, one whose canary, shadow or A/B test runs: it ends first); one whose
move breaks a rule fails with the error. A promotion's `Condition` judges the
candidate by its holdout figures, which `auto` training records
(`core.detectors.auto`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from atalaia.core.registry import Stage, StageChange, check_transition
from atalaia.errors import VersionNotPromotable

MAX_SERIES = 300_000  # series an explicit list may name
MAX_ERRORS = 20  # errors an operation keeps (the first ones)


class Action(StrEnum):
    PROMOTE = "promote"
    ROLLBACK = "rollback"

    @property
    def event(self) -> str:
        """The platform event (and audit action) of its stage changes."""
        return "model.promoted" if self is Action.PROMOTE else "model.rolled_back"


class OperationStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self not in (OperationStatus.QUEUED, OperationStatus.RUNNING)


class Skip(StrEnum):
    """Why a series was left alone."""

    NO_NEWER_STAGING = "no_newer_staging_version"
    NO_HOLDOUT_FIGURES = "no_holdout_figures"
    FALSE_ALARM_RATE = "holdout_false_alarm_rate_above_max"
    ANOMALY_RATE = "anomaly_rate_not_within"
    NO_PRODUCTION = "no_production_version"
    NO_EARLIER_PRODUCTION = "no_earlier_production_version"
    ROLLOUT_RUNNING = "rollout_running"  # a canary, shadow or A/B test runs


@dataclass(frozen=True, slots=True)
class Selector:
    """The series of an operation: exactly one of these is set."""

    series_ids: tuple[str, ...] | None = None
    sensor: str | None = None  # its axes' series (`core.series.sensor_of`)
    prefix: str | None = None
    batch_id: str | None = None  # the series of a training batch
    all: bool = False

    def describe(self) -> dict[str, Any]:
        """The selector as an operation shows it (an explicit list by its size
        and first ids)."""
        if self.series_ids is not None:
            ids = self.series_ids
            return {"series_ids": {"count": len(ids), "first": list(ids[:5])}}
        if self.all:
            return {"all": True}
        named = {
            "sensor": self.sensor,
            "prefix": self.prefix,
            "batch_id": self.batch_id,
        }
        return {key: value for key, value in named.items() if value is not None}


@dataclass(frozen=True, slots=True)
class Condition:
    """What a promotion's candidate must show; None: not asked.

    `anomaly_rate_within` is relative: 0.2 keeps the candidate's holdout
    anomaly rate within ±20 % of the Production version's (as the canary's
    gate in `core.rollout`).
    """

    max_holdout_false_alarm_rate: float | None = None
    anomaly_rate_within: float | None = None

    def judge(
        self,
        candidate: Mapping[str, float | str],
        production: Mapping[str, float | str] | None,
    ) -> Skip | None:
        """Why the candidate (its metrics) is not promoted; None: it may be."""
        rate = holdout_false_alarm_rate(candidate)
        if rate is None:
            return Skip.NO_HOLDOUT_FIGURES
        ceiling = self.max_holdout_false_alarm_rate
        if ceiling is not None and rate > ceiling:
            return Skip.FALSE_ALARM_RATE
        if self.anomaly_rate_within is None:
            return None
        if production is None:
            return Skip.NO_PRODUCTION
        expected = holdout_false_alarm_rate(production)
        if expected is None:
            return Skip.NO_HOLDOUT_FIGURES
        if abs(rate - expected) > self.anomaly_rate_within * expected:
            return Skip.ANOMALY_RATE
        return None

    def describe(self) -> dict[str, float]:
        named = {
            "max_holdout_false_alarm_rate": self.max_holdout_false_alarm_rate,
            "anomaly_rate_within": self.anomaly_rate_within,
        }
        return {key: value for key, value in named.items() if value is not None}


def holdout_false_alarm_rate(metrics: Mapping[str, float | str]) -> float | None:
    """The share of its holdout's readings (as they are, nothing injected) the
    version flags: `auto_<chosen>_false_alarm_rate`, recorded by `auto`
    training; None for a version trained without a holdout.

    >>> holdout_false_alarm_rate({"auto_chosen": "robust",
    ...     "auto_robust_false_alarm_rate": 0.002, "auto_zscore_false_alarm_rate": 0.1})
    0.002
    >>> holdout_false_alarm_rate({"training_anomaly_rate": 0.01}) is None
    True
    """
    chosen = metrics.get("auto_chosen")
    value = metrics.get(f"auto_{chosen}_false_alarm_rate")
    return float(value) if isinstance(value, int | float) else None


@dataclass(frozen=True, slots=True)
class OperationRequest:
    action: Action
    selector: Selector
    condition: Condition | None = None
    archive_existing: bool = True
    reason: str = ""


class VersionFact(NamedTuple):
    """A version of a chunk's series, as much of it as planning needs."""

    series_id: str
    row: int  # its row in the registry: what the chunk's writes address
    version: int
    stage: Stage
    metrics: Mapping[str, float | str]  # empty unless a condition reads them


class Move(NamedTuple):
    row: int
    change: StageChange


@dataclass(frozen=True, slots=True)
class ChunkPlan:
    """A chunk's stage changes, Production versions' departures first (a series
    has one Production version at any moment), and its outcome per series."""

    retire: list[Move] = field(default_factory=list)
    arrive: list[Move] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (series, error)

    def add(self, series_id: str, changes: Sequence[Move]) -> None:
        """Move the series by `changes` (its departure from Production first)
        when every one is legal, else count it failed."""
        try:
            for _, c in changes:
                assert c.from_stage is not None
                check_transition(c.series_id, c.version, c.from_stage, c.to_stage)
        except VersionNotPromotable as exc:
            self.failed.append((series_id, exc.detail))
            return
        *retired, arrived = changes
        self.retire.extend(retired)
        self.arrive.append(arrived)
        self.moved.append(series_id)


def _move(fact: VersionFact, to_stage: Stage) -> Move:
    return Move(
        fact.row, StageChange(fact.series_id, fact.version, fact.stage, to_stage)
    )


def plan_promotions(
    series_ids: Iterable[str],
    versions: Iterable[VersionFact],
    *,
    archive_existing: bool,
    condition: Condition | None,
) -> ChunkPlan:
    """Promote each series' newest Staging version (of `versions`: the chunk's
    Production and Staging ones) when newer than its Production one and, with
    a `condition`, when it passes it."""
    production: dict[str, VersionFact] = {}
    staging: dict[str, VersionFact] = {}
    for fact in versions:
        if fact.stage is Stage.PRODUCTION:
            production[fact.series_id] = fact
        elif fact.stage is Stage.STAGING:
            newest = staging.get(fact.series_id)
            if newest is None or fact.version > newest.version:
                staging[fact.series_id] = fact
    retired = Stage.ARCHIVED if archive_existing else Stage.STAGING
    plan = ChunkPlan()
    for series_id in series_ids:
        candidate, current = staging.get(series_id), production.get(series_id)
        if candidate is None or (current and candidate.version < current.version):
            plan.skipped[Skip.NO_NEWER_STAGING] += 1
            continue
        if condition is not None:
            why = condition.judge(candidate.metrics, current and current.metrics)
            if why is not None:
                plan.skipped[why] += 1
                continue
        leaving = [_move(current, retired)] if current else []
        plan.add(series_id, [*leaving, _move(candidate, Stage.PRODUCTION)])
    return plan


def plan_rollbacks(
    series_ids: Iterable[str],
    production: Iterable[VersionFact],
    past_production: Iterable[VersionFact],
) -> ChunkPlan:
    """Put back, for each series, the version promoted before its Production
    one (`past_production`: versions once in Production, most recently
    promoted first), as `core.registry.plan_rollback` does for one."""
    current = {fact.series_id: fact for fact in production}
    earlier: dict[str, VersionFact] = {}
    for fact in past_production:
        now = current.get(fact.series_id)
        if (
            now is not None
            and fact.series_id not in earlier
            and fact.version != now.version
            and fact.stage is not Stage.PRODUCTION
        ):
            earlier[fact.series_id] = fact
    plan = ChunkPlan()
    for series_id in series_ids:
        now, before = current.get(series_id), earlier.get(series_id)
        if now is None:
            plan.skipped[Skip.NO_PRODUCTION] += 1
        elif before is None:
            plan.skipped[Skip.NO_EARLIER_PRODUCTION] += 1
        else:
            changes = [_move(now, Stage.ARCHIVED), _move(before, Stage.PRODUCTION)]
            plan.add(series_id, changes)
    return plan


@dataclass(frozen=True, slots=True)
class Operation:
    """An operation and its progress: `done` series moved, `failed`, `skipped`
    (`skipped_by_reason`), out of `total`; `errors`: the first MAX_ERRORS."""

    id: str
    action: Action
    status: OperationStatus
    selector: dict[str, Any]
    condition: dict[str, float]
    archive_existing: bool
    reason: str
    actor: str
    total: int
    done: int
    failed: int
    skipped: int
    skipped_by_reason: dict[str, int]
    errors: list[dict[str, str | None]]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested: bool

    @property
    def remaining(self) -> int:
        return self.total - self.done - self.failed - self.skipped

    def pace(self, now: datetime) -> tuple[float | None, float | None]:
        """(series handled per second since it started, up to its end once
        ended; seconds left at that pace): None when unknown or over."""
        handled = self.total - self.remaining
        end = self.finished_at or now
        if self.started_at is None or not handled:
            return None, None
        elapsed = (end - self.started_at).total_seconds()
        rate = handled / elapsed if elapsed > 0 else None
        left = self.remaining if not self.status.terminal else 0
        return rate, (left / rate if rate and left else None)


def kept_errors(
    kept: Sequence[dict[str, str | None]], failed: Sequence[tuple[str | None, str]]
) -> list[dict[str, str | None]]:
    """The first MAX_ERRORS errors, those `kept` then the new `failed` ones."""
    room = max(MAX_ERRORS - len(kept), 0)
    new = [{"series_id": sid, "error": error} for sid, error in failed[:room]]
    return [*kept, *new]
