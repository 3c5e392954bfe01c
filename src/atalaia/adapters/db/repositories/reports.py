"""What a report reads of a period, for the whole fleet or some of its series:
anomaly rates from the hourly rollups, the ledger's moves, the Production
versions by algorithm, the drift events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories.models import LedgerEntry, _entry
from atalaia.adapters.db.tables import (
    HealingActionRow,
    PlatformEventRow,
    PredictionRollupRow,
    RegistryEventRow,
    SeriesRow,
    VersionRow,
)
from atalaia.core.registry import Stage

DRIFT_EVENT = "model.drift"


class SeriesRate(NamedTuple):
    series_id: str
    predictions: int
    anomalies: int

    @property
    def rate(self) -> float:
        return self.anomalies / self.predictions if self.predictions else 0.0


class HourRate(NamedTuple):
    bucket: datetime
    predictions: int
    anomalies: int


class HealingCount(NamedTuple):
    rule: str
    action: str
    outcome: str
    decisions: int


class DriftEvent(NamedTuple):
    at: float
    series: list[str]


class ReportQueries:
    """Reads over [start, end) of the series `series` selects or lists (None:
    every one)."""

    def __init__(
        self, session: Session, series: Select[Any] | Sequence[str] | None = None
    ) -> None:
        self.session = session
        self.series = series

    def series_count(self) -> int:
        """How many series it covers (of those stored)."""
        stmt = select(func.count()).select_from(SeriesRow)
        if self.series is not None:
            stmt = stmt.where(SeriesRow.series_id.in_(self.series))
        return int(self.session.scalar(stmt) or 0)

    def top_rates(self, start: datetime, end: datetime, limit: int) -> list[SeriesRate]:
        """The `limit` series of highest anomaly rate in the period (of those
        with an anomaly)."""
        row = PredictionRollupRow
        predictions, anomalies = func.sum(row.predictions), func.sum(row.anomalies)
        stmt = (
            select(row.series_id, predictions, anomalies)
            .where(*self._rollups(start, end))
            .group_by(row.series_id)
            .having(anomalies > 0)
            .order_by((anomalies * 1.0 / predictions).desc(), row.series_id)
            .limit(limit)
        )
        return [SeriesRate(s, int(p), int(a)) for s, p, a in self.session.execute(stmt)]

    def hourly(self, start: datetime, end: datetime) -> list[HourRate]:
        """Predictions and anomalies of the selected series, hour by hour."""
        row = PredictionRollupRow
        stmt = (
            select(row.bucket, func.sum(row.predictions), func.sum(row.anomalies))
            .where(*self._rollups(start, end))
            .group_by(row.bucket)
            .order_by(row.bucket)
        )
        return [HourRate(b, int(p), int(a)) for b, p, a in self.session.execute(stmt)]

    def _rollups(self, start: datetime, end: datetime) -> list[Any]:
        row = PredictionRollupRow
        hour = start.replace(minute=0, second=0, microsecond=0)
        where = [row.bucket >= hour, row.bucket < end]
        if self.series is not None:
            where.append(row.series_id.in_(self.series))
        return where

    def moves(self, start: datetime, end: datetime, limit: int) -> list[LedgerEntry]:
        """The ledger's entries of the period that moved a version between
        stages (not registrations, not a rollout's steps), oldest first."""
        e = RegistryEventRow
        stmt = (
            select(e)
            .where(
                e.at >= start, e.at < end, e.from_stage.is_not(None),
                e.from_stage != e.to_stage,
            )
            .order_by(e.seq)
            .limit(limit)
        )  # fmt: skip
        if self.series is not None:
            stmt = stmt.where(e.series_id.in_(self.series))
        return [_entry(row) for row in self.session.scalars(stmt)]

    def production_by_algorithm(self) -> dict[str, int]:
        """How many series have a Production version, by its algorithm (now)."""
        v = VersionRow
        stmt = (
            select(v.algorithm, func.count())
            .where(v.stage == Stage.PRODUCTION.value)
            .group_by(v.algorithm)
            .order_by(v.algorithm)
        )
        if self.series is not None:
            stmt = stmt.where(v.series_id.in_(self.series))
        return {a: int(n) for a, n in self.session.execute(stmt)}

    def healing(self, start: datetime, end: datetime) -> list[HealingCount]:
        """The self-healing engine's decisions of the period (on the selected
        series), by rule, action and outcome."""
        h = HealingActionRow
        stmt = (
            select(h.rule, h.action, h.outcome, func.count())
            .where(h.at >= start, h.at < end)
            .group_by(h.rule, h.action, h.outcome)
            .order_by(h.rule, h.action, h.outcome)
        )
        if self.series is not None:
            stmt = stmt.where(h.target.in_(self.series))
        return [HealingCount(*row) for row in self.session.execute(stmt)]

    def drift(self, start: float, end: float, limit: int) -> list[DriftEvent]:
        """The drift checks of the period that found drift, and the series
        they named (of the selected ones), oldest first."""
        p = PlatformEventRow
        stmt = (
            select(p.at, p.document)
            .where(p.event == DRIFT_EVENT, p.at >= start, p.at < end)
            .order_by(p.at)
            .limit(limit)
        )
        found = [
            DriftEvent(at, list(doc.get("series", [])))
            for at, doc in self.session.execute(stmt)
        ]
        if self.series is None:
            return found
        chosen = (
            set(self.session.scalars(self.series))
            if isinstance(self.series, Select)
            else set(self.series)
        )
        kept = [DriftEvent(d.at, [s for s in d.series if s in chosen]) for d in found]
        return [d for d in kept if d.series]
