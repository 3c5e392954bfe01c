"""What inference reads and writes in the database (`core.ports.ServingStore`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import (
    AnomalyLog,
    IncidentStore,
    ModelStore,
    ReadingStore,
    RolloutStore,
    RollupStore,
    SignalLogs,
)
from atalaia.core.incidents import Recovery
from atalaia.core.series import FloatArray, Readings
from atalaia.core.serving import (
    FleetModels,
    RolloutCounts,
    Rollups,
    ScoredAnomaly,
    SeriesHistory,
    SeriesModels,
)

IntArray = npt.NDArray[np.int64]


class DatabaseServingStore:
    """The registry's production models, the series' statistics and the
    prediction rollups, one session (transaction) per call."""

    def __init__(self, sessions: Callable[[], AbstractContextManager[Session]]):
        self._sessions = sessions

    def load_fleet(self) -> FleetModels:
        with self._sessions() as session:
            models = ModelStore(session)
            cursor = models.latest_seq()
            served = models.served_columns()
            sensors = models.served_sensors()
            rollouts = RolloutStore(session).served()
            ids, means, stds = ReadingStore(session).all_statistics()
        history = SeriesHistory(ids, means, stds)
        return FleetModels(cursor, served, history, sensors, rollouts)

    def load_series(self, series_ids: Sequence[str]) -> SeriesModels:
        with self._sessions() as session:
            models = ModelStore(session)
            served = models.served_models(series_ids)
            sensors = models.served_sensors(series_ids)
            rollouts = RolloutStore(session).served(series_ids)
            history = list(ReadingStore(session).summaries(series_ids).values())
        return SeriesModels(
            served,
            SeriesHistory(
                [s.series_id for s in history],
                np.array([s.mean for s in history], np.float64),
                np.array([s.std for s in history], np.float64),
            ),
            sensors,
            rollouts,
        )

    def changed_since(self, cursor: int, *, since: datetime) -> tuple[int, set[str]]:
        with self._sessions() as session:
            return ModelStore(session).changed_since(cursor, since=since)

    def newest_readings(
        self, series_ids: Sequence[str], after: FloatArray, depth: IntArray
    ) -> dict[str, Readings]:
        with self._sessions() as session:
            return ReadingStore(session).newest_after(series_ids, after, depth)

    def add_rollups(self, rollups: Rollups) -> None:
        with self._sessions() as session:
            RollupStore(session).add(rollups)
            session.commit()

    def add_rollout_counts(self, counts: RolloutCounts) -> None:
        with self._sessions() as session:
            RolloutStore(session).add_counts(counts)
            session.commit()

    def add_signals(
        self, anomalies: Sequence[ScoredAnomaly], recoveries: Sequence[Recovery]
    ) -> None:
        with self._sessions() as session:
            AnomalyLog(session).append(anomalies)
            SignalLogs(session).add_recoveries(recoveries)
            session.commit()

    def live_series(self) -> list[str]:
        with self._sessions() as session:
            return IncidentStore(session).live_series()
