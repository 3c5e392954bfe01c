"""A predictor over an in-memory store that fails on demand."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from atalaia.core.incidents import Recovery
from atalaia.core.series import Readings
from atalaia.core.serving import (
    FleetModels,
    RolloutCounts,
    Rollups,
    ScoredAnomaly,
    SeriesHistory,
    SeriesModels,
    ServedColumns,
    ServedModel,
    ServedSensor,
)
from atalaia.services.inference import Predictor, background, follower, health

MODEL = ServedModel("sensor_001_radial", 1, "zscore", 0.0, 1.0, 3.0)


class FakeStore:
    """The registry holds `models`; `failure`, when set, is raised by every call."""

    def __init__(self, models: Sequence[ServedModel] = (MODEL,)) -> None:
        self.models = list(models)
        self.sensors: list[ServedSensor] = []
        self.changed: set[str] = set()  # what the change feed reports next
        self.failure: Exception | None = None
        self.rollups: list[Rollups] = []
        self.rollout_counts: list[RolloutCounts] = []
        self.readings: dict[str, Readings] = {}  # stored, by series
        self.anomalies: list[ScoredAnomaly] = []
        self.recoveries: list[Recovery] = []

    def _check(self) -> None:
        if self.failure is not None:
            raise self.failure

    def load_fleet(self) -> FleetModels:
        self._check()
        m = self.models
        columns = ServedColumns(
            [x.series_id for x in m],
            np.array([x.version for x in m], np.int64),
            [x.algorithm for x in m],
            np.array([x.center for x in m]),
            np.array([x.scale for x in m]),
            np.array([x.threshold for x in m]),
            [x.band for x in m],
            [x.artifact for x in m],
            np.array([x.stuck_after for x in m], np.int32),
            [x.stream for x in m],
        )
        return FleetModels(len(m), columns, _no_history(), list(self.sensors))

    def load_series(self, series_ids: Sequence[str]) -> SeriesModels:
        self._check()
        wanted = set(series_ids)
        return SeriesModels(
            [m for m in self.models if m.series_id in wanted], _no_history()
        )

    def changed_since(
        self,
        cursor: int,
        *,
        since: datetime,  # noqa: ARG002
    ) -> tuple[int, set[str]]:
        self._check()
        changed, self.changed = self.changed, set()
        return cursor + len(changed), changed

    def add_rollups(self, rollups: Rollups) -> None:
        self._check()
        self.rollups.append(rollups)

    def add_rollout_counts(self, counts: RolloutCounts) -> None:
        self._check()
        self.rollout_counts.append(counts)

    def add_signals(
        self, anomalies: Sequence[ScoredAnomaly], recoveries: Sequence[Recovery]
    ) -> None:
        self._check()
        self.anomalies += anomalies
        self.recoveries += recoveries

    def live_series(self) -> list[str]:
        self._check()
        return []

    def newest_readings(
        self, series_ids: Sequence[str], after: np.ndarray, depth: np.ndarray
    ) -> dict[str, Readings]:
        self._check()
        found = {}
        for series_id, t, n in zip(series_ids, after, depth, strict=True):
            stored = self.readings.get(series_id, Readings.of([], []))
            later = stored.timestamps > t
            ts, vs = stored.timestamps[later][-n:], stored.values[later][-n:]
            if ts.size:
                found[series_id] = Readings(ts, vs)
        return found


def _no_history() -> SeriesHistory:
    return SeriesHistory([], np.zeros(0), np.zeros(0))


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def predictor(store: FakeStore, tmp_path: Path) -> Predictor:
    return Predictor(
        store, snapshot_path=tmp_path / "snapshot.npz", poll_s=0.01, retry_s=0.05
    )


class LogRecorder:
    """Stands for a module's structlog logger: keeps (level, event, fields)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, object]]] = []

    def events(self, level: str | None = None) -> list[str]:
        return [e for lvl, e, _ in self.records if level in (None, lvl)]

    def info(self, event: str, **fields: object) -> None:
        self.records.append(("info", event, fields))

    def warning(self, event: str, **fields: object) -> None:
        self.records.append(("warning", event, fields))

    def error(self, event: str, **fields: object) -> None:
        self.records.append(("error", event, fields))


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> LogRecorder:
    """What the predictor's threads, health and lookups log."""
    recorder = LogRecorder()
    modules: list[ModuleType] = [background, follower, health]
    for module in modules:
        monkeypatch.setattr(module, "log", recorder)
    return recorder
