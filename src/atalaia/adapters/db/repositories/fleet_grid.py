"""What the fleet's grid is made of (`services.fleet_grid`), in a few set-based
queries over the whole fleet: none per series."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import case, func, literal, select
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories._columns import fetch_columns
from atalaia.adapters.db.tables import (
    AuditRow,
    IncidentRow,
    PlatformEventRow,
    PredictionRollupRow,
    RegistryEventRow,
    ScoredAnomalyRow,
    SeriesRow,
    VersionRow,
)
from atalaia.core.incidents import SEVERITIES
from atalaia.core.registry import Stage

NO_READING = float("-inf")
HOUR_S = 3600.0
# The anomaly log's rows are numbered in commit order, and stamped (`scored_at`)
# just before their writer waits for its turn to append: stamps rise with ids
# but for that wait, which this margin covers.
LOG_SLACK_S = 60.0
_PRODUCTION = Stage.PRODUCTION.value


class FleetGridReads:
    def __init__(self, session: Session) -> None:
        self.session = session

    def newest_readings(self) -> tuple[list[str], npt.NDArray[np.float64]]:
        """Every sensor of the stored series, and its newest reading (epoch
        seconds; NO_READING: none)."""
        newest = func.coalesce(func.max(SeriesRow.last_ts), literal(NO_READING))
        stmt = select(SeriesRow.sensor_id, newest).group_by(SeriesRow.sensor_id)
        sensors, last = fetch_columns(self.session, stmt, (str, np.float64))
        return sensors, last

    def production_series(self) -> list[str]:
        """Every id with a Production version: a series', or a sensor's (a
        sensor model)."""
        stmt = select(VersionRow.series_id).where(VersionRow.stage == _PRODUCTION)
        ids: list[str] = fetch_columns(self.session, stmt, (str,))[0]
        return ids

    def predicted_sensors(self, *, read_before: float, since: float) -> set[str]:
        """The sensors of the series not read since `read_before` (epoch
        seconds) that were predicted lately: a prediction rollup from the hour
        holding `since` on."""
        hour = datetime.fromtimestamp(since // HOUR_S * HOUR_S, UTC)
        rollup = PredictionRollupRow
        stmt = (
            select(SeriesRow.sensor_id)
            .join(rollup, rollup.series_id == SeriesRow.series_id)
            .where(
                (SeriesRow.last_ts < read_before) | SeriesRow.last_ts.is_(None),
                rollup.bucket >= hour,
                rollup.predictions > 0,
            )
            .distinct()
        )
        return set(self.session.scalars(stmt))

    def live_severities(self) -> dict[str, int]:
        """Per sensor with a live incident: the `severity_rank` of its worst."""
        rank = case(
            {severity: rank for rank, severity in enumerate(SEVERITIES)},
            value=IncidentRow.severity,
            else_=0,
        )
        stmt = (
            select(IncidentRow.sensor_id, func.max(rank))
            .where(IncidentRow.live_key.is_not(None))
            .group_by(IncidentRow.sensor_id)
        )
        return {sensor: int(worst) for sensor, worst in self.session.execute(stmt)}

    def anomalous_series(self, *, since: float) -> set[str]:
        """The series with a logged anomaly of a reading at or after `since`
        (epoch seconds), among those logged from LOG_SLACK_S before it on."""
        floor = self._first_logged(datetime.fromtimestamp(since - LOG_SLACK_S, UTC))
        if floor is None:
            return set()
        log = ScoredAnomalyRow
        stmt = select(log.series_id).where(log.id >= floor, log.ts >= since).distinct()
        return set(self.session.scalars(stmt))

    def _first_logged(self, since: datetime) -> int | None:
        """The first id of the anomaly log logged at or after `since` (None:
        none), bisected over the ids by primary-key probes: the stamps rise
        with the ids (see LOG_SLACK_S), and the log holds weeks of rows."""
        log = ScoredAnomalyRow
        bounds = select(func.min(log.id), func.max(log.id))
        low, last = self.session.execute(bounds).one()
        if last is None:
            return None
        high = last + 1  # none logged since
        while low < high:
            middle = (low + high) // 2
            probe = select(log.id, log.scored_at).where(log.id >= middle)
            found, logged = self.session.execute(probe.order_by(log.id).limit(1)).one()
            if logged >= since:
                high = middle
            else:
                low = found + 1
        return low if low <= last else None

    def last_audit(self, actions: Sequence[str]) -> tuple[float, dict[str, Any]] | None:
        """The newest audit entry of any of `actions`: when (epoch seconds), and
        its detail."""
        stmt = (
            select(AuditRow.at, AuditRow.detail)
            .where(AuditRow.action.in_(actions))
            .order_by(AuditRow.at.desc(), AuditRow.id.desc())
            .limit(1)
        )
        row = self.session.execute(stmt).one_or_none()
        return None if row is None else (row.at.timestamp(), dict(row.detail))

    def last_event(self, event: str) -> tuple[float, dict[str, Any]] | None:
        """The newest platform event `event` still logged: when, and its document."""
        stmt = (
            select(PlatformEventRow.at, PlatformEventRow.document)
            .where(PlatformEventRow.event == event)
            .order_by(PlatformEventRow.id.desc())
            .limit(1)
        )
        row = self.session.execute(stmt).one_or_none()
        return None if row is None else (row.at, dict(row.document))

    def production_kept_since(
        self, series_ids: Sequence[str], since: float
    ) -> list[str]:
        """Those of `series_ids` whose Production version already was at
        `since` (epoch seconds): none of theirs went to Production after it."""
        moved = select(RegistryEventRow.series_id).where(
            RegistryEventRow.series_id.in_(series_ids),
            RegistryEventRow.to_stage == _PRODUCTION,
            RegistryEventRow.at > datetime.fromtimestamp(since, UTC),
        )
        stmt = select(VersionRow.series_id).where(
            VersionRow.series_id.in_(series_ids),
            VersionRow.stage == _PRODUCTION,
            VersionRow.series_id.not_in(moved),
        )
        return list(self.session.scalars(stmt))
