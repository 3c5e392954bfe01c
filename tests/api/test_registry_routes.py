"""Registry API: versions, direct promotion, rollback, deployment config."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from atalaia.api.common.auth import Role
from atalaia.embedded import create_embedded_app
from fixtures.api import Headers, SettingsFactory, bearer, promote, train, wait_for

SERIES = "sensor_002_axial"


@pytest.fixture
def client(make_settings: SettingsFactory, tmp_path: object) -> Iterator[TestClient]:
    """The embedded app without the per-series training interval."""
    settings = make_settings(
        f"sqlite:///{tmp_path}/atalaia.db", training_min_interval_s=0
    )
    with TestClient(create_embedded_app(settings)) as test_client:
        yield test_client


def _versions(client: TestClient, headers: Headers) -> dict[int, str]:
    body = client.get(f"/api/v1/models/{SERIES}/versions", headers=headers).json()
    return {v["version"]: v["stage"] for v in body}


class TestPromotion:
    def test_direct_promotion_archives_the_previous_production_version(
        self, client: TestClient, admin: Headers
    ) -> None:
        train(client, SERIES, admin, seed=1)
        train(client, SERIES, admin, seed=2)
        promote(client, SERIES, 1, admin)

        promote(client, SERIES, 2, admin)

        assert _versions(client, admin) == {1: "archived", 2: "production"}

    def test_only_a_staging_version_can_be_promoted(
        self, client: TestClient, admin: Headers
    ) -> None:
        train(client, SERIES, admin)
        promote(client, SERIES, 1, admin)

        response = client.post(
            f"/api/v1/models/{SERIES}/versions/1/promote", json={}, headers=admin
        )

        assert response.status_code == 409
        assert response.json()["error"] == "VersionNotPromotable"

    def test_keeps_the_old_version_in_staging_without_archive_existing(
        self, client: TestClient, admin: Headers
    ) -> None:
        train(client, SERIES, admin, seed=1)
        train(client, SERIES, admin, seed=2)
        promote(client, SERIES, 1, admin)

        client.post(
            f"/api/v1/models/{SERIES}/versions/2/promote",
            json={"strategy": "direct", "archive_existing": False},
            headers=admin,
        )

        assert _versions(client, admin) == {1: "staging", 2: "production"}

    @pytest.mark.parametrize("strategy", ["canary", "shadow"])
    def test_a_rollout_needs_a_production_version_beside_it(
        self, client: TestClient, admin: Headers, strategy: str
    ) -> None:
        train(client, SERIES, admin)

        response = client.post(
            f"/api/v1/models/{SERIES}/versions/1/promote",
            json={"strategy": strategy},
            headers=admin,
        )

        assert response.status_code == 409
        assert response.json()["rule"] == "rollout_beside_production"
        assert _versions(client, admin) == {1: "staging"}

    def test_unknown_version_is_404(self, client: TestClient, admin: Headers) -> None:
        response = client.post(
            f"/api/v1/models/{SERIES}/versions/9/promote", json={}, headers=admin
        )

        assert response.status_code == 404
        assert response.json()["error"] == "VersionNotFound"


class TestRollback:
    def test_puts_back_the_previous_production_version(
        self, client: TestClient, admin: Headers
    ) -> None:
        train(client, SERIES, admin, seed=1)
        train(client, SERIES, admin, seed=2)
        promote(client, SERIES, 1, admin)
        promote(client, SERIES, 2, admin)

        response = client.post(f"/api/v1/models/{SERIES}/rollback", headers=admin)

        assert response.status_code == 200
        assert _versions(client, admin) == {1: "production", 2: "archived"}
        config = client.get(f"/api/v1/models/{SERIES}/deployment-config", headers=admin)
        assert config.json()["production_version"] == 1
        assert [h["to_stage"] for h in config.json()["history"]][-2:] == [
            "archived",
            "production",
        ]

    def test_with_a_single_production_version_is_409(
        self, client: TestClient, admin: Headers
    ) -> None:
        train(client, SERIES, admin)
        promote(client, SERIES, 1, admin)

        response = client.post(f"/api/v1/models/{SERIES}/rollback", headers=admin)

        assert response.status_code == 409
        assert response.json()["error"] == "NothingToRollBack"


class TestListing:
    def test_lists_models_with_their_production_version(
        self, client: TestClient, admin: Headers
    ) -> None:
        train(client, SERIES, admin)
        promote(client, SERIES, 1, admin)

        body = client.get("/api/v1/models", headers=admin).json()

        assert body["models"] == [
            {
                "series_id": SERIES,
                "versions": 1,
                "latest_version": 1,
                "production_version": 1,
            }
        ]


class TestMetrics:
    def test_counts_predictions_and_checks_drift(
        self, make_settings: SettingsFactory, tmp_path: Path
    ) -> None:
        settings = make_settings(
            f"sqlite:///{tmp_path}/m.db", inference_stats_flush_s=0.05
        )
        admin = bearer(settings, Role.ADMIN)
        with TestClient(create_embedded_app(settings)) as client:
            train(client, SERIES, admin)
            promote(client, SERIES, 1, admin)
            client.post(f"/api/v1/admin/reload/{SERIES}", headers=admin)
            for value in (0.3, 0.31, 99.0):
                client.post(
                    f"/api/v1/predict/{SERIES}",
                    json={"timestamp": 1.7e9, "value": value},
                    headers=admin,
                )

            def flushed() -> dict[str, Any] | None:
                body: dict[str, Any] = client.get(
                    f"/api/v1/models/{SERIES}/metrics?window=24h", headers=admin
                ).json()
                return body if body["predictions"]["count"] == 3 else None

            body = wait_for(flushed)

        assert body["production_version"] == 1
        assert body["predictions"]["anomalies"] == 1
        assert body["drift_detection"]["data_drift_detected"] is False
        assert body["drift_detection"]["concept_drift_detected"] is False
        assert body["drift_detection"]["recent_points"] > 1000

    def test_bad_window_is_422(self, client: TestClient, admin: Headers) -> None:
        train(client, SERIES, admin)

        response = client.get(
            f"/api/v1/models/{SERIES}/metrics?window=1y", headers=admin
        )

        assert response.status_code == 422
        assert response.json()["rule"] == "window_format"
