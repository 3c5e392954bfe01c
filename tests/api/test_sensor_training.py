"""A sensor's axes trained together (multivariate) through the training API."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient
from httpx import Response

from fixtures.api import Headers, finished_job, refused
from fixtures.readings import sensor_series

SENSOR = "sensor_007"
AXES = ("radial", "axial", "tangential")


def store_axes(client: TestClient, headers: Headers, n: int = 10_080) -> None:
    """Three axes following one load (a shared daily cycle) at shared times."""
    timestamps, load = sensor_series(n, seed=1)
    noise = np.random.default_rng(2).normal(0, 0.005, (n, len(AXES)))
    for k, axis in enumerate(AXES):
        values = (k + 1) * load + noise[:, k]
        body = {"timestamps": timestamps.tolist(), "values": values.tolist()}
        response = client.post(
            f"/api/v1/series/{SENSOR}_{axis}/points", json=body, headers=headers
        )
        assert response.status_code == 200, response.text


def train_sensor(client: TestClient, headers: Headers, **body: object) -> Response:
    response: Response = client.post(
        f"/api/v1/training/{SENSOR}",
        json={"config": {"algorithm": "multivariate"}, **body},
        headers=headers,
    )
    return response


def test_a_sensor_trains_on_its_axes_shared_timestamps(
    client: TestClient, admin: Headers
) -> None:
    store_axes(client, admin)

    response = train_sensor(client, admin, window_hours=168)
    assert response.status_code == 202, response.text
    job = finished_job(client, response.json()["job_id"], admin)

    assert job["status"] == "succeeded", job
    version = client.get(
        f"/api/v1/models/{SENSOR}/versions/{job['model_version']}", headers=admin
    ).json()
    assert version["algorithm"] == "multivariate"
    assert version["metrics"]["axes"] == "axial,radial,tangential"
    assert version["metrics"]["training_points"] == 10_080


def test_a_sensor_trains_on_stored_readings_only(
    client: TestClient, admin: Headers
) -> None:
    store_axes(client, admin)
    timestamps, values = sensor_series(10_080)
    inline = {"timestamps": timestamps.tolist(), "values": values.tolist()}

    assert "window_hours" in refused(
        train_sensor(client, admin, **inline), "sensor_window"
    )


def test_a_sensor_without_axes_is_refused(client: TestClient, admin: Headers) -> None:
    response = train_sensor(client, admin, window_hours=168)

    assert "no stored series" in refused(response, "sensor_axes")


def test_sensors_are_not_trained_in_batches(client: TestClient, admin: Headers) -> None:
    store_axes(client, admin)
    response = client.post(
        "/api/v1/training/batch",
        json={"sensor_id": SENSOR, "window_hours": 168,
              "config": {"algorithm": "multivariate"}},
        headers=admin,
    )  # fmt: skip

    assert "one at a time" in refused(response, "sensor_batch")
