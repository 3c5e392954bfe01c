"""Training batches as the console follows them: jobs by status, pace, time left."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import JobStore
from atalaia.adapters.db.repositories.jobs import BatchCounts
from atalaia.errors import NotFound


@dataclass(frozen=True, slots=True)
class BatchProgress:
    """A batch's counts, with `done` (jobs ended in any way), the pace at which
    they ended (per second since the first job started; up to the last one's
    end once all have) and the time left at that pace (None when the pace is
    unknown or nothing is left)."""

    counts: BatchCounts
    total: int
    done: int
    rate_per_s: float | None
    eta_s: float | None


def progress(counts: BatchCounts, *, now: datetime) -> BatchProgress:
    """The progress of a batch as counted, at `now`.

    >>> from datetime import timedelta
    >>> from atalaia.core.jobs import JobStatus
    >>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
    >>> by_status = dict.fromkeys(JobStatus, 0) | {
    ...     JobStatus.SUCCEEDED: 90, JobStatus.FAILED: 10, JobStatus.QUEUED: 300}
    >>> counts = BatchCounts("b", t0, None, None, by_status, t0, t0, t0)
    >>> p = progress(counts, now=t0 + timedelta(seconds=50))
    >>> p.total, p.done, p.rate_per_s, p.eta_s
    (400, 100, 2.0, 150.0)
    """
    by_status = counts.by_status
    total = sum(by_status.values())
    done = sum(n for status, n in by_status.items() if status.terminal)
    left = total - done
    end = now if left else counts.last_finished_at
    rate = None
    if counts.started_at is not None and end is not None:
        elapsed = (end - counts.started_at).total_seconds()
        rate = done / elapsed if elapsed > 0 else None
    eta = left / rate if left and rate else None
    return BatchProgress(counts, total, done, rate, eta)


def list_batches(
    *, session: Session, before: str | None, limit: int, now: datetime | None = None
) -> list[BatchProgress]:
    """Batches newest first, after the one `before` (a cursor)."""
    at = now or datetime.now(UTC)
    batches = JobStore(session).batches(before=before, limit=limit)
    return [progress(counts, now=at) for counts in batches]


def batch_progress(
    *, session: Session, batch_id: str, now: datetime | None = None
) -> BatchProgress:
    """One batch's progress; NotFound (`batch_exists`) when no job belongs to it."""
    counts = JobStore(session).batch(batch_id)
    if counts is None:
        raise NotFound(
            f"training batch {batch_id!r} does not exist", rule="batch_exists"
        )
    return progress(counts, now=now or datetime.now(UTC))
