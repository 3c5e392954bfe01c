"""Model versions, stage changes and the promotion ledger (also the change feed)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import starmap
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import Select, func, select, union_all, update
from sqlalchemy.orm import Session, aliased

from atalaia.adapters.db.repositories._columns import fetch_columns
from atalaia.adapters.db.tables import (
    RegistryEventRow,
    SeriesRow,
    VersionRow,
    utcnow,
)
from atalaia.core.detectors import ModelParams
from atalaia.core.detectors.bands import SERVED_ALGORITHMS
from atalaia.core.detectors.phases import PhaseBand
from atalaia.core.registry import Lineage, ModelVersion, Stage, StageChange
from atalaia.core.sensors import StoredSensor
from atalaia.core.serving import ServedColumns, ServedModel, ServedSensor
from atalaia.errors import VersionNotFound


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    seq: int
    series_id: str
    version: int
    from_stage: Stage | None
    to_stage: Stage
    actor: str
    reason: str
    at: datetime
    evidence: dict[str, Any] | None = None  # the figures a rollout decided on


@dataclass(frozen=True, slots=True)
class StagingCandidate:
    """A Staging version newer than its series' Production one (or of a series
    with none): waiting for a promotion."""

    series_id: str
    version: int
    algorithm: str
    created_at: datetime
    metrics: dict[str, float | str]


def _lineage(data: dict[str, Any]) -> Lineage:
    window = data["data_window"]
    return Lineage(
        job_id=data["job_id"],
        algorithm=data["algorithm"],
        hyperparameters=dict(data["hyperparameters"]),
        data_start=window["start"],
        data_end=window["end"],
        data_points=data["data_points"],
        data_hash=data["data_hash"],
        package_version=data["package_version"],
        data_snapshot=data.get("data_snapshot"),
    )


def _version(row: VersionRow) -> ModelVersion:
    return ModelVersion(
        series_id=row.series_id,
        version=row.version,
        stage=Stage(row.stage),
        algorithm=row.algorithm,
        params=ModelParams(row.center, row.scale, row.threshold),
        lineage=_lineage(row.lineage),
        created_at=row.created_at,
        metrics=dict(row.metrics),
        reference=dict(row.reference),
        band=PhaseBand.from_bytes(row.center, row.band) if row.band else None,
        sensor=StoredSensor.from_bytes(row.sensor) if row.sensor else None,
        artifact=row.artifact,
        stuck_after=row.stuck_after,
        stream=row.stream,
    )


def _version_row(model: ModelVersion) -> VersionRow:
    return VersionRow(
        series_id=model.series_id,
        version=model.version,
        stage=model.stage.value,
        algorithm=model.algorithm,
        center=model.params.center,
        scale=model.params.scale,
        threshold=model.params.threshold,
        band=model.band.to_bytes() if model.band else None,
        sensor=model.sensor.to_bytes() if model.sensor else None,
        artifact=model.artifact,
        stuck_after=model.stuck_after,
        stream=model.stream,
        metrics=model.metrics,
        reference=model.reference,
        lineage=model.lineage.as_dict(),
        job_id=model.lineage.job_id,
        created_at=model.created_at,
    )


class StageMove(NamedTuple):
    """A ledger entry, as much of it as counting the moves needs."""

    seq: int
    from_stage: Stage | None  # None: a new version
    to_stage: Stage
    at: datetime


def _entry(row: RegistryEventRow) -> LedgerEntry:
    return LedgerEntry(
        row.seq, row.series_id, row.version,
        Stage(row.from_stage) if row.from_stage else None, Stage(row.to_stage),
        row.actor, row.reason, row.at, row.evidence,
    )  # fmt: skip


# A version's served fields, in the field order of ServedModel and ServedColumns.
SERVED_FIELDS = (
    VersionRow.series_id,
    VersionRow.version,
    VersionRow.algorithm,
    VersionRow.center,
    VersionRow.scale,
    VersionRow.threshold,
    VersionRow.band,
    VersionRow.artifact,
    VersionRow.stuck_after,
    VersionRow.stream,
)
# Production versions.
_SERVED = select(*SERVED_FIELDS).where(
    VersionRow.stage == Stage.PRODUCTION.value,
    VersionRow.algorithm.in_(SERVED_ALGORITHMS),  # the model table's; not sensors'
)


class ModelStore:
    def __init__(self, session: Session) -> None:
        self.session = session

    def by_jobs(self, job_ids: Sequence[str]) -> dict[str, ModelVersion]:
        """The versions trained by any of `job_ids`, by job id."""
        stmt = select(VersionRow).where(VersionRow.job_id.in_(job_ids))
        return {row.job_id: _version(row) for row in self.session.scalars(stmt)}

    def latest_versions(self, series_ids: Sequence[str]) -> dict[str, int]:
        """The highest version number of each series that has one."""
        stmt = (
            select(VersionRow.series_id, func.max(VersionRow.version))
            .where(VersionRow.series_id.in_(series_ids))
            .group_by(VersionRow.series_id)
        )
        return {sid: int(latest) for sid, latest in self.session.execute(stmt)}

    def add(self, model: ModelVersion, *, actor: str) -> None:
        """Register a new version and write its arrival to the ledger."""
        self.add_many([(model, actor)])

    def add_many(self, registered: Sequence[tuple[ModelVersion, str]]) -> None:
        """Register new versions, each with who asked for it, and log each arrival."""
        self.session.add_all(_version_row(model) for model, _ in registered)
        for model, actor in registered:
            change = StageChange(model.series_id, model.version, None, model.stage)
            reason = f"trained by job {model.lineage.job_id}"
            self._log(change, actor=actor, reason=reason)

    def lock_series(self, series_id: str) -> None:
        """Hold the series' versions until the transaction ends, so that stage
        changes of one series run one after the other and plan from what the
        previous one left: PostgreSQL locks the rows in version order (no
        deadlock between two lockers), SQLite takes its one write lock."""
        series = VersionRow.series_id == series_id
        if self.session.get_bind().dialect.name == "postgresql":
            by_version = (
                select(VersionRow.id).where(series).order_by(VersionRow.version)
            )
            self.session.execute(by_version.with_for_update())
        else:
            self.session.execute(
                update(VersionRow).where(series).values(stage=VersionRow.stage),
                execution_options={"synchronize_session": False},
            )

    def get(self, series_id: str, version: int) -> ModelVersion:
        row = self.session.scalars(
            select(VersionRow).where(
                VersionRow.series_id == series_id, VersionRow.version == version
            )
        ).one_or_none()
        if row is None:
            raise VersionNotFound(series_id, version)
        return _version(row)

    def versions(self, series_id: str) -> list[ModelVersion]:
        stmt = (
            select(VersionRow)
            .where(VersionRow.series_id == series_id)
            .order_by(VersionRow.version.desc())
        )
        return [_version(row) for row in self.session.scalars(stmt)]

    def production(self, series_id: str) -> ModelVersion | None:
        row = self.session.scalars(
            select(VersionRow).where(
                VersionRow.series_id == series_id,
                VersionRow.stage == Stage.PRODUCTION.value,
            )
        ).one_or_none()
        return _version(row) if row is not None else None

    def production_series(self, *, reporting_since: float | None = None) -> list[str]:
        """Ids of the series with a Production version, in id order; with
        `reporting_since` (epoch s), only those with a reading at or after it."""
        stmt = (
            select(VersionRow.series_id)
            .where(VersionRow.stage == Stage.PRODUCTION.value)
            .order_by(VersionRow.series_id)
        )
        if reporting_since is not None:
            stmt = stmt.join(
                SeriesRow, SeriesRow.series_id == VersionRow.series_id
            ).where(SeriesRow.last_ts >= reporting_since)
        return list(self.session.scalars(stmt))

    def production_versions(self, series_ids: Sequence[str]) -> list[ModelVersion]:
        """The Production versions of those of `series_ids` that have one."""
        stmt = select(VersionRow).where(
            VersionRow.series_id.in_(series_ids),
            VersionRow.stage == Stage.PRODUCTION.value,
        )
        return [_version(row) for row in self.session.scalars(stmt)]

    def summaries(
        self, *, prefix: str | None = None, after: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Per series: number of versions, latest version, production version."""
        production = func.max(VersionRow.version).filter(
            VersionRow.stage == Stage.PRODUCTION.value
        )
        stmt = (
            select(
                VersionRow.series_id,
                func.count(),
                func.max(VersionRow.version),
                production,
            )
            .group_by(VersionRow.series_id)
            .order_by(VersionRow.series_id)
            .limit(limit)
        )
        if prefix:
            stmt = stmt.where(VersionRow.series_id.startswith(prefix, autoescape=True))
        if after:
            stmt = stmt.where(VersionRow.series_id > after)
        return [
            {
                "series_id": sid,
                "versions": int(count),
                "latest_version": int(latest),
                "production_version": prod,
            }
            for sid, count, latest, prod in self.session.execute(stmt)
        ]

    def served_models(
        self, series_ids: Iterable[str] | None = None
    ) -> list[ServedModel]:
        """Production versions of every series (or of `series_ids`), in one query."""
        stmt = _SERVED
        if series_ids is not None:
            stmt = stmt.where(VersionRow.series_id.in_(list(series_ids)))
        return list(starmap(ServedModel, self.session.execute(stmt)))

    def served_sensors(
        self, sensor_ids: Iterable[str] | None = None
    ) -> list[ServedSensor]:
        """Production sensor models (of every sensor, or of `sensor_ids`)."""
        stmt = select(
            VersionRow.series_id, VersionRow.version, VersionRow.sensor
        ).where(
            VersionRow.stage == Stage.PRODUCTION.value, VersionRow.sensor.is_not(None)
        )
        if sensor_ids is not None:
            stmt = stmt.where(VersionRow.series_id.in_(list(sensor_ids)))
        return [
            ServedSensor(sensor_id, version, StoredSensor.from_bytes(data))
            for sensor_id, version, data in self.session.execute(stmt)
            if data is not None
        ]

    def served_columns(self) -> ServedColumns:
        """Every production version as columns, in one query: the warm load."""
        kinds = (
            str, np.int64, str, np.float64, np.float64, np.float64, bytes, str,
            np.int32, bytes,
        )  # fmt: skip
        return ServedColumns(*fetch_columns(self.session, _SERVED, kinds))

    def past_production(self, series_id: str) -> list[ModelVersion]:
        """Versions that were once Production, most recently promoted first."""
        promoted = (
            select(
                RegistryEventRow.version, func.max(RegistryEventRow.seq).label("seq")
            )
            .where(
                RegistryEventRow.series_id == series_id,
                RegistryEventRow.to_stage == Stage.PRODUCTION.value,
            )
            .group_by(RegistryEventRow.version)
            .subquery()
        )
        stmt = (
            select(VersionRow)
            .join(promoted, promoted.c.version == VersionRow.version)
            .where(VersionRow.series_id == series_id)
            .order_by(promoted.c.seq.desc())
        )
        return [_version(row) for row in self.session.scalars(stmt)]

    def apply(
        self,
        changes: Sequence[StageChange],
        *,
        actor: str,
        reason: str,
        evidence: dict[str, Any] | None = None,
    ) -> None:
        """Move versions between stages and append each move to the ledger
        (with the figures it was decided on, if any)."""
        for change in changes:
            self.session.execute(
                update(VersionRow)
                .where(
                    VersionRow.series_id == change.series_id,
                    VersionRow.version == change.version,
                )
                .values(stage=change.to_stage.value)
            )
            self._log(change, actor=actor, reason=reason, evidence=evidence)

    def note(
        self,
        series_id: str,
        version: int,
        stage: Stage,
        *,
        actor: str,
        reason: str,
        evidence: dict[str, Any],
    ) -> None:
        """Append to the ledger a decision about a version that leaves it in its
        stage (a rollout's step): inference reads the series again too."""
        self._log(
            StageChange(series_id, version, stage, stage),
            actor=actor, reason=reason, evidence=evidence,
        )  # fmt: skip

    def _log(
        self,
        change: StageChange,
        *,
        actor: str,
        reason: str,
        evidence: dict[str, Any] | None = None,
    ) -> None:
        self.session.add(
            RegistryEventRow(
                series_id=change.series_id,
                version=change.version,
                from_stage=change.from_stage.value if change.from_stage else None,
                to_stage=change.to_stage.value,
                actor=actor,
                reason=reason[:512],
                at=utcnow(),
                evidence=evidence,
            )
        )

    def ledger(self, series_id: str) -> list[LedgerEntry]:
        stmt = (
            select(RegistryEventRow)
            .where(RegistryEventRow.series_id == series_id)
            .order_by(RegistryEventRow.seq)
        )
        return [_entry(row) for row in self.session.scalars(stmt)]

    def stage_counts(self) -> dict[Stage, int]:
        """How many versions each stage holds (a scan of the stage index)."""
        stmt = select(VersionRow.stage, func.count()).group_by(VersionRow.stage)
        return {Stage(stage): int(n) for stage, n in self.session.execute(stmt)}

    def moves_since(self, at: datetime) -> list[StageMove]:
        """The ledger's entries written at or after `at`, in ledger order."""
        e = RegistryEventRow
        stmt = (
            select(e.seq, e.from_stage, e.to_stage, e.at)
            .where(e.at >= at)
            .order_by(e.seq)
        )
        return [
            StageMove(seq, Stage(before) if before else None, Stage(after), when)
            for seq, before, after, when in self.session.execute(stmt)
        ]

    def stage_algorithm_counts(self) -> dict[tuple[Stage, str], int]:
        """How many versions each (stage, algorithm) holds, in one pass (a scan
        of the (stage, algorithm) index)."""
        stmt = select(VersionRow.stage, VersionRow.algorithm, func.count()).group_by(
            VersionRow.stage, VersionRow.algorithm
        )
        return {
            (Stage(stage), algorithm): int(n)
            for stage, algorithm, n in self.session.execute(stmt)
        }

    def staging_candidates(self, *, limit: int) -> list[StagingCandidate]:
        """The `limit` newest Staging versions newer than their series'
        Production version (or of a series without one), newest first."""
        production = aliased(VersionRow)
        stmt = (
            select(
                VersionRow.series_id,
                VersionRow.version,
                VersionRow.algorithm,
                VersionRow.created_at,
                VersionRow.metrics,
            )
            .outerjoin(
                production,
                (production.series_id == VersionRow.series_id)
                & (production.stage == Stage.PRODUCTION.value),
            )
            .where(
                VersionRow.stage == Stage.STAGING.value,
                production.version.is_(None)
                | (VersionRow.version > production.version),
            )
            .order_by(VersionRow.id.desc())  # ids follow registration
            .limit(limit)
        )
        return [
            StagingCandidate(sid, version, algorithm, created, dict(metrics))
            for sid, version, algorithm, created, metrics in self.session.execute(stmt)
        ]

    def recent_changes(
        self, *, limit: int, moves: Sequence[tuple[Stage, Stage]] = ()
    ) -> list[LedgerEntry]:
        """The `limit` newest ledger entries of every series, newest first; only
        those of the (from, to) stage `moves` when given: the newest of each
        move from the move index, then the newest of those."""
        stmt = (
            select(RegistryEventRow).order_by(RegistryEventRow.seq.desc()).limit(limit)
        )
        if moves:
            newest = union_all(*(_newest_of(move, limit) for move in moves))
            stmt = stmt.where(RegistryEventRow.seq.in_(newest))
        return [_entry(row) for row in self.session.scalars(stmt)]

    def latest_seq(self) -> int:
        return int(self.session.scalar(select(func.max(RegistryEventRow.seq))) or 0)

    def changed_since(
        self, seq: int, *, since: datetime | None = None
    ) -> tuple[int, set[str]]:
        """(newest seq, series in ledger entries after `seq` or at/after `since`)."""
        newer = RegistryEventRow.seq > seq
        if since is not None:
            newer = newer | (RegistryEventRow.at >= since)
        rows = self.session.execute(
            select(RegistryEventRow.seq, RegistryEventRow.series_id).where(newer)
        ).all()
        if not rows:
            return seq, set()
        return max(seq, max(r[0] for r in rows)), {sid for _, sid in rows}


def _newest_of(move: tuple[Stage, Stage], limit: int) -> Select[tuple[int]]:
    """The seqs of the `limit` newest ledger entries of one (from, to) move."""
    src, dst = move
    newest = (
        select(RegistryEventRow.seq)
        .where(
            RegistryEventRow.from_stage == src.value,
            RegistryEventRow.to_stage == dst.value,
        )
        .order_by(RegistryEventRow.seq.desc())
        .limit(limit)
        .subquery()
    )
    return select(newest.c.seq)
