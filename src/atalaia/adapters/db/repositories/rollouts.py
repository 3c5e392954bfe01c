"""Rollouts (canaries and shadows) and the counters inference adds to them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories.models import SERVED_FIELDS
from atalaia.adapters.db.tables import RolloutRow, VersionRow, rollout_figures, utcnow
from atalaia.core.rollout import COUNTERS, CanaryPlan, Gates, Rollout, State
from atalaia.core.serving import RolloutCounts, ServedModel, ServedRollout
from atalaia.errors import RolloutNotFound


def _rollout(row: RolloutRow) -> Rollout:
    return Rollout(
        id=row.id,
        series_id=row.series_id,
        strategy=row.strategy,
        candidate=row.candidate_version,
        production=row.production_version,
        percentage=row.percentage,
        plan=CanaryPlan(
            row.initial_percentage, row.increment_percentage, row.interval_s
        ),  # fmt: skip
        gates=Gates(**row.gates),
        then=row.then,
        state=State(row.state),
        started_at=row.started_at,
        next_step_at=row.next_step_at,
        ended_at=row.ended_at,
        actor=row.actor,
        reason=row.reason,
        outcome=row.outcome,
        evidence=dict(row.evidence),
    )


class NewRollout(NamedTuple):
    """A rollout to start."""

    series_id: str
    strategy: str
    candidate: int
    production: int
    percentage: float
    plan: CanaryPlan
    gates: Gates
    then: str
    next_step_at: datetime
    actor: str
    reason: str


def _columns(new: NewRollout, now: datetime) -> dict[str, Any]:
    """The row of a rollout `new` started `now`."""
    return {
        "series_id": new.series_id, "strategy": new.strategy,
        "candidate_version": new.candidate, "production_version": new.production,
        "percentage": new.percentage, "initial_percentage": new.plan.initial,
        "increment_percentage": new.plan.increment, "interval_s": new.plan.interval_s,
        "gates": asdict(new.gates), "then": new.then, "state": State.RUNNING.value,
        "live_key": new.series_id, "started_at": now,
        "next_step_at": new.next_step_at, "actor": new.actor,
        "reason": new.reason[:512], "outcome": "", "evidence": {},
    }  # fmt: skip


class RolloutStore:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, new: NewRollout) -> Rollout:
        """A new running rollout (the caller holds the series' lock)."""
        row = RolloutRow(**_columns(new, utcnow()))
        self.session.add(row)
        self.session.flush()
        return _rollout(row)

    def add_many(self, news: Sequence[NewRollout], *, at: datetime) -> list[Rollout]:
        """New running rollouts started `at`, in one statement (the caller
        holds their series' versions)."""
        rows = [_columns(new, at) for new in news]
        stmt = insert(RolloutRow).returning(RolloutRow)
        return [_rollout(row) for row in self.session.scalars(stmt, rows)]

    def get(self, rollout_id: int) -> Rollout:
        row = self.session.get(RolloutRow, rollout_id)
        if row is None:
            raise RolloutNotFound(rollout_id)
        return _rollout(row)

    def running(self, series_id: str) -> Rollout | None:
        """The series' running rollout, if it has one."""
        row = self.session.scalar(
            select(RolloutRow).where(RolloutRow.live_key == series_id)
        )
        return _rollout(row) if row is not None else None

    def running_among(self, series_ids: Sequence[str]) -> set[str]:
        """Those of `series_ids` with a rollout running."""
        stmt = select(RolloutRow.live_key).where(
            RolloutRow.live_key.in_(list(series_ids))
        )
        return {key for key in self.session.scalars(stmt) if key is not None}

    def all_running(self) -> list[Rollout]:
        stmt = select(RolloutRow).where(RolloutRow.state == State.RUNNING.value)
        return [_rollout(row) for row in self.session.scalars(stmt.order_by("id"))]

    def page(
        self,
        *,
        series_id: str | None = None,
        strategy: str | None = None,
        states: Sequence[State] | None = None,
        before: int | None = None,
        limit: int = 100,
    ) -> list[Rollout]:
        """Rollouts newest first, from before the id `before`."""
        stmt = select(RolloutRow).order_by(RolloutRow.id.desc()).limit(limit)
        if series_id is not None:
            stmt = stmt.where(RolloutRow.series_id == series_id)
        if strategy is not None:
            stmt = stmt.where(RolloutRow.strategy == strategy)
        if states is not None:
            stmt = stmt.where(RolloutRow.state.in_([s.value for s in states]))
        if before is not None:
            stmt = stmt.where(RolloutRow.id < before)
        return [_rollout(row) for row in self.session.scalars(stmt)]

    def moved(
        self,
        rollout_id: int,
        *,
        percentage: float,
        next_step_at: datetime,
        evidence: dict[str, float],
    ) -> None:
        """A running rollout's new share, next step and latest figures."""
        self.session.execute(
            update(RolloutRow)
            .where(RolloutRow.id == rollout_id)
            .values(
                percentage=percentage, next_step_at=next_step_at, evidence=evidence
            )  # fmt: skip
        )

    def ended(
        self,
        rollout_id: int,
        state: State,
        *,
        outcome: str,
        evidence: dict[str, float],
        percentage: float | None = None,
    ) -> None:
        values: dict[str, Any] = {
            "state": state.value, "live_key": None, "ended_at": utcnow(),
            "outcome": outcome[:1024], "evidence": evidence,
        }  # fmt: skip
        if percentage is not None:
            values["percentage"] = percentage
        self.session.execute(
            update(RolloutRow).where(RolloutRow.id == rollout_id).values(**values)
        )

    def counts(self, rollout_ids: Iterable[int]) -> dict[int, dict[str, float]]:
        """Each rollout's counters added up so far (none: no answer counted)."""
        ids = list(rollout_ids)
        if not ids:
            return {}
        stmt = select(rollout_figures).where(rollout_figures.c.rollout_id.in_(ids))
        return {
            row.rollout_id: {name: float(getattr(row, name)) for name in COUNTERS}
            for row in self.session.execute(stmt)
        }

    def add_counts(self, counts: RolloutCounts) -> None:
        """Add a flush's counters into their rollouts' rows (created as needed).
        Those of a rollout gone since (deleted) are dropped with it."""
        if not len(counts):
            return
        known = set(
            self.session.scalars(
                select(RolloutRow.id).where(RolloutRow.id.in_(counts.rollout_ids))
            )
        )
        now = utcnow()
        rows = [
            {
                "rollout_id": rid,
                "updated_at": now,
                **dict(zip(COUNTERS, row, strict=True)),
            }
            for rid, row in zip(counts.rollout_ids, counts.counts.tolist(), strict=True)
            if rid in known
        ]
        if not rows:
            return
        dialect = self.session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        stmt = insert(rollout_figures)
        added = {
            name: getattr(rollout_figures.c, name) + getattr(stmt.excluded, name)
            for name in COUNTERS
        }
        self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=["rollout_id"],
                set_={**added, "updated_at": stmt.excluded.updated_at},
            ),
            rows,
        )

    def served(self, series_ids: Sequence[str] | None = None) -> list[ServedRollout]:
        """The running rollouts (of every series, or of `series_ids`) as
        inference serves them, their candidates' models read with them."""
        rollout = RolloutRow
        stmt = (
            select(
                rollout.id,
                rollout.strategy,
                rollout.percentage,
                rollout.gates,
                *SERVED_FIELDS,
            )  # fmt: skip
            .join(
                VersionRow,
                (VersionRow.series_id == rollout.series_id)
                & (VersionRow.version == rollout.candidate_version),
            )
            .where(rollout.state == State.RUNNING.value)
        )
        if series_ids is not None:
            stmt = stmt.where(rollout.series_id.in_(list(series_ids)))
        return [
            ServedRollout(
                rid,
                strategy,
                percentage / 100.0,
                Gates(**gates).max_p99_ms,
                ServedModel(*served),
            )  # fmt: skip
            for rid, strategy, percentage, gates, *served in self.session.execute(stmt)
        ]
