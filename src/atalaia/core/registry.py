"""Model registry rules: stages, legal transitions, promotion and rollback plans.

A series has at most one Production version. Versions are numbered 1, 2, 3, ...
per series in the order their training jobs finish.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from atalaia.core.detectors import ModelParams
from atalaia.core.detectors.bands import flat_band
from atalaia.core.detectors.phases import PhaseBand
from atalaia.core.sensors import StoredSensor
from atalaia.errors import NothingToRollBack, VersionNotPromotable


class Stage(StrEnum):
    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"


class Strategy(StrEnum):
    DIRECT = "direct"
    CANARY = "canary"
    SHADOW = "shadow"
    AB = "ab"  # an A/B test: a fixed share for a period, then a report


_LEGAL: dict[Stage, frozenset[Stage]] = {
    Stage.STAGING: frozenset({Stage.PRODUCTION, Stage.ARCHIVED}),
    # Production → Staging is the "keep it around" demotion of archive_existing=False.
    Stage.PRODUCTION: frozenset({Stage.ARCHIVED, Stage.STAGING}),
    # Archived → Production happens only through a rollback.
    Stage.ARCHIVED: frozenset({Stage.PRODUCTION}),
}


@dataclass(frozen=True, slots=True)
class Lineage:
    """Where a version came from, enough to reproduce it."""

    job_id: str
    algorithm: str
    hyperparameters: dict[str, float]
    data_start: float
    data_end: float
    data_points: int
    data_hash: str
    package_version: str
    # The training-data snapshot's key in the artifact store (None: not kept).
    data_snapshot: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "algorithm": self.algorithm,
            "hyperparameters": self.hyperparameters,
            "data_window": {"start": self.data_start, "end": self.data_end},
            "data_points": self.data_points,
            "data_hash": self.data_hash,
            "package_version": self.package_version,
            "data_snapshot": self.data_snapshot,
        }


@dataclass(frozen=True, slots=True)
class ModelVersion:
    series_id: str
    version: int
    stage: Stage
    algorithm: str
    params: ModelParams
    lineage: Lineage
    created_at: datetime
    # Training figures; `auto` adds its choice and why (auto_chosen, auto_reason).
    metrics: dict[str, float | str] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)
    # A seasonal model's phases (its base is params.center); None: a flat band.
    band: PhaseBand | None = None
    # A sensor model (series_id is then the sensor's id); None: a series model.
    sensor: StoredSensor | None = None
    # A heavy model's key in the artifact store (an isolation forest's trees).
    artifact: str | None = None
    # The longest run of one value served readings may have (`auto`'s stuck
    # guard, `core.detectors.stuck`); 0: none.
    stuck_after: int = 0
    # A streaming model's params and state after training, packed
    # (`core.detectors.stream_families`); None: not a streaming model.
    stream: bytes | None = None


def served_band(model: ModelVersion) -> PhaseBand:
    """The band `model` scores with: its phases, or its flat band."""
    return model.band if model.band is not None else flat_band(model.params)


@dataclass(frozen=True, slots=True)
class StageChange:
    """One line of the promotion ledger to be."""

    series_id: str
    version: int
    from_stage: Stage | None
    to_stage: Stage


@dataclass(frozen=True, slots=True)
class RegistryNotice:
    """A registry change as announced to inference replicas: `event` (promoted,
    rolled_back, ...) left `version` in `stage` (the stage of its last move)."""

    series_id: str
    version: int
    stage: str
    event: str


def check_transition(series_id: str, version: int, src: Stage, dst: Stage) -> None:
    if dst not in _LEGAL[src]:
        raise VersionNotPromotable(
            f"{series_id} v{version} cannot move from {src} to {dst}"
        )


def _checked(changes: list[StageChange]) -> list[StageChange]:
    """`changes`, once each has passed the table of legal transitions."""
    for c in changes:
        if c.from_stage is not None:
            check_transition(c.series_id, c.version, c.from_stage, c.to_stage)
    return changes


def plan_direct_promotion(
    candidate: ModelVersion, current: ModelVersion | None, *, archive_existing: bool
) -> list[StageChange]:
    """Stage changes that make `candidate` the Production version.

    Only a Staging version can be promoted. The current Production version is
    archived, or sent back to Staging when `archive_existing` is false.
    """
    if candidate.stage is not Stage.STAGING:
        raise VersionNotPromotable(
            f"{candidate.series_id} v{candidate.version} is {candidate.stage}; "
            "only a staging version can be promoted"
        )
    changes = []
    if current is not None:
        retired = Stage.ARCHIVED if archive_existing else Stage.STAGING
        changes.append(
            StageChange(current.series_id, current.version, Stage.PRODUCTION, retired)
        )
    changes.append(
        StageChange(
            candidate.series_id, candidate.version, Stage.STAGING, Stage.PRODUCTION
        )
    )
    return _checked(changes)


def plan_rollback(
    current: ModelVersion | None,
    past_production: Sequence[ModelVersion],
) -> list[StageChange]:
    """Stage changes that put back the version that was in Production before `current`.

    `past_production` lists versions that were once Production, most recent first.
    """
    if current is None:
        raise NothingToRollBack("no production version to roll back from")
    series_id = current.series_id
    for previous in past_production:
        if (
            previous.version != current.version
            and previous.stage is not Stage.PRODUCTION
        ):
            return _checked(
                [
                    StageChange(
                        series_id, current.version, Stage.PRODUCTION, Stage.ARCHIVED
                    ),
                    StageChange(
                        series_id, previous.version, previous.stage, Stage.PRODUCTION
                    ),
                ]
            )
    raise NothingToRollBack(
        f"{series_id} v{current.version} is the first production version; "
        "there is nothing to roll back to"
    )
