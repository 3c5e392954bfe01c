"""Running training jobs: idempotent per job, numbered per series, failures kept."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.repositories import JobStore, ModelStore, ReadingStore
from atalaia.adapters.db.tables import JobRow
from atalaia.adapters.storage import LocalArtifactStore
from atalaia.core.jobs import JobStatus, TrainingJob
from atalaia.core.registry import ModelVersion, Stage
from atalaia.core.series import Readings
from atalaia.errors import JobNotCancellable, TrainingRateLimited
from atalaia.services import training
from fixtures.readings import sensor_series

Sessions = sessionmaker[Session]
SERIES = "sensor_010_axial"


@pytest.fixture
def artifacts(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "artifacts")


def submit(
    sessions: Sessions,
    artifacts: LocalArtifactStore,
    *,
    seed: int = 0,
    interval: int = 0,
) -> TrainingJob:
    timestamps, values = sensor_series(seed=seed)
    request = training.TrainingRequest(
        SERIES, "robust", {}, readings=Readings(timestamps, values)
    )
    with sessions() as session:
        job = training.submit_training(
            session=session, artifacts=artifacts, request=request,
            actor="test", min_interval_s=interval,
        )  # fmt: skip
        session.commit()
    return job


def run(
    sessions: Sessions, artifacts: LocalArtifactStore, job_id: str
) -> ModelVersion | None:
    return training.run_training_job(job_id, sessions=sessions, artifacts=artifacts)


def versions(sessions: Sessions) -> list[int]:
    with sessions() as session:
        return sorted(v.version for v in ModelStore(session).versions(SERIES))


class TestRunTrainingJob:
    def test_registers_version_one_in_staging(
        self, sessions: Sessions, artifacts: LocalArtifactStore
    ) -> None:
        job = submit(sessions, artifacts)

        model = run(sessions, artifacts, job.job_id)

        assert model is not None
        assert (model.version, model.stage, model.algorithm) == (
            1,
            Stage.STAGING,
            "robust",
        )
        with sessions() as session:
            assert JobStore(session).get(job.job_id).status is JobStatus.SUCCEEDED

    def test_running_a_job_twice_yields_one_version(
        self, sessions: Sessions, artifacts: LocalArtifactStore
    ) -> None:
        job = submit(sessions, artifacts)

        first = run(sessions, artifacts, job.job_id)
        second = run(sessions, artifacts, job.job_id)

        assert first is not None
        assert second is not None
        assert first.version == second.version == 1
        assert versions(sessions) == [1]

    def test_a_job_run_by_two_workers_at_once_yields_one_version(
        self, sessions: Sessions, artifacts: LocalArtifactStore
    ) -> None:
        job = submit(sessions, artifacts)
        results: list[ModelVersion | None] = []
        workers = [
            threading.Thread(
                target=lambda: results.append(run(sessions, artifacts, job.job_id))
            )
            for _ in range(2)
        ]

        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

        assert versions(sessions) == [1]
        assert {r.version for r in results if r is not None} == {1}

    def test_resumes_a_job_whose_worker_died_while_running_it(
        self, sessions: Sessions, artifacts: LocalArtifactStore
    ) -> None:
        job = submit(sessions, artifacts)
        with sessions() as session:  # as left by a worker killed mid-job
            session.execute(
                update(JobRow)
                .where(JobRow.job_id == job.job_id)
                .values(status="running")
            )
            session.commit()

        model = run(sessions, artifacts, job.job_id)

        assert model is not None
        assert versions(sessions) == [1]

    def test_numbers_versions_per_series(
        self, sessions: Sessions, artifacts: LocalArtifactStore
    ) -> None:
        jobs = [submit(sessions, artifacts, seed=s) for s in range(3)]

        for job in jobs:
            run(sessions, artifacts, job.job_id)

        assert versions(sessions) == [1, 2, 3]

    def test_a_cancelled_job_does_not_run(
        self, sessions: Sessions, artifacts: LocalArtifactStore
    ) -> None:
        job = submit(sessions, artifacts)
        with sessions() as session:
            training.cancel_job(session=session, job_id=job.job_id, actor="test")
            session.commit()

        assert run(sessions, artifacts, job.job_id) is None
        assert versions(sessions) == []

    def test_records_why_a_stored_window_could_not_train(
        self, sessions: Sessions, artifacts: LocalArtifactStore
    ) -> None:
        job = submit(sessions, artifacts)
        run(sessions, artifacts, job.job_id)
        with sessions() as session:  # a window job whose data vanished since submission
            window_job = TrainingJob(
                job_id=training.new_job_id(), series_id="ghost",
                status=JobStatus.QUEUED,
                algorithm="zscore", hyperparameters={"threshold_sigma": 3.0},
                payload_key=None, window_hours=24, created_at=job.created_at,
                submitted_by="test",
            )  # fmt: skip
            JobStore(session).add(window_job)
            session.commit()

        assert run(sessions, artifacts, window_job.job_id) is None
        with sessions() as session:
            failed = JobStore(session).get(window_job.job_id)
        assert failed.status is JobStatus.FAILED
        assert failed.error is not None
        assert failed.error["rule"] == "min_points"


class TestPayload:
    def test_inline_data_is_dropped_once_stored_as_readings(
        self, sessions: Sessions, artifacts: LocalArtifactStore
    ) -> None:
        job = submit(sessions, artifacts)
        assert job.payload_key is not None
        assert artifacts.exists(job.payload_key)

        run(sessions, artifacts, job.job_id)

        assert not artifacts.exists(job.payload_key)
        with sessions() as session:
            assert ReadingStore(session).count_last_hours(SERIES, 168) == 10_080


class TestSubmit:
    def test_refuses_a_second_training_within_the_interval(
        self, sessions: Sessions, artifacts: LocalArtifactStore
    ) -> None:
        submit(sessions, artifacts, interval=300)

        with pytest.raises(TrainingRateLimited) as caught:
            submit(sessions, artifacts, interval=300)

        assert 290 <= caught.value.retry_after <= 300

    def test_a_finished_job_cannot_be_cancelled(
        self, sessions: Sessions, artifacts: LocalArtifactStore
    ) -> None:
        job = submit(sessions, artifacts)
        run(sessions, artifacts, job.job_id)

        with sessions() as session, pytest.raises(JobNotCancellable):
            training.cancel_job(session=session, job_id=job.job_id, actor="test")
