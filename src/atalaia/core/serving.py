"""What inference serves and records: production models, series histories and
per-series prediction counts, as plain values (rows or aligned columns)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

from atalaia.core.sensors import StoredSensor


@dataclass(frozen=True, slots=True)
class ServedModel:
    """What the inference table needs of a production version."""

    series_id: str
    version: int
    algorithm: str
    center: float
    scale: float
    threshold: float
    band: bytes | None = None  # a seasonal model's stored band (PhaseBand.to_bytes)
    artifact: str | None = None  # a heavy model's key in the artifact store
    stuck_after: int = 0  # the stuck guard's limit (0: no guard)
    stream: bytes | None = None  # a streaming model's packed params and state


@dataclass(frozen=True, slots=True)
class ServedRollout:
    """A running rollout as inference serves it: its candidate's model, the
    share of the series' readings it answers (0 for a shadow's, which only
    scores them), and the latency its gates hold it to."""

    rollout_id: int
    strategy: str  # "canary" or "shadow"
    share: float  # a fraction, 0–1
    slow_ms: float
    model: ServedModel


@dataclass(frozen=True, slots=True)
class RolloutCounts:
    """Running rollouts' counters (`core.rollout.COUNTERS`, one row each)
    since the last flush."""

    rollout_ids: list[int]
    counts: npt.NDArray[np.float64]  # (rollouts, COUNTERS)

    def __len__(self) -> int:
        return len(self.rollout_ids)


@dataclass(frozen=True, slots=True)
class ServedColumns:
    """Every production version, as aligned columns (one row per series)."""

    series_ids: list[str]
    version: npt.NDArray[np.int64]
    algorithm: list[str]
    center: npt.NDArray[np.float64]
    scale: npt.NDArray[np.float64]
    threshold: npt.NDArray[np.float64]
    band: list[bytes | None]  # seasonal models' stored bands; None: flat
    artifact: list[str | None]  # heavy models' keys in the artifact store
    stuck_after: npt.NDArray[np.int32]  # the stuck guards' limits (0: no guard)
    stream: list[bytes | None]  # streaming models' packed params and state


@dataclass(frozen=True, slots=True)
class SeriesHistory:
    """The mean and standard deviation of each series' stored readings (aligned
    columns): the fallback z-score of a series without a model."""

    series_ids: list[str]
    mean: npt.NDArray[np.float64]
    std: npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ServedSensor:
    """A sensor's production version: its axes' names and its model."""

    sensor_id: str
    version: int
    model: StoredSensor


@dataclass(frozen=True, slots=True)
class FleetModels:
    """Every production model and every series' history, as of the registry
    ledger's entry `cursor` (where its change feed goes on from)."""

    cursor: int
    models: ServedColumns
    history: SeriesHistory
    sensors: list[ServedSensor] = field(default_factory=list)
    rollouts: list[ServedRollout] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SeriesModels:
    """The production models and histories of some series (those that have one),
    and the production models of those ids that are sensors'."""

    models: list[ServedModel]
    history: SeriesHistory
    sensors: list[ServedSensor] = field(default_factory=list)
    rollouts: list[ServedRollout] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ScoredAnomaly:
    """An anomaly scored on ingest, as the anomaly log keeps it for consumers."""

    series_id: str
    timestamp: float
    value: float
    anomaly_score: float
    expected: float | None  # None: nothing known
    lower: float | None
    upper: float | None
    direction: str
    reason: str
    version: int
    algorithm: str
    stale: bool


@dataclass(frozen=True, slots=True)
class Rollups:
    """Prediction counts of one hour, one entry per series (aligned sequences)."""

    bucket: datetime
    series_ids: Sequence[str]
    predictions: Sequence[int]
    anomalies: Sequence[int]
    requests: Sequence[int]
    latency_ms_sum: Sequence[float]
    latency_ms_max: Sequence[float]

    def __len__(self) -> int:
        return len(self.series_ids)
