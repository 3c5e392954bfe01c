"""Training API: validation rules, the per-series limit, jobs and their lifecycle."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.storage import LocalArtifactStore
from atalaia.api.common.auth import Role
from atalaia.embedded import create_embedded_app
from atalaia.services.training import TrainingRequest, submit_training
from atalaia.settings import Settings
from fixtures.api import (
    Headers,
    SettingsFactory,
    bearer,
    finished_job,
    inline_body,
    train,
)

SERIES = "sensor_001_radial"


def _broken(rule: str) -> dict[str, Any]:
    body = inline_body()
    ts, vs = body["timestamps"], body["values"]
    if rule == "min_points":
        return inline_body(n=9_999)
    if rule == "max_points":
        return inline_body(n=100_001)
    if rule == "equal_lengths":
        vs.pop()
    elif rule == "strictly_increasing":
        ts[10], ts[11] = ts[11], ts[10]
    elif rule == "no_duplicates":
        ts[11] = ts[10]
    elif rule == "finite_values":
        vs[5], vs[7] = math.nan, math.inf
    elif rule == "non_constant":
        body["values"] = [0.5] * len(vs)
    return body


class TestTrainingValidation:
    @pytest.mark.parametrize(
        "rule",
        [
            "min_points",
            "max_points",
            "equal_lengths",
            "strictly_increasing",
            "no_duplicates",
            "finite_values",
            "non_constant",
        ],
    )
    def test_rejects_each_broken_rule_and_stores_nothing(
        self, client: TestClient, scientist: Headers, rule: str
    ) -> None:
        # Python's json writes NaN as the bare literal that some clients send.
        response = client.post(
            f"/api/v1/training/{SERIES}",
            content=json.dumps(_broken(rule)),
            headers=scientist | {"content-type": "application/json"},
        )

        assert response.status_code == 422
        assert response.json()["error"] == "InvalidSeries"
        assert response.json()["rule"] == rule
        assert (
            client.get("/api/v1/training/jobs", headers=scientist).json()["jobs"] == []
        )
        assert client.get("/api/v1/series", headers=scientist).json()["series"] == []

    def test_rejects_a_bad_series_id(
        self, client: TestClient, scientist: Headers
    ) -> None:
        response = client.post(
            "/api/v1/training/bad%20id", json=inline_body(), headers=scientist
        )

        assert response.status_code == 422
        assert response.json()["rule"] == "series_id_format"

    def test_rejects_an_unknown_algorithm(
        self, client: TestClient, scientist: Headers
    ) -> None:
        body = inline_body(algorithm="prophet")

        response = client.post(
            f"/api/v1/training/{SERIES}", json=body, headers=scientist
        )

        assert response.status_code == 422
        assert response.json()["rule"] == "algorithm_known"

    def test_rejects_a_negative_threshold(
        self, client: TestClient, scientist: Headers
    ) -> None:
        body = inline_body(algorithm="zscore", hyperparameters={"threshold_sigma": -1})

        response = client.post(
            f"/api/v1/training/{SERIES}", json=body, headers=scientist
        )

        assert response.status_code == 422
        assert response.json()["rule"] == "hyperparameters_positive"

    def test_rejects_a_window_without_enough_stored_points(
        self, client: TestClient, scientist: Headers
    ) -> None:
        response = client.post(
            f"/api/v1/training/{SERIES}", json={"window_hours": 168}, headers=scientist
        )

        assert response.status_code == 422
        assert response.json()["rule"] == "min_points"

    def test_rejects_both_data_sources(
        self, client: TestClient, scientist: Headers
    ) -> None:
        body = inline_body() | {"window_hours": 24}

        response = client.post(
            f"/api/v1/training/{SERIES}", json=body, headers=scientist
        )

        assert response.status_code == 422
        assert response.json()["rule"] == "request_schema"

    def test_rejects_malformed_json(
        self, client: TestClient, scientist: Headers
    ) -> None:
        response = client.post(
            f"/api/v1/training/{SERIES}",
            content=b"{not json",
            headers=scientist | {"content-type": "application/json"},
        )

        assert response.status_code == 422
        assert response.json()["rule"] == "request_schema"

    def test_names_the_field_that_breaks_the_schema(
        self, client: TestClient, scientist: Headers
    ) -> None:
        response = client.post(
            f"/api/v1/training/{SERIES}",
            json={"window_hours": -1},
            headers=scientist,
        )

        assert response.status_code == 422
        assert response.json()["rule"] == "request_schema"
        assert response.json()["detail"].startswith("body.window_hours:")

    def test_documents_the_body_it_parses_itself(self, client: TestClient) -> None:
        spec = client.get("/openapi.json").json()
        body = spec["paths"]["/api/v1/training/{series_id}"]["post"]["requestBody"]
        schema = body["content"]["application/json"]["schema"]

        assert body["required"] is True
        assert {"timestamps", "values", "window_hours", "config"} <= set(
            schema["properties"]
        )
        ref = schema["properties"]["config"]["$ref"]
        assert ref.rsplit("/", 1)[1] in spec["components"]["schemas"]


class TestTrainingJobs:
    def test_accepts_then_registers_version_one_in_staging(
        self, client: TestClient, scientist: Headers
    ) -> None:
        response = client.post(
            f"/api/v1/training/{SERIES}", json=inline_body(), headers=scientist
        )

        assert response.status_code == 202
        assert response.json()["status"] == "queued"
        job = finished_job(client, response.json()["job_id"], scientist)
        assert job["status"] == "succeeded"
        assert job["model_version"] == 1
        version = client.get(
            f"/api/v1/models/{SERIES}/versions/1", headers=scientist
        ).json()
        assert version["stage"] == "staging"
        assert version["lineage"]["job_id"] == job["job_id"]
        assert version["lineage"]["data_points"] == 10_080
        assert version["lineage"]["data_hash"].startswith("sha256:")
        assert version["reference"]["count"] == 10_080

    def test_limits_one_training_per_series_per_interval(
        self, client: TestClient, scientist: Headers
    ) -> None:
        train(client, SERIES, scientist)

        response = client.post(
            f"/api/v1/training/{SERIES}", json=inline_body(), headers=scientist
        )

        assert response.status_code == 429
        assert 0 < int(response.headers["Retry-After"]) <= 300
        assert response.json()["error"] == "TrainingRateLimited"

    def test_trains_from_the_stored_window(
        self, client: TestClient, scientist: Headers
    ) -> None:
        body = inline_body()
        client.post(f"/api/v1/series/{SERIES}/points", json=body, headers=scientist)

        response = client.post(
            f"/api/v1/training/{SERIES}", json={"window_hours": 168}, headers=scientist
        )

        job = finished_job(client, response.json()["job_id"], scientist)
        assert job["status"] == "succeeded", job
        assert job["source"] == {"kind": "stored", "window_hours": 168.0}

    def test_a_failed_job_is_counted_in_the_metrics(
        self, client: TestClient, scientist: Headers
    ) -> None:
        body = inline_body()
        body["values"] = [0.5] * len(body["values"])  # stored, then refused to train
        client.post(f"/api/v1/series/{SERIES}/points", json=body, headers=scientist)
        before = _failed_jobs_counted(client)

        response = client.post(
            f"/api/v1/training/{SERIES}", json={"window_hours": 168}, headers=scientist
        )

        job = finished_job(client, response.json()["job_id"], scientist)
        assert job["status"] == "failed", job
        assert _failed_jobs_counted(client) == before + 1

    def test_unknown_job_is_404(self, client: TestClient, viewer: Headers) -> None:
        response = client.get("/api/v1/training/jobs/nope", headers=viewer)

        assert response.status_code == 404
        assert response.json()["error"] == "JobNotFound"

    def test_cancelling_a_finished_job_is_409(
        self, client: TestClient, scientist: Headers
    ) -> None:
        job = train(client, SERIES, scientist)

        response = client.delete(
            f"/api/v1/training/jobs/{job['job_id']}", headers=scientist
        )

        assert response.status_code == 409

    def test_lists_jobs_a_page_at_a_time(
        self, client: TestClient, scientist: Headers
    ) -> None:
        for i in range(3):
            train(client, f"sensor_00{i}_axial", scientist, seed=i)

        first = client.get("/api/v1/training/jobs?limit=2", headers=scientist).json()
        rest = client.get(
            f"/api/v1/training/jobs?limit=2&cursor={first['next_cursor']}",
            headers=scientist,
        ).json()

        ids = [j["series_id"] for j in first["jobs"] + rest["jobs"]]
        assert sorted(ids) == [
            "sensor_000_axial",
            "sensor_001_axial",
            "sensor_002_axial",
        ]
        assert rest["next_cursor"] is None


def _failed_jobs_counted(client: TestClient) -> float:
    [family] = [
        f
        for f in text_string_to_metric_families(client.get("/metrics").text)
        if f.name == "training_jobs_failed"
    ]
    return float(family.samples[0].value)


class TestBatchTraining:
    def test_queues_every_series_of_a_sensor(
        self, client: TestClient, scientist: Headers
    ) -> None:
        for axis in ("radial", "axial"):
            client.post(
                f"/api/v1/series/sensor_009_{axis}/points",
                json=inline_body(),
                headers=scientist,
            )

        response = client.post(
            "/api/v1/training/batch",
            json={"sensor_id": "sensor_009", "window_hours": 168},
            headers=scientist,
        )

        assert response.status_code == 202
        body = response.json()
        assert body["accepted"] == 2
        for job in body["jobs"]:
            assert (
                finished_job(client, job["job_id"], scientist)["status"] == "succeeded"
            )

    def test_reports_series_it_cannot_train(
        self, client: TestClient, scientist: Headers
    ) -> None:
        client.post(
            f"/api/v1/series/{SERIES}/points", json=inline_body(), headers=scientist
        )

        response = client.post(
            "/api/v1/training/batch",
            json={"series_ids": [SERIES, "empty_series"]},
            headers=scientist,
        )

        assert response.status_code == 202
        assert response.json()["accepted"] == 1
        assert response.json()["rejected"] == [
            {"series_id": "empty_series", "error": "InvalidSeries",
             "rule": "min_points", "detail": response.json()["rejected"][0]["detail"]}
        ]  # fmt: skip

    def test_refuses_a_batch_of_which_no_series_can_be_trained(
        self, client: TestClient, scientist: Headers
    ) -> None:
        response = client.post(
            "/api/v1/training/batch",
            json={"series_ids": ["empty_series", "bad id"]},
            headers=scientist,
        )

        assert response.status_code == 422
        body = response.json()
        assert (body["error"], body["rule"]) == ("BatchRefused", "batch_trainable")
        assert [(r["series_id"], r["rule"]) for r in body["rejected"]] == [
            ("bad id", "series_id_format"), ("empty_series", "min_points"),
        ]  # fmt: skip

    def test_a_batch_refused_by_the_interval_alone_is_rate_limited(
        self, client: TestClient, scientist: Headers
    ) -> None:
        train(client, SERIES, scientist)

        response = client.post(
            "/api/v1/training/batch",
            json={"series_ids": [SERIES]},
            headers=scientist,
        )

        assert response.status_code == 429
        body = response.json()
        assert (body["error"], body["rule"]) == (
            "BatchRateLimited", "series_training_interval",
        )  # fmt: skip
        assert 0 < int(response.headers["Retry-After"]) <= 300
        assert body["rejected"][0]["retry_after"] == int(
            response.headers["Retry-After"]
        )


class TestRecovery:
    def test_sweeper_runs_a_queued_job_nobody_dispatched(
        self, make_settings: SettingsFactory, tmp_path: Path
    ) -> None:
        settings = make_settings(f"sqlite:///{tmp_path}/r.db", stuck_job_after_s=1)
        headers = bearer(settings, Role.DATA_SCIENTIST)
        with TestClient(create_embedded_app(settings)) as client:
            body = inline_body()
            client.post(f"/api/v1/series/{SERIES}/points", json=body, headers=headers)
            job = _queued_job_behind_the_executors_back(settings)

            finished = finished_job(client, job, headers)

        assert finished["status"] == "succeeded"


def _queued_job_behind_the_executors_back(settings: Settings) -> str:
    """Commit a queued job row without dispatching it (as a crash in between would)."""
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    try:
        with sessions() as session:
            request = TrainingRequest(SERIES, "zscore", {}, window_hours=168)
            job = submit_training(
                session=session, artifacts=LocalArtifactStore(settings.artifacts_path),
                request=request, actor="test", min_interval_s=0,
            )  # fmt: skip
            session.commit()
    finally:
        engine.dispose()
    return job.job_id
