"""Interfaces the services need from the outside world; adapters implement them."""

from __future__ import annotations

from collections.abc import Sequence
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
