"""The per-series training interval, held by the database under concurrency."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from atalaia.adapters.db.tables import TrainingClaimRow

_TABLE = TrainingClaimRow.__table__


class TrainingClaims:
    """Each series' last accepted training submission.

    A submission claims its series with one atomic upsert that only succeeds when
    the previous claim is at least the interval old. Concurrent submissions of a
    series wait on its row (PostgreSQL) or on the one writer (SQLite) and see the
    winner's claim, so exactly one is accepted. The claim belongs to the caller's
    transaction: a request rolled back neither claims nor frees anything.
    """

    def __init__(self, session: Session) -> None:
        self.session = session

    def claim(
        self, jobs: Mapping[str, str], *, at: datetime, interval_s: int
    ) -> set[str]:
        """Claim each series of `jobs` (series id → job id) for its job; returns
        the series claimed. Rows are taken in series order, so batches that
        overlap never wait on each other in a cycle."""
        if not jobs:
            return set()
        upsert = (
            pg_insert
            if self.session.get_bind().dialect.name == "postgresql"
            else sqlite_insert
        )
        rows = [
            {"series_id": sid, "job_id": jobs[sid], "submitted_at": at}
            for sid in sorted(jobs)
        ]
        insert = upsert(TrainingClaimRow).values(rows)
        stmt = insert.on_conflict_do_update(
            index_elements=[_TABLE.c.series_id],
            set_={"job_id": insert.excluded.job_id, "submitted_at": at},
            where=(
                _TABLE.c.submitted_at <= at - timedelta(seconds=interval_s)
                if interval_s > 0
                else None
            ),
        ).returning(_TABLE.c.series_id)
        return set(self.session.scalars(stmt))

    def last(self, series_ids: Sequence[str]) -> dict[str, datetime]:
        """When each of `series_ids` that has a claim last had one accepted."""
        stmt = select(TrainingClaimRow.series_id, TrainingClaimRow.submitted_at).where(
            TrainingClaimRow.series_id.in_(series_ids)
        )
        return dict(self.session.execute(stmt).all())

    def release(self, job_id: str) -> None:
        """Free the series of a cancelled job, if the job still holds its claim."""
        self.session.execute(
            delete(TrainingClaimRow).where(TrainingClaimRow.job_id == job_id)
        )
