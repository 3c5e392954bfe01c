"""JobStore on SQLite and PostgreSQL: the training jobs table is the queue's truth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.repositories import JobStore
from atalaia.core.jobs import JobStatus, TrainingJob
from atalaia.errors import JobNotFound

SERIES = "sensor_001_radial"
SUBMITTED_AT = datetime(2024, 12, 1, 8, 0, tzinfo=UTC)
Sessions = sessionmaker[Session]


def job_id(n: int) -> str:
    """Ids that sort like the service's time-ordered ones: a higher n is newer."""
    return f"0193c9a0-{n:04d}-7000-8000-000000000000"


def training_job(
    n: int,
    *,
    series_id: str = SERIES,
    status: JobStatus = JobStatus.QUEUED,
    payload_key: str | None = None,
) -> TrainingJob:
    return TrainingJob(
        job_id=job_id(n),
        series_id=series_id,
        status=status,
        algorithm="zscore",
        hyperparameters={"threshold_sigma": 3.0},
        payload_key=payload_key,
        window_hours=None if payload_key else 168.0,
        created_at=SUBMITTED_AT + timedelta(minutes=n),
        submitted_by="alice",
    )


def add(sessions: Sessions, *jobs: TrainingJob, batch_id: str | None = None) -> None:
    with sessions() as session:
        for job in jobs:
            JobStore(session).add(job, batch_id=batch_id)
        session.commit()


def get(sessions: Sessions, n: int) -> TrainingJob:
    with sessions() as session:
        return JobStore(session).get(job_id(n))


def claim(sessions: Sessions, *ns: int) -> list[str]:
    with sessions() as session:
        claimed = JobStore(session).claim([job_id(n) for n in ns])
        session.commit()
    return claimed


def finish(sessions: Sessions, versions: dict[int, int]) -> list[str]:
    """Mark jobs succeeded and record their versions, as a training run does."""
    with sessions() as session:
        store = JobStore(session)
        finished = store.finish([job_id(n) for n in versions])
        store.record_versions({job_id(n): v for n, v in versions.items()})
        session.commit()
    return finished


class TestAddAndGet:
    def test_returns_the_job_as_submitted(self, sessions: Sessions) -> None:
        job = training_job(1, payload_key=f"jobs/{job_id(1)}/readings.npy")
        add(sessions, job)
        assert get(sessions, 1) == job

    def test_raises_for_an_unknown_job(self, sessions: Sessions) -> None:
        with sessions() as session:
            store = JobStore(session)
            with pytest.raises(JobNotFound):
                store.get("nope")

    def test_adds_and_gets_many_at_once(self, sessions: Sessions) -> None:
        jobs = [training_job(n, series_id=f"s_{n}") for n in (1, 2, 3)]
        with sessions() as session:
            JobStore(session).add_many(jobs, batch_id="batch-1")
            session.commit()
        with sessions() as session:
            store = JobStore(session)
            found = store.get_many([job_id(3), job_id(1), job_id(404)])
            in_batch = store.page(batch_id="batch-1")
        assert sorted(found, key=lambda j: j.job_id) == [jobs[0], jobs[2]]
        assert len(in_batch) == 3


class TestList:
    @pytest.fixture
    def jobs(self, sessions: Sessions) -> None:
        add(sessions, *(training_job(n) for n in range(1, 6)), batch_id="batch-1")
        add(sessions, training_job(6, series_id="pump7"))
        add(sessions, training_job(7, status=JobStatus.FAILED))

    @pytest.mark.usefixtures("jobs")
    def test_lists_newest_first(self, sessions: Sessions) -> None:
        with sessions() as session:
            listed = [j.job_id for j in JobStore(session).page()]
        assert listed == [job_id(n) for n in range(7, 0, -1)]

    @pytest.mark.usefixtures("jobs")
    def test_pages_with_the_last_id_of_the_previous_page(
        self, sessions: Sessions
    ) -> None:
        pages: list[list[str]] = []
        before: str | None = None
        with sessions() as session:
            while page := JobStore(session).page(before=before, limit=3):
                pages.append([j.job_id for j in page])
                before = page[-1].job_id
        assert [len(p) for p in pages] == [3, 3, 1]
        assert sum(pages, []) == [job_id(n) for n in range(7, 0, -1)]

    @pytest.mark.usefixtures("jobs")
    def test_filters_by_series_status_and_batch(self, sessions: Sessions) -> None:
        with sessions() as session:
            store = JobStore(session)
            of_pump = store.page(series_id="pump7")
            failed = store.page(status=JobStatus.FAILED)
            batch = store.page(batch_id="batch-1", limit=2)
            queued_here = store.page(series_id=SERIES, status=JobStatus.QUEUED)
        assert [j.job_id for j in of_pump] == [job_id(6)]
        assert [j.job_id for j in failed] == [job_id(7)]
        assert [j.job_id for j in batch] == [job_id(5), job_id(4)]
        assert len(queued_here) == 5


