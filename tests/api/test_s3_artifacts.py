"""The embedded platform with its artifacts in a bucket of an S3-compatible
server: a forest trained, promoted and served from its trees in the bucket;
the store down, a training with inline data answered 503."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from atalaia.settings import Settings
from fixtures.api import Headers, SettingsFactory, inline_body, predict, serve
from fixtures.s3 import s3_store, through
from fixtures.tcp_proxy import TcpProxy

SERIES = "sensor_030_radial"
FOREST: dict[str, Any] = {
    "algorithm": "isolation_forest",
    "hyperparameters": {"trees": 20},
}


def on_bucket(
    make_settings: SettingsFactory, endpoint: str, bucket: str, database: str
) -> Settings:
    return make_settings(
        database,
        artifacts_url=f"s3://{bucket}/atalaia",
        s3_endpoint_url=endpoint,
        s3_path_style=True,
        s3_connect_timeout_s=0.5,
        s3_max_attempts=2,
    )


class TestOnTheBucket:
    @pytest.fixture
    def settings(
        self,
        make_settings: SettingsFactory,
        s3_server: str,
        s3_bucket: str,
        tmp_path: Path,
    ) -> Settings:
        return on_bucket(
            make_settings, s3_server, s3_bucket, f"sqlite:///{tmp_path}/atalaia.db"
        )

    def test_a_forest_is_trained_promoted_and_served_from_the_bucket(
        self,
        client: TestClient,
        admin: Headers,
        settings: Settings,
        s3_server: str,
        s3_bucket: str,
    ) -> None:
        version = serve(client, SERIES, admin, **FOREST)
        answer = predict(client, admin, 0.31, SERIES, 1_733_700_060.0)

        assert answer["model_info"]["type"] == "isolation_forest"
        assert answer["model_info"]["version"] == version["version"]
        kept = client.get(
            f"/api/v1/models/{SERIES}/versions/{version['version']}/training-data",
            params={"format": "csv"},
            headers=admin,
        )
        assert kept.status_code == 200, kept.text
        assert len(kept.text.splitlines()) > 10_000  # the week it was fitted on
        bucket = s3_store(s3_server, s3_bucket)
        stored = sorted(bucket.keys())
        assert version["artifact"] in stored
        assert [k.split("/")[0] for k in stored] == ["models", "training-data"]
        assert not settings.artifacts_path.exists()  # the payload discarded, too


class TestStoreDown:
    @pytest.fixture
    def settings(
        self,
        make_settings: SettingsFactory,
        s3_proxy: TcpProxy,
        s3_bucket: str,
        tmp_path: Path,
    ) -> Settings:
        return on_bucket(
            make_settings,
            through(s3_proxy),
            s3_bucket,
            f"sqlite:///{tmp_path}/atalaia.db",
        )

    @pytest.fixture
    def down(self, client: TestClient, s3_proxy: TcpProxy) -> Iterator[TestClient]:
        s3_proxy.cut()
        yield client
        s3_proxy.restore()

    def test_a_training_with_inline_data_is_answered_503(
        self, down: TestClient, admin: Headers
    ) -> None:
        response = down.post(
            f"/api/v1/training/{SERIES}", json=inline_body(), headers=admin
        )

        assert response.status_code == 503, response.text
        assert response.json()["rule"] == "dependency_available"
        assert "artifact store is unavailable" in response.json()["detail"]
        jobs = down.get("/api/v1/training/jobs", headers=admin).json()
        assert jobs["jobs"] == []  # no job refers to data that was not stored
