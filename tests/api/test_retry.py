"""Retrying a training job: a failed or cancelled one runs again with its series,
algorithm, hyperparameters and data, under the submission's rules; others are
refused, each with its rule. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.repositories import ReadingStore
from atalaia.adapters.db.tables import AuditRow, JobRow
from atalaia.adapters.storage import LocalArtifactStore
from atalaia.api import training
from atalaia.core.detectors import resolve_hyperparameters
from atalaia.core.jobs import JobStatus
from atalaia.core.series import Readings
from atalaia.services._payload import encode_payload, payload_key
from atalaia.services.training import new_job_id
from atalaia.settings import Settings
from fixtures.api import Headers, SettingsFactory, finished_job
from fixtures.readings import sensor_series

SERIES = "sensor_004_radial"
Sessions = sessionmaker[Session]
HYPERPARAMETERS = resolve_hyperparameters("robust", {"threshold_sigma": 3.5})


@pytest.fixture
def app_settings(database_url: str, make_settings: SettingsFactory) -> Settings:
    return make_settings(database_url, training_min_interval_s=0)


@pytest.fixture
def client(app_settings: Settings) -> Iterator[TestClient]:
    with TestClient(training.create_app(app_settings)) as test_client:
        yield test_client


def week() -> Readings:
    return Readings.of(*sensor_series(10_080))


def store_week(sessions: Sessions, series_id: str = SERIES) -> None:
    with sessions() as session:
        ReadingStore(session).append_many({series_id: week()})
        session.commit()


def add_job(
    sessions: Sessions, status: JobStatus, *, inline: bool = False, **error: Any
) -> str:
    """A job of SERIES (robust, threshold 3.5) in `status`: of inline data
    (its payload key set, nothing stored under it) or of the last week."""
    job_id = new_job_id()
    with sessions() as session:
        session.execute(
            insert(JobRow),
            [{
                "job_id": job_id, "series_id": SERIES, "status": status.value,
                "algorithm": "robust", "hyperparameters": HYPERPARAMETERS,
                "payload_key": payload_key(job_id) if inline else None,
                "window_hours": None if inline else 168.0, "submitted_by": "ana",
                "created_at": datetime.now(UTC), "attempts": 1,
                "error": error or None,
            }],
        )  # fmt: skip
        session.commit()
    return job_id


def retry(client: TestClient, headers: Headers, job_id: str) -> Any:
    return client.post(f"/api/v1/training/jobs/{job_id}/retry", headers=headers)


class TestRetry:
    def test_runs_a_failed_job_again_on_its_stored_window(
        self, client: TestClient, scientist: Headers, sessions: Sessions
    ) -> None:
        store_week(sessions)
        original = add_job(sessions, JobStatus.FAILED, error="DependencyUnavailable")

        answer = retry(client, scientist, original)

        assert answer.status_code == 202, answer.text
        job = answer.json()
        assert job["retry_of"] == original
        assert job["job_id"] != original
        assert (job["series_id"], job["algorithm"]) == (SERIES, "robust")
        assert job["hyperparameters"] == HYPERPARAMETERS
        assert job["source"] == {"kind": "stored", "window_hours": 168.0}
        assert job["submitted_by"] == "tester"
        done = finished_job(client, job["job_id"], scientist)
        assert (done["status"], done["model_version"]) == ("succeeded", 1)
        before = client.get(f"/api/v1/training/jobs/{original}", headers=scientist)
        assert before.json()["status"] == "failed"

    def test_runs_a_cancelled_job_again_on_its_inline_data(
        self,
        client: TestClient,
        scientist: Headers,
        sessions: Sessions,
        app_settings: Settings,
    ) -> None:
        original = add_job(sessions, JobStatus.CANCELLED, inline=True)
        artifacts = LocalArtifactStore(app_settings.artifacts_path)
        artifacts.put(payload_key(original), encode_payload(week()))

        answer = retry(client, scientist, original)

        assert answer.status_code == 202, answer.text
        assert answer.json()["source"] == {"kind": "inline"}
        done = finished_job(client, answer.json()["job_id"], scientist)
        assert done["status"] == "succeeded"
        version = client.get(
            f"/api/v1/models/{SERIES}/versions/1", headers=scientist
        ).json()
        assert version["lineage"]["data_points"] == 10_080
        assert artifacts.exists(payload_key(original))  # may be retried again

    def test_is_written_to_the_audit_log(
        self, client: TestClient, scientist: Headers, sessions: Sessions
    ) -> None:
        store_week(sessions)
        original = add_job(sessions, JobStatus.CANCELLED)

        job_id = retry(client, scientist, original).json()["job_id"]

        with sessions() as session:
            rows = session.scalars(
                select(AuditRow).where(AuditRow.action == "job.retried")
            ).all()
        assert [(r.actor, r.target, r.detail) for r in rows] == [
            ("tester", job_id, {"retry_of": original})
        ]


class TestRefusals:
    @pytest.mark.parametrize(
        "status", [JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.SUCCEEDED]
    )
    def test_a_job_that_neither_failed_nor_was_cancelled_is_409(
        self,
        client: TestClient,
        scientist: Headers,
        sessions: Sessions,
        status: JobStatus,
    ) -> None:
        job_id = add_job(sessions, status)

        answer = retry(client, scientist, job_id)

        assert answer.status_code == 409
        assert answer.json()["rule"] == "job_retryable"
        assert status.value in answer.json()["detail"]

    def test_a_job_whose_inline_data_is_gone_is_409(
        self, client: TestClient, scientist: Headers, sessions: Sessions
    ) -> None:
        job_id = add_job(sessions, JobStatus.FAILED, inline=True)

        answer = retry(client, scientist, job_id)

        assert answer.status_code == 409
        assert answer.json()["rule"] == "job_payload_kept"
        jobs = client.get("/api/v1/training/jobs", headers=scientist).json()["jobs"]
        assert [j["job_id"] for j in jobs] == [job_id]  # nothing submitted

    def test_a_window_that_no_longer_holds_enough_readings_is_422(
        self, client: TestClient, scientist: Headers, sessions: Sessions
    ) -> None:
        job_id = add_job(sessions, JobStatus.FAILED)  # no readings stored

        answer = retry(client, scientist, job_id)

        assert answer.status_code == 422
        assert answer.json()["rule"] == "min_points"

    def test_an_unknown_job_is_404(
        self, client: TestClient, scientist: Headers
    ) -> None:
        answer = retry(client, scientist, new_job_id())

        assert answer.status_code == 404
        assert answer.json()["rule"] == "job_exists"

    def test_a_viewer_may_not_retry(
        self, client: TestClient, viewer: Headers, sessions: Sessions
    ) -> None:
        job_id = add_job(sessions, JobStatus.FAILED)

        answer = retry(client, viewer, job_id)

        assert answer.status_code == 403
        assert answer.json()["rule"] == "role_allows"


def test_the_series_training_interval_holds_for_retries(
    database_url: str,
    make_settings: SettingsFactory,
    scientist: Headers,
    sessions: Sessions,
) -> None:
    store_week(sessions)
    settings = make_settings(database_url, training_min_interval_s=300)
    with TestClient(training.create_app(settings)) as client:
        original = add_job(sessions, JobStatus.FAILED)
        assert retry(client, scientist, original).status_code == 202

        again = retry(client, scientist, original)

    assert again.status_code == 429
    assert again.json()["rule"] == "series_training_interval"
    assert 290 <= int(again.headers["Retry-After"]) <= 300
