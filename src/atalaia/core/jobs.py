"""Training jobs: status machine and the data a job trains on."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from atalaia.core.quality import QualityRule
from atalaia.errors import JobNotCancellable


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


@dataclass(frozen=True, slots=True)
class TrainingJob:
    job_id: str
    series_id: str
    status: JobStatus
    algorithm: str
    hyperparameters: dict[str, float]
    # Inline data is kept as an artifact under `payload_key`; otherwise the job
    # reads the last `window_hours` of stored readings.
    payload_key: str | None
    window_hours: float | None
    created_at: datetime
    submitted_by: str
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0
    version: int | None = None
    error: dict[str, Any] | None = field(default=None)
    # Data-quality rules whose findings do not refuse this job's data.
    quality_ignored: frozenset[QualityRule] = frozenset()


def check_cancellable(job: TrainingJob) -> None:
    if job.status.terminal:
        raise JobNotCancellable(f"job {job.job_id} is already {job.status}")
