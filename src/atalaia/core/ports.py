"""Interfaces the services need from the outside world; adapters implement them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


class ArtifactStore(Protocol):
    """Blob storage for model artifacts and job payloads (local folder, S3, ...)."""

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...


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
