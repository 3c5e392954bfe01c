"""A version's training data, kept when it was trained: read back as Parquet or
CSV, and enough to train the same model again."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.db.repositories import JobStore, ModelStore
from atalaia.api.common.auth import Role
from atalaia.core.jobs import JobStatus, TrainingJob
from atalaia.embedded import create_embedded_app
from atalaia.settings import Settings
from fixtures.api import (
    Headers,
    SettingsFactory,
    bearer,
    finished_job,
    inline_body,
    train,
)
from fixtures.factories import model_version

SERIES = "press7-motor"
URL = f"/api/v1/models/{SERIES}/versions/1/training-data"


@pytest.fixture
def settings(make_settings: SettingsFactory, tmp_path: Path) -> Settings:
    return make_settings(f"sqlite:///{tmp_path}/atalaia.db", training_min_interval_s=0)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_embedded_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def viewer(settings: Settings) -> Headers:
    return bearer(settings, Role.VIEWER)


def test_a_version_reads_back_the_data_it_was_fitted_on(
    client: TestClient, admin: Headers, viewer: Headers
) -> None:
    train(client, SERIES, admin, seed=4)

    parquet = client.get(URL, headers=viewer)
    csv = client.get(URL, params={"format": "csv"}, headers=viewer)

    assert parquet.status_code == csv.status_code == 200, parquet.text
    assert parquet.headers["content-type"] == "application/vnd.apache.parquet"
    assert f"{SERIES}-v1-training-data.csv" in csv.headers["content-disposition"]
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.column_names == ["timestamp", "value"]
    from_csv = pa_csv.read_csv(io.BytesIO(csv.content))
    assert from_csv.column_names == ["timestamp", "value"]
    full = inline_body(seed=4)
    np.testing.assert_array_equal(table.column("timestamp"), full["timestamps"])
    np.testing.assert_array_equal(table.column("value"), full["values"])
    np.testing.assert_allclose(from_csv.column("value"), full["values"])


def test_the_kept_data_trains_the_same_model_again(
    client: TestClient, admin: Headers
) -> None:
    train(client, SERIES, admin, seed=7)
    table = pq.read_table(io.BytesIO(client.get(URL, headers=admin).content))

    again = client.post(
        f"/api/v1/training/{SERIES}",
        json={
            "timestamps": table.column("timestamp").to_pylist(),
            "values": table.column("value").to_pylist(),
        },
        headers=admin,
    )
    assert again.status_code == 202, again.text
    finished_job(client, again.json()["job_id"], admin)
    versions = client.get(f"/api/v1/models/{SERIES}/versions", headers=admin).json()
    first, second = sorted(versions, key=lambda v: v["version"])
    assert first["lineage"]["data_hash"] == second["lineage"]["data_hash"]
    assert first["lineage"]["data_snapshot"].startswith("training-data/")
    assert first["params"] == second["params"]


def test_a_version_trained_without_a_snapshot_says_so(
    client: TestClient, settings: Settings, viewer: Headers
) -> None:
    sessions = make_session_factory(make_engine(settings.database_url))
    model = model_version(1, series_id=SERIES)
    with sessions() as session:
        JobStore(session).add(
            TrainingJob(
                job_id=model.lineage.job_id, series_id=SERIES,
                status=JobStatus.SUCCEEDED, algorithm=model.algorithm,
                hyperparameters=model.lineage.hyperparameters, payload_key=None,
                window_hours=None, created_at=model.created_at, submitted_by="t",
            )
        )  # fmt: skip
        session.flush()
        ModelStore(session).add(model, actor="t")
        session.commit()

    answer = client.get(URL, headers=viewer)

    assert answer.status_code == 404
    assert answer.json()["rule"] == "training_data_kept"


def test_an_unknown_version_or_format_is_refused(
    client: TestClient, admin: Headers
) -> None:
    assert client.get(URL, headers=admin).status_code == 404
    train(client, SERIES, admin)
    bad = client.get(URL, params={"format": "xlsx"}, headers=admin)
    assert bad.status_code == 422
