"""Fleet operations: one promotion, rollback or start of canaries of many
series, run in chunks.

An operation freezes the series it selects when it is created, then moves them
a chunk at a time. Each chunk is planned here from what the registry holds of
its series, under the rules of `core.registry` (legal transitions; only a
Staging version is promoted; a rollback needs an earlier Production version):

- promote: a series' newest Staging version, when newer than its Production
  one, becomes Production; the Production one is Archived (or sent back to
  Staging without `archive_existing`);
- rollback: the Production version is Archived and the version promoted before
  it comes back;
- canary: that same candidate starts a canary (`core.rollout`) beside the
  Production version, which a canary needs; the scheduler's rollout task then
  grows it or rolls it back, series by series.

A series the plan leaves alone is skipped with the reason (`Skip`: among
them, one whose canary, shadow or A/B test runs: it ends first); one whose
move breaks a rule fails with the error. The `Condition` of a promotion or a
canary judges the candidate by its holdout figures, which `auto` training
records (`core.detectors.auto`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from atalaia.core.registry import Stage, StageChange, check_transition
from atalaia.core.rollout import CanaryPlan, Gates
from atalaia.errors import VersionNotPromotable

MAX_SERIES = 300_000  # series an explicit list may name
MAX_ERRORS = 20  # errors an operation keeps (the first ones)


class Action(StrEnum):
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    CANARY = "canary"

    @property
    def event(self) -> str:
        """The platform event (and audit action) of what it does to a series."""
        return _EVENTS[self]

    @property
    def takes_condition(self) -> bool:
        """Whether it moves candidates, which a `Condition` may judge."""
        return self is not Action.ROLLBACK


_EVENTS = {
    Action.PROMOTE: "model.promoted",
    Action.ROLLBACK: "model.rolled_back",
    Action.CANARY: "model.canary_started",
}


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
    NOT_BETTER = "holdout_not_better_than_production"
    SENSOR_MODEL = "sensor_model"  # a sensor's model is promoted directly


@dataclass(frozen=True, slots=True)
class Selector:
    """The series of an operation: exactly one of these is set."""

    series_ids: tuple[str, ...] | None = None
    sensor: str | None = None  # its axes' series (`core.series.sensor_of`)
    prefix: str | None = None
    batch_id: str | None = None  # the series of a training batch
    all: bool = False
    asset: str | None = None  # the series under a node (`core.assets`)

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
            "asset": self.asset,
        }
        return {key: value for key, value in named.items() if value is not None}


@dataclass(frozen=True, slots=True)
class Condition:
    """What a candidate must show to be promoted or to start a canary; None,
    False: not asked.

    `anomaly_rate_within` is relative: 0.2 keeps the candidate's holdout
    anomaly rate within ±20 % of the Production version's (as the canary's
    gate in `core.rollout`). `better_than_production`: on its own holdout, the
    candidate found at least the share of injected anomalies the Production
    version found on its own, with no more false alarms.
    """

    max_holdout_false_alarm_rate: float | None = None
    anomaly_rate_within: float | None = None
    better_than_production: bool = False

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
        within = self.anomaly_rate_within
        if within is None and not self.better_than_production:
            return None
        if production is None:
            return Skip.NO_PRODUCTION
        expected = holdout_false_alarm_rate(production)
        if expected is None:
            return Skip.NO_HOLDOUT_FIGURES
        if within is not None and abs(rate - expected) > within * expected:
            return Skip.ANOMALY_RATE
        if self.better_than_production:
            return _better(candidate, rate, production, expected)
        return None

    def describe(self) -> dict[str, float | bool]:
        named = {
            "max_holdout_false_alarm_rate": self.max_holdout_false_alarm_rate,
            "anomaly_rate_within": self.anomaly_rate_within,
        }
        shown: dict[str, float | bool] = {
            key: value for key, value in named.items() if value is not None
        }
        if self.better_than_production:
            shown["better_than_production"] = True
        return shown

    @classmethod
    def of(cls, described: Mapping[str, float | bool]) -> Condition | None:
        """The condition `describe` gave; None for none."""
        if not described:
            return None
        ceiling = described.get("max_holdout_false_alarm_rate")
        within = described.get("anomaly_rate_within")
        return cls(
            None if ceiling is None else float(ceiling),
            None if within is None else float(within),
            bool(described.get("better_than_production", False)),
        )


def _better(
    candidate: Mapping[str, float | str],
    rate: float,
    production: Mapping[str, float | str],
    expected: float,
) -> Skip | None:
    found, before = holdout_found(candidate), holdout_found(production)
    if found is None or before is None:
        return Skip.NO_HOLDOUT_FIGURES
    return None if found >= before and rate <= expected else Skip.NOT_BETTER


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
    return _holdout_figure(metrics, "false_alarm_rate")


def holdout_found(metrics: Mapping[str, float | str]) -> float | None:
    """The share of the anomalies injected into its holdout the version
    flagged: `auto_<chosen>_found`; None without a holdout.

    >>> holdout_found({"auto_chosen": "robust", "auto_robust_found": 0.9})
    0.9
    """
    return _holdout_figure(metrics, "found")


def _holdout_figure(metrics: Mapping[str, float | str], name: str) -> float | None:
    chosen = metrics.get("auto_chosen")
    value = metrics.get(f"auto_{chosen}_{name}")
    return float(value) if isinstance(value, int | float) else None


@dataclass(frozen=True, slots=True)
class OperationRequest:
    action: Action
    selector: Selector
    condition: Condition | None = None
    archive_existing: bool = True
    reason: str = ""
    canary: CanaryStart | None = None  # the canaries' plan and gates


@dataclass(frozen=True, slots=True)
class CanaryStart:
    """The plan and gates of the canaries an operation starts."""

    plan: CanaryPlan = CanaryPlan()
    gates: Gates = Gates()

    def describe(self) -> dict[str, Any]:
        return {"plan": asdict(self.plan), "gates": asdict(self.gates)}

    @classmethod
    def of(cls, described: Mapping[str, Any]) -> CanaryStart | None:
        """The canaries `describe` gave; None for none."""
        if not described:
            return None
        return cls(CanaryPlan(**described["plan"]), Gates(**described["gates"]))


class WavePolicy(StrEnum):
    """What becomes of the Staging versions a weekly retraining batch made,
    once it has ended (`services.waves`)."""

    NEVER = "never"  # they wait for a person
    CANARY_IF_HEALTHY = "canary_if_healthy"  # a canary of each healthy one
    DIRECT_IF_BETTER = "direct_if_better"  # each one better than production


def wave_request(
    policy: WavePolicy, batch_id: str, *, max_false_alarm_rate: float
) -> OperationRequest | None:
    """The operation of a batch's wave: a canary of each candidate whose
    holdout false-alarm rate is at most `max_false_alarm_rate` (its live
    anomaly rate is the canary's gate to pass), or the promotion of each one
    that also did at least as well as production on holdout; None: no wave.

    >>> wave_request(WavePolicy.DIRECT_IF_BETTER, "b1", max_false_alarm_rate=0.005)
    ... # doctest: +NORMALIZE_WHITESPACE
    OperationRequest(action=<Action.PROMOTE: 'promote'>,
        selector=Selector(series_ids=None, sensor=None, prefix=None, batch_id='b1',
        all=False, asset=None), condition=Condition(max_holdout_false_alarm_rate=0.005,
        anomaly_rate_within=None, better_than_production=True),
        archive_existing=True, reason='weekly wave (direct_if_better) of batch b1',
        canary=None)
    """
    if policy is WavePolicy.NEVER:
        return None
    canary = policy is WavePolicy.CANARY_IF_HEALTHY
    return OperationRequest(
        Action.CANARY if canary else Action.PROMOTE,
        Selector(batch_id=batch_id),
        Condition(max_false_alarm_rate, better_than_production=not canary),
        reason=f"weekly wave ({policy}) of batch {batch_id}",
        canary=CanaryStart() if canary else None,
    )


class VersionFact(NamedTuple):
    """A version of a chunk's series, as much of it as planning needs."""

    series_id: str
    row: int  # its row in the registry: what the chunk's writes address
    version: int
    stage: Stage
    metrics: Mapping[str, float | str]  # empty unless a condition reads them
    sensor: bool = False  # a sensor's model, not a series'


class Start(NamedTuple):
    """A canary to start: a series' candidate beside its Production version."""

    candidate: VersionFact
    production: VersionFact


class Move(NamedTuple):
    row: int
    change: StageChange


@dataclass(frozen=True, slots=True)
class ChunkPlan:
    """A chunk's stage changes, Production versions' departures first (a series
    has one Production version at any moment), and its outcome per series."""

    retire: list[Move] = field(default_factory=list)
    arrive: list[Move] = field(default_factory=list)
    starts: list[Start] = field(default_factory=list)
    canary: CanaryStart | None = None  # the plan and gates of `starts`
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
    retired = Stage.ARCHIVED if archive_existing else Stage.STAGING
    plan = ChunkPlan()
    for series_id, candidate, current in _candidates(
        series_ids, versions, condition, plan
    ):
        leaving = [_move(current, retired)] if current else []
        plan.add(series_id, [*leaving, _move(candidate, Stage.PRODUCTION)])
    return plan


def plan_canaries(
    series_ids: Iterable[str],
    versions: Iterable[VersionFact],
    *,
    condition: Condition | None,
    canary: CanaryStart,
) -> ChunkPlan:
    """Start a canary of each series' candidate, chosen as a promotion's,
    beside its Production version (a series without one, or a sensor's model,
    is promoted directly instead: skipped here)."""
    plan = ChunkPlan(canary=canary)
    for series_id, candidate, current in _candidates(
        series_ids, versions, condition, plan
    ):
        if current is None:
            plan.skipped[Skip.NO_PRODUCTION] += 1
        elif candidate.sensor:
            plan.skipped[Skip.SENSOR_MODEL] += 1
        else:
            plan.starts.append(Start(candidate, current))
            plan.moved.append(series_id)
    return plan


def _candidates(
    series_ids: Iterable[str],
    versions: Iterable[VersionFact],
    condition: Condition | None,
    plan: ChunkPlan,
) -> Iterator[tuple[str, VersionFact, VersionFact | None]]:
    """Each series' newest Staging version, when newer than its Production one
    (and the Production one, if any) and passing `condition`; the others are
    counted skipped in `plan`."""
    production: dict[str, VersionFact] = {}
    staging: dict[str, VersionFact] = {}
    for fact in versions:
        if fact.stage is Stage.PRODUCTION:
            production[fact.series_id] = fact
        elif fact.stage is Stage.STAGING:
            newest = staging.get(fact.series_id)
            if newest is None or fact.version > newest.version:
                staging[fact.series_id] = fact
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
        yield series_id, candidate, current


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
    """An operation and its progress: `done` series moved (a canary
    operation's: canaries started), `failed`, `skipped` (`skipped_by_reason`),
    out of `total`; `errors`: the first MAX_ERRORS. `canary`: the canaries'
    plan and gates (`CanaryStart.describe`); `wave_of`: the training batch
    whose weekly wave it is (`services.waves`)."""

    id: str
    action: Action
    status: OperationStatus
    selector: dict[str, Any]
    condition: dict[str, float | bool]
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
    canary: dict[str, Any] = field(default_factory=dict)
    wave_of: str | None = None

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