class TestClaim:
    def test_marks_a_queued_job_running(self, sessions: Sessions) -> None:
        add(sessions, training_job(1))
        assert claim(sessions, 1)
        job = get(sessions, 1)
        assert job.status is JobStatus.RUNNING
        assert job.attempts == 1
        assert job.started_at is not None
        assert job.started_at.tzinfo is not None

    def test_claims_a_running_job_again_for_a_redelivery(
        self, sessions: Sessions
    ) -> None:
        add(sessions, training_job(1))
        assert claim(sessions, 1)
        assert claim(sessions, 1)
        assert get(sessions, 1).attempts == 2

    def test_claims_only_the_unfinished_jobs_of_many(self, sessions: Sessions) -> None:
        add(sessions, *(training_job(n) for n in (1, 2, 3)))
        with sessions() as session:
            JobStore(session).cancel(job_id(2))
            session.commit()
        assert sorted(claim(sessions, 1, 2, 3, 404)) == [job_id(1), job_id(3)]

    @pytest.mark.parametrize("end", ["finish", "fail", "cancel"])
    def test_refuses_a_job_that_ended(self, sessions: Sessions, end: str) -> None:
        add(sessions, training_job(1))
        claim(sessions, 1)
        with sessions() as session:
            store = JobStore(session)
            if end == "finish":
                store.finish([job_id(1)])
            elif end == "fail":
                store.fail(job_id(1), error={"error": "InvalidSeries"})
            else:
                store.cancel(job_id(1))
            session.commit()
        assert not claim(sessions, 1)
        assert get(sessions, 1).attempts == 1

    def test_refuses_a_cancelled_queued_job(self, sessions: Sessions) -> None:
        add(sessions, training_job(1))
        with sessions() as session:
            JobStore(session).cancel(job_id(1))
            session.commit()
        assert not claim(sessions, 1)
        assert get(sessions, 1).status is JobStatus.CANCELLED

    def test_refuses_an_unknown_job(self, sessions: Sessions) -> None:
        assert not claim(sessions, 404)


class TestFinish:
    def test_skips_jobs_that_ended_meanwhile(self, sessions: Sessions) -> None:
        add(sessions, training_job(1), training_job(2))
        claim(sessions, 1, 2)
        with sessions() as session:
            JobStore(session).cancel(job_id(2))
            session.commit()
        with sessions() as session:
            finished = JobStore(session).finish([job_id(1), job_id(2)])
            session.commit()
        assert finished == [job_id(1)]
        assert get(sessions, 2).status is JobStatus.CANCELLED

    def test_records_the_version_of_a_succeeded_job(self, sessions: Sessions) -> None:
        add(sessions, training_job(1))
        claim(sessions, 1)
        assert finish(sessions, {1: 4}) == [job_id(1)]
        job = get(sessions, 1)
        assert (job.status, job.version, job.error) == (JobStatus.SUCCEEDED, 4, None)
        assert job.started_at is not None
        assert job.finished_at is not None
        assert job.finished_at >= job.started_at

    def test_records_the_error_of_a_failed_job(self, sessions: Sessions) -> None:
        add(sessions, training_job(1))
        claim(sessions, 1)
        error = {"error": "InvalidSeries", "rule": "min_points", "detail": "got 9"}
        with sessions() as session:
            JobStore(session).fail(job_id(1), error=error)
            session.commit()
        job = get(sessions, 1)
        assert (job.status, job.error, job.version) == (JobStatus.FAILED, error, None)
        assert job.finished_at is not None


class TestUnfinished:
    def test_lists_queued_and_running_jobs(self, sessions: Sessions) -> None:
        add(sessions, training_job(1), training_job(2), training_job(3))
        claim(sessions, 2, 3)
        finish(sessions, {3: 1})
        with sessions() as session:
            assert JobStore(session).unfinished() == [job_id(1), job_id(2)]

    def test_lists_only_running_jobs_started_before_a_time(
        self, sessions: Sessions
    ) -> None:
        add(sessions, training_job(1), training_job(2))
        claim(sessions, 2)
        started_at = get(sessions, 2).started_at
        assert started_at is not None
        with sessions() as session:
            store = JobStore(session)
            late = store.unfinished(started_before=started_at + timedelta(hours=1))
            early = store.unfinished(started_before=started_at - timedelta(hours=1))
        assert late == [job_id(1), job_id(2)]
        assert early == [job_id(1)]


class TestStale:
    def test_lists_jobs_queued_or_started_before_their_bounds(
        self, sessions: Sessions
    ) -> None:
        add(sessions, *(training_job(n) for n in (1, 2, 3, 4)))
        claim(sessions, 4)
        started_at = get(sessions, 4).started_at
        assert started_at is not None
        hour = timedelta(hours=1)
        with sessions() as session:
            store = JobStore(session)
            old_queued = store.stale(
                queued_before=get(sessions, 3).created_at,
                started_before=started_at - hour,
            )
            stuck_running = store.stale(
                queued_before=None, started_before=started_at + hour
            )
        assert old_queued == [job_id(1), job_id(2)]
        assert stuck_running == [job_id(4)]
