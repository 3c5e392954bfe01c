"""Training refuses data unfit to train on (its data-quality report's blocking
findings), unless the request overrides those rules; on each database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from atalaia.api import training
from fixtures.api import Headers, SettingsFactory, finished_job, inline_body, refused
from fixtures.fleet import store
from fixtures.readings import sensor_series

SERIES = "sensor_041_radial"


@pytest.fixture
def client(database_url: str, make_settings: SettingsFactory) -> Iterator[TestClient]:
    """The training service (jobs run in-process), on each database."""
    settings = make_settings(database_url, training_min_interval_s=0)  # retries
    with TestClient(training.create_app(settings)) as test_client:
        yield test_client


def stuck_body(**extra: Any) -> dict[str, Any]:
    """A week of minutes whose sensor held one value for 1,000 of them."""
    body = inline_body()
    values = body["values"]
    values[3_000:4_000] = [values[3_000]] * 1_000
    return body | extra


def switched_body() -> dict[str, Any]:
    """A week of minutes sent in millivolts from reading 6,000 on."""
    body = inline_body()
    body["values"][6_000:] = [v * 1000 for v in body["values"][6_000:]]
    return body


def submit(client: TestClient, headers: Headers, body: dict[str, Any]) -> Any:
    return client.post(f"/api/v1/training/{SERIES}", json=body, headers=headers)


def stored(sessions: sessionmaker[Session], body: dict[str, Any]) -> None:
    store(sessions, SERIES, body["timestamps"], body["values"])


class TestInlineData:
    def test_unfit_data_is_422_naming_the_findings(
        self, client: TestClient, scientist: Headers
    ) -> None:
        response = submit(client, scientist, stuck_body())

        detail = refused(response, "data_quality")
        assert "stuck" in detail
        [finding] = response.json()["findings"]
        assert finding["rule"] == "stuck"
        assert finding["figures"]["count"] == 1
        jobs = client.get("/api/v1/training/jobs", headers=scientist).json()["jobs"]
        assert jobs == []

    def test_an_overridden_rule_trains(
        self, client: TestClient, scientist: Headers
    ) -> None:
        body = stuck_body(data_quality={"ignore": ["stuck"]})

        response = submit(client, scientist, body)

        assert response.status_code == 202, response.text
        assert response.json()["quality_ignored"] == ["stuck"]
        job = finished_job(client, response.json()["job_id"], scientist)
        assert job["status"] == "succeeded", job

    def test_overriding_another_rule_still_refuses(
        self, client: TestClient, scientist: Headers
    ) -> None:
        body = stuck_body(data_quality={"ignore": ["gaps", "unit_jump"]})

        refused(submit(client, scientist, body), "data_quality")

    def test_ignoring_all_trains(self, client: TestClient, scientist: Headers) -> None:
        body = switched_body() | {"data_quality": {"ignore": "all"}}

        response = submit(client, scientist, body)

        assert response.status_code == 202, response.text
        assert len(response.json()["quality_ignored"]) > 5

    @pytest.mark.parametrize("ignore", [["stuck", "flat"], "everything"])
    def test_an_unknown_rule_is_422(
        self, client: TestClient, scientist: Headers, ignore: str | list[str]
    ) -> None:
        body = inline_body() | {"data_quality": {"ignore": ignore}}

        detail = refused(submit(client, scientist, body), "data_quality_ignore")

        assert "flat" in detail or "everything" in detail


class TestStoredWindow:
    def test_unfit_stored_data_fails_the_job_naming_the_findings(
        self,
        client: TestClient,
        sessions: sessionmaker[Session],
        scientist: Headers,
    ) -> None:
        stored(sessions, switched_body())

        response = submit(client, scientist, {"window_hours": 168})

        assert response.status_code == 202, response.text
        job = finished_job(client, response.json()["job_id"], scientist)
        assert job["status"] == "failed", job
        assert job["error"]["rule"] == "data_quality"
        assert "unit_jump" in job["error"]["detail"]

    def test_an_overridden_rule_trains(
        self,
        client: TestClient,
        sessions: sessionmaker[Session],
        scientist: Headers,
    ) -> None:
        stored(sessions, switched_body())
        body = {"window_hours": 168, "data_quality": {"ignore": ["unit_jump"]}}

        response = submit(client, scientist, body)

        job = finished_job(client, response.json()["job_id"], scientist)
        assert job["status"] == "succeeded", job
        assert job["quality_ignored"] == ["unit_jump"]

    def test_a_batch_carries_its_override_to_every_job(
        self,
        client: TestClient,
        sessions: sessionmaker[Session],
        scientist: Headers,
    ) -> None:
        stored(sessions, stuck_body())
        batch = {"series_ids": [SERIES], "data_quality": {"ignore": ["stuck"]}}

        response = client.post("/api/v1/training/batch", json=batch, headers=scientist)

        assert response.status_code == 202, response.text
        [job] = response.json()["jobs"]
        assert finished_job(client, job["job_id"], scientist)["status"] == "succeeded"

    def test_a_batch_without_override_fails_the_unfit_series_job(
        self,
        client: TestClient,
        sessions: sessionmaker[Session],
        scientist: Headers,
    ) -> None:
        stored(sessions, stuck_body())

        response = client.post(
            "/api/v1/training/batch", json={"series_ids": [SERIES]}, headers=scientist
        )

        [job] = response.json()["jobs"]
        failed = finished_job(client, job["job_id"], scientist)
        assert failed["status"] == "failed"
        assert failed["error"]["rule"] == "data_quality"

    def test_a_retry_keeps_the_override(
        self,
        client: TestClient,
        sessions: sessionmaker[Session],
        scientist: Headers,
    ) -> None:
        stored(sessions, switched_body())
        body = {"window_hours": 168, "data_quality": {"ignore": ["stuck"]}}
        first = submit(client, scientist, body).json()
        assert finished_job(client, first["job_id"], scientist)["status"] == "failed"

        response = client.post(
            f"/api/v1/training/jobs/{first['job_id']}/retry", headers=scientist
        )

        assert response.status_code == 202, response.text
        assert response.json()["quality_ignored"] == ["stuck"]


class TestSensorWindow:
    @pytest.mark.parametrize(
        ("ignore", "status"), [([], "failed"), (["stuck"], "succeeded")]
    )
    def test_an_unfit_axis_fails_the_sensor_job_unless_overridden(
        self,
        client: TestClient,
        sessions: sessionmaker[Session],
        scientist: Headers,
        ignore: list[str],
        status: str,
    ) -> None:
        ts, load = sensor_series(seed=1)
        noise = np.random.default_rng(2).normal(0, 0.005, (ts.size, 2))
        store(sessions, "sensor_042_radial", ts, load + noise[:, 0])
        axial = 2 * load + noise[:, 1]
        axial[1_000:2_500] = axial[1_000]
        store(sessions, "sensor_042_axial", ts, axial)
        body = {
            "window_hours": 168,
            "config": {"algorithm": "multivariate"},
            "data_quality": {"ignore": ignore},
        }

        response = client.post(
            "/api/v1/training/sensor_042", json=body, headers=scientist
        )

        job = finished_job(client, response.json()["job_id"], scientist)
        assert job["status"] == status, job
        if status == "failed":
            assert job["error"]["rule"] == "data_quality"
            assert job["error"]["detail"].startswith("the axial axis' data is unfit")
