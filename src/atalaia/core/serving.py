"""What inference serves and records: production models and per-series
prediction counts, as plain values (rows or aligned columns)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class ServedModel:
    """What the inference table needs of a production version."""

    series_id: str
    version: int
    algorithm: str
    center: float
    scale: float
    threshold: float


@dataclass(frozen=True, slots=True)
class ServedColumns:
    """Every production version, as aligned columns (one row per series)."""

    series_ids: list[str]
    version: npt.NDArray[np.int64]
    algorithm: list[str]
    center: npt.NDArray[np.float64]
    scale: npt.NDArray[np.float64]
    threshold: npt.NDArray[np.float64]


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
