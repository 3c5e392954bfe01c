"""Training on the S3 artifact store when it fails: a version is registered only
once its artifact is in the bucket, and a job whose store is down waits for
a retry instead of failing."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.repositories import JobStore, ModelStore
from atalaia.adapters.storage.s3 import S3ArtifactStore
from atalaia.core.jobs import JobStatus, TrainingJob
from atalaia.core.series import Readings
from atalaia.errors import DependencyUnavailable
from atalaia.services import training
from fixtures.readings import sensor_series
from fixtures.s3 import on_send, s3_store, through
from fixtures.tcp_proxy import TcpProxy

Sessions = sessionmaker[Session]
SERIES = "sensor_020_radial"
FOREST = {"trees": 20}  # a model with an artifact: its trees


def submit(sessions: Sessions, artifacts: S3ArtifactStore) -> TrainingJob:
    """A forest's training job on inline data (stored in the bucket)."""
    timestamps, values = sensor_series()
    request = training.TrainingRequest(
        SERIES, "isolation_forest", dict(FOREST), readings=Readings(timestamps, values)
    )
    with sessions() as session:
        job = training.submit_training(
            session=session, artifacts=artifacts, request=request,
            actor="test", min_interval_s=0,
        )  # fmt: skip
        session.commit()
    return job


def status_and_versions(sessions: Sessions, job_id: str) -> tuple[JobStatus, int]:
    with sessions() as session:
        status = JobStore(session).get(job_id).status
        return status, len(ModelStore(session).versions(SERIES))


class TestStoreDownWhileTraining:
    def test_an_artifact_put_that_fails_registers_no_version(
        self, sessions: Sessions, s3_server: str, s3_bucket: str, s3_proxy: TcpProxy
    ) -> None:
        store = s3_store(through(s3_proxy), s3_bucket, connect_timeout_s=0.5)
        job = submit(sessions, store)
        on_send(store, "PutObject", s3_proxy.cut)  # the model's put, after the data

        with pytest.raises(DependencyUnavailable):
            training.run_training_job(job.job_id, sessions=sessions, artifacts=store)

        assert status_and_versions(sessions, job.job_id) == (JobStatus.RUNNING, 0)
        direct = s3_store(s3_server, s3_bucket)
        assert list(direct.keys("models/")) == []
        assert direct.exists(job.payload_key or "")  # kept for the retry

        model = training.run_training_job(
            job.job_id, sessions=sessions, artifacts=direct
        )  # the store back: the retry registers the version, its artifact stored

        assert model is not None
        assert model.artifact is not None
        assert direct.exists(model.artifact)
        assert status_and_versions(sessions, job.job_id) == (JobStatus.SUCCEEDED, 1)

    def test_a_job_whose_data_cannot_be_read_waits_for_a_retry(
        self, sessions: Sessions, s3_server: str, s3_bucket: str, s3_proxy: TcpProxy
    ) -> None:
        store = s3_store(through(s3_proxy), s3_bucket, connect_timeout_s=0.5)
        job = submit(sessions, store)
        s3_proxy.cut()

        with pytest.raises(DependencyUnavailable):
            training.run_training_job(job.job_id, sessions=sessions, artifacts=store)

        assert status_and_versions(sessions, job.job_id) == (JobStatus.RUNNING, 0)
        direct = s3_store(s3_server, s3_bucket)
        model = training.run_training_job(
            job.job_id, sessions=sessions, artifacts=direct
        )
        assert model is not None
        assert status_and_versions(sessions, job.job_id) == (JobStatus.SUCCEEDED, 1)
