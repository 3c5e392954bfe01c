"""The training service's batch route as the scheduler's BatchSubmitter."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.db.tables import JobRow
from atalaia.adapters.storage import LocalArtifactStore
from atalaia.adapters.training_api import TrainingApiSubmitter
from atalaia.api.common.auth import Role
from atalaia.api.common.resources import authenticator_for
from atalaia.api.training import create_app
from atalaia.errors import DependencyUnavailable
from atalaia.services.scheduler import ACTOR, retrain_fleet
from atalaia.settings import Settings
from fixtures.fleet import serve_series

NOW = datetime.now(UTC)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Test settings that let a series train again at once."""
    return settings.model_copy(update={"training_min_interval_s": 0})


@pytest.fixture
def training(settings: Settings) -> Iterator[TestClient]:
    """The training service alone, on a fresh SQLite database."""
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def sessions(
    training: TestClient,  # noqa: ARG001  (it migrates the database)
    settings: Settings,
) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(settings.database_url)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


def token(settings: Settings, role: Role = Role.DATA_SCIENTIST) -> str:
    return authenticator_for(settings).issue(subject=ACTOR, role=role, ttl_s=60)


def test_the_fleet_retrains_through_the_training_service(
    training: TestClient,
    sessions: sessionmaker[Session],
    settings: Settings,
    tmp_path: Path,
) -> None:
    artifacts = LocalArtifactStore(tmp_path / "artifacts")
    for seed, series_id in enumerate(["sensor_001_radial", "sensor_001_axial"]):
        serve_series(sessions, artifacts, series_id, end=NOW.timestamp(), seed=seed)
    submitter = TrainingApiSubmitter(training, token=lambda: token(settings))

    report = retrain_fleet(
        sessions=sessions, submitter=submitter, window_hours=168, now=NOW
    )

    with sessions() as session:
        jobs = session.scalars(select(JobRow).where(JobRow.submitted_by == ACTOR))
        batches = {job.series_id: job.batch_id for job in jobs}
    assert batches == dict.fromkeys(
        ["sensor_001_axial", "sensor_001_radial"], report.batches[0]
    )
    assert (report.accepted, report.rejected, report.error) == (2, [], None)


def test_a_refused_batch_is_a_dependency_failure(
    training: TestClient, settings: Settings
) -> None:
    submitter = TrainingApiSubmitter(
        training, token=lambda: token(settings, Role.VIEWER)
    )

    with pytest.raises(DependencyUnavailable, match="HTTP 403"):
        submitter.submit(
            ["sensor_001_radial"],
            algorithm="zscore",
            hyperparameters={},
            window_hours=1,
        )


def test_an_unreachable_training_service_is_a_dependency_failure(
    settings: Settings,
) -> None:
    with httpx.Client(base_url="http://127.0.0.1:9", timeout=2) as client:
        submitter = TrainingApiSubmitter(client, token=lambda: token(settings))
        with pytest.raises(DependencyUnavailable, match="ConnectError"):
            submitter.submit(
                ["s"], algorithm="zscore", hyperparameters={}, window_hours=1
            )


def test_a_batch_refused_whole_reports_each_series(
    training: TestClient, settings: Settings
) -> None:
    submitter = TrainingApiSubmitter(training, token=lambda: token(settings))

    batch = submitter.submit(
        ["sensor_001_radial"], algorithm="zscore", hyperparameters={}, window_hours=1
    )

    assert (batch.accepted, [r["rule"] for r in batch.rejected]) == (0, ["min_points"])
