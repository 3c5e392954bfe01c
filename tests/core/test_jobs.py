from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from atalaia.core.jobs import JobStatus, TrainingJob, check_cancellable
from atalaia.errors import Conflict, JobNotCancellable

TERMINAL = [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED]
ACTIVE = [JobStatus.QUEUED, JobStatus.RUNNING]


def training_job(status: JobStatus = JobStatus.QUEUED) -> TrainingJob:
    return TrainingJob(
        job_id="0193c9a0-0000-7000-8000-000000000001",
        series_id="sensor_001_radial",
        status=status,
        algorithm="zscore",
        hyperparameters={"threshold_sigma": 3.0},
        payload_key=None,
        window_hours=168.0,
        created_at=datetime(2024, 12, 1, tzinfo=UTC),
        submitted_by="alice",
    )


class TestJobStatus:
    @pytest.mark.parametrize("status", TERMINAL)
    def test_is_terminal_when_finished(self, status: JobStatus) -> None:
        assert status.terminal

    @pytest.mark.parametrize("status", ACTIVE)
    def test_is_not_terminal_while_active(self, status: JobStatus) -> None:
        assert not status.terminal

    def test_reads_from_its_stored_value(self) -> None:
        assert JobStatus("running") is JobStatus.RUNNING
        assert str(JobStatus.CANCELLED) == "cancelled"


class TestTrainingJob:
    def test_starts_without_run_details(self) -> None:
        job = training_job()
        assert (job.started_at, job.finished_at, job.version, job.error) == (
            None,
            None,
            None,
            None,
        )
        assert job.attempts == 0

    def test_is_immutable(self) -> None:
        job = training_job()
        with pytest.raises(AttributeError):
            job.status = JobStatus.RUNNING  # type: ignore[misc]
        assert replace(job, status=JobStatus.RUNNING).status is JobStatus.RUNNING


class TestCheckCancellable:
    @pytest.mark.parametrize("status", ACTIVE)
    def test_allows_cancelling_an_active_job(self, status: JobStatus) -> None:
        check_cancellable(training_job(status))

    @pytest.mark.parametrize("status", TERMINAL)
    def test_refuses_a_finished_job(self, status: JobStatus) -> None:
        with pytest.raises(JobNotCancellable, match=f"already {status}"):
            check_cancellable(training_job(status))

    def test_reports_a_conflict(self) -> None:
        with pytest.raises(Conflict):
            check_cancellable(training_job(JobStatus.SUCCEEDED))
