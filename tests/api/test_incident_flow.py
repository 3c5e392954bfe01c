"""From a reading to a notification through the embedded platform: anomalous
predictions and readings sent in become one incident, told once to a real
webhook receiver, and resolved by the normal readings that follow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from atalaia.embedded import create_embedded_app
from atalaia.settings import Settings
from fixtures.api import Headers, serve, wait_for
from fixtures.readings import DAY_S, EPOCH
from fixtures.receivers import Receiver

START = EPOCH + 7 * DAY_S  # after the training week, at its daily phase 0
LEVEL, ABOVE = 0.3, 50.0  # `sensor_series`' level, and far above its band


@pytest.fixture
def alerting(settings: Settings, receiver: Receiver, tmp_path: Path) -> Settings:
    rules = tmp_path / "alerts.yaml"
    target = receiver.url("/ops")
    rules.write_text(
        f"channels:\n  - {{name: ops, type: webhook, target: '{target}'}}\n"
        "rules:\n  - {name: all, channels: [ops]}\n"
    )
    return settings.model_copy(
        update={
            "alert_rules_file": rules, "incident_flush_s": 0.05,
            "alerter_poll_s": 0.05, "incident_resolve_after": 3,
        }
    )  # fmt: skip


def told(receiver: Receiver, event: str, count: int = 1) -> list[dict[str, Any]]:
    def probe() -> list[dict[str, Any]] | None:
        bodies = [r.body for r in receiver.requests if r.body["event"] == event]
        return bodies if len(bodies) >= count else None

    return wait_for(probe, attempts=400)


def test_anomalous_predictions_make_one_incident_told_once_then_resolved(
    alerting: Settings, receiver: Receiver, admin: Headers
) -> None:
    with TestClient(create_embedded_app(alerting)) as client:
        version = serve(client, "pump_01_x", admin, algorithm="zscore")
        values = [LEVEL] * 3 + [ABOVE] * 5 + [LEVEL] * 4
        for i, value in enumerate(values):
            answer = client.post(
                "/api/v1/predict/pump_01_x",
                json={"timestamp": START + 60 * i, "value": value},
                headers=admin,
            ).json()
            assert answer["anomaly"] is (3 <= i < 8)

        (opened,) = told(receiver, "incident.opened")
        (resolved,) = told(receiver, "incident.resolved")
        incident = opened["data"]["incident"]
        assert incident["sensor_id"] == "pump_01"
        assert incident["peak"]["series_id"] == "pump_01_x"
        assert incident["peak"]["version"] == version["version"]
        assert resolved["data"]["incident"]["count"] == 5
        assert resolved["data"]["incident"]["state"] == "resolved"
        assert len(receiver.requests) == 2
        keys = {r.headers["Idempotency-Key"] for r in receiver.requests}
        assert len(keys) == 2


def test_readings_sent_in_are_grouped_without_any_prediction(
    alerting: Settings, receiver: Receiver, admin: Headers
) -> None:
    with TestClient(create_embedded_app(alerting)) as client:
        serve(client, "press_07_axial", admin, algorithm="zscore")
        response = client.post(
            "/api/v1/series/press_07_axial/points",
            json={
                "timestamps": [START + 60 * i for i in range(6)],
                "values": [LEVEL, ABOVE, ABOVE, ABOVE, LEVEL, LEVEL],
            },
            headers=admin,
        )
        assert response.status_code in (200, 201), response.text

        (opened,) = told(receiver, "incident.opened")
        incident = opened["data"]["incident"]
        assert (incident["sensor_id"], incident["count"]) == ("press_07", 3)
        assert incident["series"] == ["press_07_axial"]
