"""Training jobs table: the queue's source of truth."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from atalaia.adapters.db.tables import JobRow, utcnow
from atalaia.core.jobs import JobStatus, TrainingJob
from atalaia.errors import JobNotFound

_UNFINISHED = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


def _job(row: JobRow) -> TrainingJob:
    return TrainingJob(
        job_id=row.job_id,
        series_id=row.series_id,
        status=JobStatus(row.status),
        algorithm=row.algorithm,
        hyperparameters=dict(row.hyperparameters),
        payload_key=row.payload_key,
        window_hours=row.window_hours,
        created_at=row.created_at,
        submitted_by=row.submitted_by,
        started_at=row.started_at,
        finished_at=row.finished_at,
        attempts=row.attempts,
        version=row.version,
        error=row.error,
    )


class JobStore:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, job: TrainingJob, *, batch_id: str | None = None) -> None:
        self.session.add(
            JobRow(
                job_id=job.job_id,
                series_id=job.series_id,
                status=job.status.value,
                algorithm=job.algorithm,
                hyperparameters=job.hyperparameters,
                payload_key=job.payload_key,
                window_hours=job.window_hours,
                submitted_by=job.submitted_by,
                batch_id=batch_id,
                created_at=job.created_at,
                attempts=0,
            )
        )

    def get(self, job_id: str) -> TrainingJob:
        row = self.session.get(JobRow, job_id)
        if row is None:
            raise JobNotFound(job_id)
        return _job(row)

    def page(
        self,
        *,
        series_id: str | None = None,
        status: JobStatus | None = None,
        batch_id: str | None = None,
        before: str | None = None,
        limit: int = 100,
    ) -> list[TrainingJob]:
        """Newest first; `before` is the last job id of the previous page."""
        stmt = select(JobRow).order_by(JobRow.job_id.desc()).limit(limit)
        if series_id is not None:
            stmt = stmt.where(JobRow.series_id == series_id)
        if status is not None:
            stmt = stmt.where(JobRow.status == status.value)
        if batch_id is not None:
            stmt = stmt.where(JobRow.batch_id == batch_id)
        if before is not None:
            stmt = stmt.where(JobRow.job_id < before)
        return [_job(row) for row in self.session.scalars(stmt)]

    def last_submission(self, series_id: str) -> datetime | None:
        """When the newest job of the series that was not cancelled was submitted."""
        return self.session.scalar(
            select(func.max(JobRow.created_at)).where(
                JobRow.series_id == series_id,
                JobRow.status != JobStatus.CANCELLED.value,
            )
        )

    def claim(self, job_id: str) -> bool:
        """Mark a queued job (or one whose worker died while running it) as running.

        False when the job is finished or cancelled, so a redelivered job is a no-op.
        """
        result = self.session.execute(
            update(JobRow)
            .where(
                JobRow.job_id == job_id,
                JobRow.status.in_(_UNFINISHED),
            )
            .values(
                status=JobStatus.RUNNING.value,
                started_at=utcnow(),
                attempts=JobRow.attempts + 1,
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def finish(self, job_id: str, *, version: int) -> bool:
        """Mark a running job succeeded; False if it is not running any more."""
        return self._end(job_id, status=JobStatus.SUCCEEDED, version=version)

    def fail(self, job_id: str, *, error: dict[str, Any]) -> bool:
        return self._end(job_id, status=JobStatus.FAILED, error=error)

    def cancel(self, job_id: str) -> bool:
        return self._end(job_id, status=JobStatus.CANCELLED)

    def _end(self, job_id: str, *, status: JobStatus, **values: Any) -> bool:
        """Move an unfinished job to a final status; an ended job keeps its own."""
        result = self.session.execute(
            update(JobRow)
            .where(JobRow.job_id == job_id, JobRow.status.in_(_UNFINISHED))
            .values(status=status.value, finished_at=utcnow(), **values)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def status_of(self, job_id: str) -> JobStatus:
        status = self.session.scalar(
            select(JobRow.status).where(JobRow.job_id == job_id)
        )
        if status is None:
            raise JobNotFound(job_id)
        return JobStatus(status)

    def unfinished(self, *, started_before: datetime | None = None) -> list[str]:
        """Ids of queued jobs, and of running ones started before `started_before`."""
        running = JobRow.status == JobStatus.RUNNING.value
        if started_before is not None:
            running = running & (JobRow.started_at < started_before)
        stmt = (
            select(JobRow.job_id)
            .where((JobRow.status == JobStatus.QUEUED.value) | running)
            .order_by(JobRow.job_id)
        )
        return list(self.session.scalars(stmt))
