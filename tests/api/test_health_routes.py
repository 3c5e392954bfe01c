"""Probes and the consolidated status."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from atalaia.api import health
from fixtures.api import Headers, SettingsFactory


class TestProbes:
    def test_ready_lists_its_checks(self, client: TestClient) -> None:
        body = client.get("/ready").json()

        assert body["status"] == "ready"
        assert {"database", "executor", "models"} <= set(body["checks"])

    def test_metrics_count_requests_by_route_template(
        self, client: TestClient, viewer: Headers
    ) -> None:
        client.post(
            "/api/v1/predict/abc", json={"timestamp": 1.7e9, "value": 1}, headers=viewer
        )

        text = client.get("/metrics").text

        assert 'route="/api/v1/predict/{series_id}"' in text
        assert "anomaly_predictions_total" in text
        assert "series_id=" not in text.replace(
            'route="/api/v1/predict/{series_id}"', ""
        )


class TestConsolidatedStatus:
    def test_embedded_platform_is_healthy(self, client: TestClient) -> None:
        body = client.get("/api/v1/health").json()

        assert body["status"] == "healthy"
        assert set(body["services"]) == {"training", "inference", "plot"}

    def test_reports_unreachable_services_as_down(
        self, make_settings: SettingsFactory, tmp_path: Path
    ) -> None:
        closed = "http://127.0.0.1:9"  # the discard port: nothing listens there
        settings = make_settings(
            f"sqlite:///{tmp_path}/h.db",
            training_url=closed,
            inference_url=closed,
            plot_url=closed,
        )
        with TestClient(health.create_app(settings)) as client:
            response = client.get("/api/v1/health")

        assert response.status_code == 503
        assert response.json()["status"] == "unhealthy"
        assert response.json()["services"]["inference"]["status"] == "down"
