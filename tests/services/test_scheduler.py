"""The scheduler's tasks on SQLite and PostgreSQL: which series retrain, the jobs
queued for them, and the audit entry of every run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.repositories import AuditLog, JobStore
from atalaia.adapters.db.tables import AuditRow, JobRow
from atalaia.adapters.storage import LocalArtifactStore
from atalaia.core.jobs import JobStatus
from atalaia.core.ports import BatchSubmitter
from atalaia.core.schedule import Task
from atalaia.services.healing import Healer
from atalaia.services.scheduler import (
    ACTOR,
    InProcessSubmitter,
    RunReport,
    check_drift,
    last_runs,
    retrain_fleet,
)
from atalaia.settings import Settings
from fixtures.fleet import WEEK_S, add_day, serve_series
from fixtures.readings import DAY_S
from fixtures.scheduling import DownSubmitter, RecordingQueue

Sessions = sessionmaker[Session]

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TRAINED_UNTIL = NOW.timestamp() - DAY_S  # the week of training data ends here


@pytest.fixture
def submitter(sessions: Sessions, queue: RecordingQueue) -> InProcessSubmitter:
    return InProcessSubmitter(sessions, queue, min_interval_s=0)


def scheduler_jobs(sessions: Sessions) -> dict[str, JobRow]:
    with sessions() as session:
        rows = session.scalars(select(JobRow).where(JobRow.submitted_by == ACTOR))
        return {row.series_id: row for row in rows}


def audit_entries(sessions: Sessions) -> list[AuditRow]:
    with sessions() as session:
        stmt = select(AuditRow).where(AuditRow.actor == ACTOR).order_by(AuditRow.id)
        return list(session.scalars(stmt))


def drift(
    sessions: Sessions, submitter: BatchSubmitter, settings: Settings
) -> RunReport:
    """A drift check whose drifted series the healing engine retrains."""
    return check_drift(
        sessions=sessions, healer=Healer(sessions, settings, submitter),
        window_hours=24, retrain_window_hours=168,
    )  # fmt: skip


@pytest.fixture
def drifting_fleet(sessions: Sessions, artifacts: LocalArtifactStore) -> None:
    """sensor_001_radial drifted on its last day, sensor_001_axial did not."""
    for seed, (series_id, drifted) in enumerate(
        [("sensor_001_radial", True), ("sensor_001_axial", False)]
    ):
        serve_series(sessions, artifacts, series_id, end=TRAINED_UNTIL, seed=seed)
        add_day(sessions, series_id, after=TRAINED_UNTIL, seed=seed, drift=drifted)


@pytest.mark.usefixtures("drifting_fleet")
class TestCheckDrift:
    def test_queues_a_retraining_of_the_drifted_series_only(
        self,
        sessions: Sessions,
        submitter: InProcessSubmitter,
        queue: RecordingQueue,
        settings: Settings,
    ) -> None:
        report = drift(sessions, submitter, settings)

        jobs = scheduler_jobs(sessions)
        assert list(jobs) == ["sensor_001_radial"]
        job = jobs["sensor_001_radial"]
        assert (job.status, job.algorithm, job.window_hours) == (
            JobStatus.QUEUED.value, "zscore", 168,
        )  # fmt: skip
        assert queue.dispatched == [job.job_id]
        assert (report.considered, report.selected) == (2, ["sensor_001_radial"])
        assert report.accepted == 1

    def test_writes_what_it_did_to_the_audit_log(
        self, sessions: Sessions, submitter: InProcessSubmitter, settings: Settings
    ) -> None:
        report = drift(sessions, submitter, settings)

        [entry] = audit_entries(sessions)
        assert (entry.action, entry.target) == ("scheduler.drift", "fleet")
        assert entry.detail["series"] == ["sensor_001_radial"]
        assert entry.detail["considered"] == 2
        assert entry.detail["accepted"] == 1
        assert entry.detail["batches"] == report.batches
        assert last_runs(sessions) == {Task.DRIFT: entry.at}

    def test_skips_a_drifted_series_whose_job_is_still_queued(
        self, sessions: Sessions, submitter: InProcessSubmitter, settings: Settings
    ) -> None:
        drift(sessions, submitter, settings)

        again = drift(sessions, submitter, settings)

        assert (again.selected, again.skipped_busy, again.accepted) == (
            ["sensor_001_radial"], 1, 0,
        )  # fmt: skip
        assert len(audit_entries(sessions)) == 2

    def test_audits_a_run_whose_jobs_could_not_be_queued(
        self, sessions: Sessions, settings: Settings
    ) -> None:
        report = drift(sessions, DownSubmitter(), settings)

        assert report.error == "training service is unavailable: ConnectError"
        [entry] = audit_entries(sessions)
        assert entry.action == "scheduler.drift_failed"
        assert entry.detail["series"] == ["sensor_001_radial"]
        assert last_runs(sessions) == {}  # a failed run does not count as a run
        with sessions() as session:
            assert JobStore(session).busy_series(["sensor_001_radial"]) == set()


class TestRetrainFleet:
    def test_queues_one_job_per_active_production_series(
        self,
        sessions: Sessions,
        artifacts: LocalArtifactStore,
        submitter: InProcessSubmitter,
        queue: RecordingQueue,
    ) -> None:
        now = NOW.timestamp()
        serve_series(sessions, artifacts, "sensor_001_radial", end=now, seed=0)
        serve_series(sessions, artifacts, "sensor_001_axial", end=now, seed=1)
        serve_series(sessions, artifacts, "sensor_002_radial", end=now - WEEK_S - DAY_S)
        serve_series(sessions, artifacts, "sensor_003_radial", end=now, promote=False)

        report = retrain_fleet(
            sessions=sessions, submitter=submitter, window_hours=168, now=NOW
        )

        jobs = scheduler_jobs(sessions)
        assert sorted(jobs) == ["sensor_001_axial", "sensor_001_radial"]
        assert sorted(queue.dispatched) == sorted(j.job_id for j in jobs.values())
        assert {j.batch_id for j in jobs.values()} == set(report.batches)
        assert (report.considered, report.accepted) == (2, 2)
        [entry] = audit_entries(sessions)
        assert entry.action == "scheduler.retrain"
        assert entry.detail["series"] == ["sensor_001_axial", "sensor_001_radial"]

    def test_reports_the_series_the_training_service_refused(
        self,
        sessions: Sessions,
        artifacts: LocalArtifactStore,
        queue: RecordingQueue,
    ) -> None:
        serve_series(sessions, artifacts, "sensor_001_radial", end=NOW.timestamp())
        rate_limited = InProcessSubmitter(sessions, queue, min_interval_s=3600)

        report = retrain_fleet(
            sessions=sessions, submitter=rate_limited, window_hours=168, now=NOW
        )

        assert report.accepted == 0
        assert [r["error"] for r in report.rejected] == ["TrainingRateLimited"]
        [entry] = audit_entries(sessions)
        assert entry.detail["rejected"] == 1
        assert entry.detail["rejections"][0]["series_id"] == "sensor_001_radial"


def test_last_runs_are_the_latest_completed_ones(sessions: Sessions) -> None:
    with sessions() as session:
        for at in (NOW - timedelta(hours=12), NOW - timedelta(hours=6)):
            session.add(
                AuditRow(at=at, actor=ACTOR, action="scheduler.drift", target="fleet")
            )
        AuditLog(session).record(
            actor=ACTOR, action="scheduler.retrain_failed", target="fleet"
        )
        session.commit()

    assert last_runs(sessions) == {Task.DRIFT: NOW - timedelta(hours=6)}
