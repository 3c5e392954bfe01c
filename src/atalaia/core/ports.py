"""Interfaces the services need from the outside world; adapters implement them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from atalaia.core.incidents import Recovery
from atalaia.core.series import FloatArray, Readings
from atalaia.core.serving import (
    FleetModels,
    RolloutCounts,
    Rollups,
    ScoredAnomaly,
    SeriesModels,
    ServedModel,
)

IntArray = npt.NDArray[np.int64]


class ArtifactStore(Protocol):
    """Blob storage for model artifacts and job payloads (local folder, S3, ...)."""

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...

    def put_file(self, key: str, path: Path) -> None:
        """`put` of a file's content, streamed (a large upload never in memory)."""
        ...

    def get_file(self, key: str, path: Path) -> None:
        """Write the blob at `key` to `path`, streamed, all or nothing."""
        ...

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Every stored key that starts with `prefix`, in no set order."""
        ...


class JobQueue(Protocol):
    """Hands training job ids to whatever runs them (in-process, Celery, ...)."""

    def dispatch(self, job_id: str) -> None: ...

    def dispatch_many(self, job_ids: Sequence[str]) -> None:
        """Hand over many jobs (a batch), run in chunks fitted in one pass each."""
        ...


@dataclass(frozen=True, slots=True)
class SubmittedBatch:
    """A batch of training jobs queued: how many, and the series refused, why."""

    batch_id: str
    accepted: int
    rejected: list[dict[str, object]]


class BatchSubmitter(Protocol):
    """Queues one training job per series from its stored window, as one batch.

    The training service's `POST /training/batch`, or the same use case run in
    this process (the embedded platform).
    """

    def submit(
        self,
        series_ids: Sequence[str],
        *,
        algorithm: str,
        hyperparameters: Mapping[str, float],
        window_hours: float,
    ) -> SubmittedBatch: ...


class RollupSink(Protocol):
    """Where per-series prediction counts go (the database's hourly rollups)."""

    def add_rollups(self, rollups: Rollups) -> None:
        """Add `rollups` to the counts stored, committed; DependencyUnavailable
        or ConcurrentChange when they could not be."""
        ...


class RolloutSink(Protocol):
    """Where running rollouts' counters go (added up from every replica)."""

    def add_rollout_counts(self, counts: RolloutCounts) -> None:
        """Add `counts` to their rollouts' figures, committed;
        DependencyUnavailable or ConcurrentChange when they could not be."""
        ...


class SignalSink(Protocol):
    """Where the incidents' signals go (the anomaly log and the recoveries)."""

    def add_signals(
        self, anomalies: Sequence[ScoredAnomaly], recoveries: Sequence[Recovery]
    ) -> None:
        """Append them, committed; a logged anomaly of the same series and
        timestamp is kept. DependencyUnavailable or ConcurrentChange when they
        could not be."""
        ...

    def live_series(self) -> list[str]:
        """The series anomalous in some live incident."""
        ...


class ServingStore(RollupSink, RolloutSink, SignalSink, Protocol):
    """What inference reads of the registry and the series' statistics, and the
    counts it writes: the database. Each call is a transaction of its own and
    raises DependencyUnavailable while the database is unavailable."""

    def load_fleet(self) -> FleetModels:
        """Every production model and every series' history."""
        ...

    def load_series(self, series_ids: Sequence[str]) -> SeriesModels:
        """The production models and histories of these series (those with one)."""
        ...

    def changed_since(self, cursor: int, *, since: datetime) -> tuple[int, set[str]]:
        """(the ledger's newest entry, the series of its entries after `cursor`
        or written at or after `since`)."""
        ...

    def newest_readings(
        self, series_ids: Sequence[str], after: FloatArray, depth: IntArray
    ) -> dict[str, Readings]:
        """Each series' newest `depth` stored readings after its `after`,
        oldest first (the series with some)."""
        ...


class SharedModelCache(Protocol):
    """Served models shared by every inference replica (Redis). Best effort:
    while it is down, reads find nothing and writes are dropped."""

    @property
    def ready(self) -> bool:
        """Would a call try it now (it is not left alone after a failure)?"""
        ...

    def get_many(self, series_ids: Sequence[str]) -> dict[str, ServedModel]: ...

    def put_many(self, models: Sequence[ServedModel], *, overwrite: bool) -> None:
        """Write these models; with `overwrite` false, only where none is held."""
        ...

    def forget(self, series_ids: Sequence[str]) -> None: ...
