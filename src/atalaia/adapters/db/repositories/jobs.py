"""Training jobs table: the queue's source of truth."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal, select, update
from sqlalchemy.orm import Session, aliased

from atalaia.adapters.db.tables import JobRow, utcnow
from atalaia.core.jobs import JobStatus, TrainingJob
from atalaia.core.quality import QualityRule
from atalaia.errors import JobNotFound

_UNFINISHED = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


@dataclass(frozen=True, slots=True)
class BatchCounts:
    """A batch's jobs counted by status; who submitted it and which algorithm
    it trains (one each per batch); when it was made, first started, last
    changed and last finished a job."""

    batch_id: str
    created_at: datetime
    actor: str | None
    algorithm: str | None
    by_status: dict[JobStatus, int]
    started_at: datetime | None
    updated_at: datetime
    last_finished_at: datetime | None


def _of_batch(name: str) -> Any:
    """Column `name` of a job of the batch grouped on: the first found walking
    down the batch index from it (a bound and that order keep it a probe of
    the index, whatever the planner guesses of the batch's size)."""
    one = aliased(JobRow)
    return (
        select(getattr(one, name))
        .where(one.batch_id <= JobRow.batch_id)
        .order_by(one.batch_id.desc())
        .limit(1)
        .scalar_subquery()
    )


# A row per batch and status, read from the batch index alone
# (`ix_training_jobs_batch_status` holds every column counted).
_BY_STATUS = (
    JobRow.batch_id,
    JobRow.status,
    func.count(),
    func.min(JobRow.created_at),
    func.min(JobRow.started_at),
    func.max(JobRow.started_at),
    func.max(JobRow.finished_at),
    _of_batch("submitted_by"),
    _of_batch("algorithm"),
)


def _batches(rows: Iterable[Any]) -> list[BatchCounts]:
    """Fold the rows by (batch, status) of `_BY_STATUS` into one per batch."""
    found: dict[str, list[Any]] = {}
    for row in rows:
        found.setdefault(row[0], []).append(row)
    return [_batch(batch_id, group) for batch_id, group in found.items()]


def _batch(batch_id: str, rows: list[Any]) -> BatchCounts:
    by_status = dict.fromkeys(JobStatus, 0)
    for row in rows:
        by_status[JobStatus(row[1])] = int(row[2])
    created = min(row[3] for row in rows)
    started = [row[4] for row in rows if row[4] is not None]
    finished = [row[6] for row in rows if row[6] is not None]
    # created ≤ started ≤ finished for every job: the last change is the
    # latest of any of them
    changes = [created, *(row[5] for row in rows if row[5] is not None), *finished]
    return BatchCounts(
        batch_id, created, rows[0][7], rows[0][8], by_status,
        min(started, default=None), max(changes), max(finished, default=None),
    )  # fmt: skip


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
        quality_ignored=frozenset(map(QualityRule, row.quality_ignored or ())),
    )


class JobStore:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, job: TrainingJob, *, batch_id: str | None = None) -> None:
        self.add_many([job], batch_id=batch_id)

    def add_many(
        self, jobs: Sequence[TrainingJob], *, batch_id: str | None = None
    ) -> None:
        self.session.add_all(
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
                quality_ignored=sorted(job.quality_ignored) or None,
            )
            for job in jobs
        )

    def get(self, job_id: str) -> TrainingJob:
        row = self.session.get(JobRow, job_id)
        if row is None:
            raise JobNotFound(job_id)
        return _job(row)

    def get_many(self, job_ids: Sequence[str]) -> list[TrainingJob]:
        """The jobs among `job_ids` that exist, in no particular order."""
        stmt = select(JobRow).where(JobRow.job_id.in_(job_ids))
        return [_job(row) for row in self.session.scalars(stmt)]

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

    def batches(
        self, *, before: str | None = None, limit: int = 20
    ) -> list[BatchCounts]:
        """Batches, newest first (ids sort by submission); `before` is the last
        batch id of the previous page.

        The page's ids first, walking down the batch index one probe a batch (a
        recursive query: no job outside the page is read), then the page's jobs
        counted in one grouped query, from the batch index alone.
        """
        first = _next_batch(JobRow.batch_id < before if before else None)
        walk = select(first.label("batch_id"), literal(1).label("n")).cte(
            "page", recursive=True
        )
        prev = walk.alias("prev")
        walk = walk.union_all(
            select(_next_batch(JobRow.batch_id < prev.c.batch_id), prev.c.n + 1).where(
                prev.c.batch_id.is_not(None), prev.c.n < limit
            )
        )
        ids = self.session.scalars(
            select(walk.c.batch_id).where(walk.c.batch_id.is_not(None))
        ).all()
        if not ids:
            return []
        return _batches(self.session.execute(_grouped(JobRow.batch_id.in_(ids))))

    def batch(self, batch_id: str) -> BatchCounts | None:
        """One batch, counted; None when no job belongs to it."""
        found = _batches(self.session.execute(_grouped(JobRow.batch_id == batch_id)))
        return found[0] if found else None

    def claim(self, job_ids: Sequence[str]) -> list[str]:
        """Mark queued jobs (and ones whose worker died running them) as running.

        Returns the ids claimed; finished and cancelled jobs are left alone, so a
        redelivered job is a no-op.
        """
        stmt = (
            update(JobRow)
            .where(JobRow.job_id.in_(job_ids), JobRow.status.in_(_UNFINISHED))
            .values(
                status=JobStatus.RUNNING.value,
                started_at=utcnow(),
                attempts=JobRow.attempts + 1,
            )
            .returning(JobRow.job_id)
        )
        return list(self.session.scalars(stmt))

    def touch(self, job_ids: Sequence[str]) -> None:
        """Restart the clock of running jobs (a long chunk still at work on
        them): they are not taken for stuck."""
        self.session.execute(
            update(JobRow)
            .where(JobRow.job_id.in_(job_ids), JobRow.status == JobStatus.RUNNING.value)
            .values(started_at=utcnow())
        )

    def finish(self, job_ids: Sequence[str]) -> list[str]:
        """Mark running jobs succeeded; returns the ids marked.

        The others ended meanwhile (for example, were cancelled) and keep their
        status. The caller records the versions of those marked, in the same
        transaction.
        """
        stmt = (
            update(JobRow)
            .where(JobRow.job_id.in_(job_ids), JobRow.status == JobStatus.RUNNING.value)
            .values(status=JobStatus.SUCCEEDED.value, finished_at=utcnow())
            .returning(JobRow.job_id)
        )
        return list(self.session.scalars(stmt))

    def record_versions(self, versions: Mapping[str, int]) -> None:
        """Note the version each job registered (one executemany by primary key)."""
        if versions:
            self.session.execute(
                update(JobRow),
                [{"job_id": job_id, "version": v} for job_id, v in versions.items()],
            )

    def failed_count(self) -> int:
        """How many jobs ended failed."""
        stmt = select(func.count()).where(JobRow.status == JobStatus.FAILED.value)
        return int(self.session.scalar(stmt) or 0)

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

    def busy_series(self, series_ids: Sequence[str]) -> set[str]:
        """Those of `series_ids` with a queued or running job."""
        stmt = (
            select(JobRow.series_id)
            .where(JobRow.series_id.in_(series_ids), JobRow.status.in_(_UNFINISHED))
            .distinct()
        )
        return set(self.session.scalars(stmt))

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

    def stale(
        self, *, queued_before: datetime | None, started_before: datetime
    ) -> list[str]:
        """Ids of jobs queued before `queued_before` (none when None) and of
        running ones started before `started_before`."""
        stale = (JobRow.status == JobStatus.RUNNING.value) & (
            JobRow.started_at < started_before
        )
        if queued_before is not None:
            stale |= (JobRow.status == JobStatus.QUEUED.value) & (
                JobRow.created_at < queued_before
            )
        stmt = select(JobRow.job_id).where(stale).order_by(JobRow.job_id)
        return list(self.session.scalars(stmt))


def _next_batch(below: ColumnElement[bool] | None) -> Any:
    """The highest batch id (`below` a bound), as a scalar subquery."""
    stmt = select(JobRow.batch_id).where(JobRow.batch_id.is_not(None))
    if below is not None:
        stmt = stmt.where(below)
    return stmt.order_by(JobRow.batch_id.desc()).limit(1).scalar_subquery()


def _grouped(where: ColumnElement[bool]) -> Select[Any]:
    return (
        select(*_BY_STATUS)
        .where(where)
        .group_by(JobRow.batch_id, JobRow.status)
        .order_by(JobRow.batch_id.desc())
    )
