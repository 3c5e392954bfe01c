"""A sensor's axes trained together (multivariate) through the training API,
promoted, and scored together by the inference service."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from httpx import Response

from fixtures.api import Headers, finished_job, post_ok, promote, refused, wait_for
from fixtures.assets import put_file
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


def serve_sensor(client: TestClient, headers: Headers) -> None:
    """Store the axes, train the sensor on them and promote its version."""
    store_axes(client, headers)
    job = finished_job(
        client,
        train_sensor(client, headers, window_hours=168).json()["job_id"],
        headers,
    )
    promote(client, SENSOR, job["model_version"], headers)


def test_a_promoted_sensor_is_scored_axes_together(
    client: TestClient, admin: Headers
) -> None:
    serve_sensor(client, admin)
    later = 1_800_000_000.0

    def predict(t: float, values: dict[str, float]) -> dict[str, Any]:
        body = {"timestamp": t, "values": values}
        return post_ok(client, admin, f"/api/v1/predict/sensors/{SENSOR}", body)

    def served() -> bool | None:  # promotions reach inference through its feed
        path = f"/api/v1/predict/sensors/{SENSOR}"
        body = {"timestamp": later - 600, "values": dict.fromkeys(AXES, 0.0)}
        return client.post(path, json=body, headers=admin).status_code == 200 or None

    wait_for(served)
    normal = predict(later, {"radial": 0.3, "axial": 0.6, "tangential": 0.9})
    broken = predict(later + 60, {"radial": 0.3, "axial": 0.6, "tangential": 0.3})

    assert not normal["anomaly"]
    assert normal["model_info"]["type"] == "multivariate"
    assert broken["anomaly"]
    assert broken["reason"] == "axis_correlation_break"
    assert broken["contributing_axes"][0] == "tangential"
    assert sum(a["contribution"] for a in broken["axes"].values()) == pytest.approx(1)
    assert broken["axes"]["tangential"]["expected"] == pytest.approx(0.9, abs=0.05)
    wrong = client.post(
        f"/api/v1/predict/sensors/{SENSOR}",
        json={"timestamp": later, "values": {"radial": 0.3}},
        headers=admin,
    )
    assert "radial" in refused(wrong, "sensor_axes")
    too_early = client.post(
        f"/api/v1/predict/sensors/{SENSOR}",
        json={"timestamp": 1.0, "values": dict.fromkeys(AXES, 0.0)},
        headers=admin,
    )
    refused(too_early, "timestamp_range")


def test_a_sensor_without_a_model_is_not_found(
    client: TestClient, admin: Headers
) -> None:
    response = client.post(
        "/api/v1/predict/sensors/sensor_404",
        json={"timestamp": 1_800_000_000.0, "values": {"radial": 1.0}},
        headers=admin,
    )

    assert response.status_code == 404
    assert response.json()["rule"] == "sensor_served"


def test_a_batch_of_sensor_readings_is_scored_as_one_request_each(
    client: TestClient, admin: Headers
) -> None:
    serve_sensor(client, admin)
    later = 1_800_000_000.0
    normal = {"radial": 0.3, "axial": 0.6, "tangential": 0.9}
    broken = {"radial": 0.3, "axial": 0.6, "tangential": 0.3}
    readings = [  # out of time order: scored in time order
        {"sensor_id": SENSOR, "timestamp": later + 60 * k, "values": v}
        for k, v in ((2, broken), (0, normal), (1, normal))
    ]

    def batch(body: dict[str, Any]) -> Response:
        response: Response = client.post(
            "/api/v1/predict/sensors/batch", json=body, headers=admin
        )
        return response

    wait_for(lambda: batch({"readings": readings[1:2]}).status_code == 200 or None)
    answer = post_ok(client, admin, "/api/v1/predict/sensors/batch",
                     {"readings": readings})  # fmt: skip

    assert (answer["count"], answer["anomalies"]) == (3, 1)
    assert [r["timestamp"] for r in answer["results"]] == [
        later + 120,
        later,
        later + 60,
    ]
    assert answer["results"][0]["reason"] == "axis_correlation_break"
    assert not answer["results"][1]["anomaly"]
    one_axis_missing = {**readings[0], "values": {"radial": 0.3}}
    unknown = {**readings[0], "sensor_id": "sensor_404"}
    assert "radial" in refused(batch({"readings": [one_axis_missing]}), "sensor_axes")
    not_served = batch({"readings": [readings[0], unknown]})
    assert not_served.status_code == 404
    assert not_served.json()["rule"] == "sensor_served"


MACHINE_TREE = """\
id,kind,name,parent
plant9,site,Plant 9,
press9,machine,Press 9,plant9
sensor_007,sensor,Bearing,press9
sensor_008,sensor,Motor,press9
"""


def test_a_machine_trains_its_sensors_together_as_the_hierarchy_groups_them(
    client: TestClient, admin: Headers
) -> None:
    """A machine's sensors: one model over every series under the machine,
    its axes named by their series ids."""
    imported = put_file(client, admin, MACHINE_TREE)
    assert imported.status_code == 200, imported.text
    store_axes(client, admin)  # sensor_007's three axes
    timestamps, load = sensor_series(10_080, seed=1)
    motor = {"timestamps": timestamps.tolist(), "values": (4 * load).tolist()}
    stored = client.post("/api/v1/series/sensor_008_current/points", json=motor,
                         headers=admin)  # fmt: skip
    assert stored.status_code == 200, stored.text

    response = client.post(
        "/api/v1/training/press9",
        json={"config": {"algorithm": "multivariate"}, "window_hours": 168},
        headers=admin,
    )
    assert response.status_code == 202, response.text
    job = finished_job(client, response.json()["job_id"], admin)

    assert job["status"] == "succeeded", job
    version = client.get(
        f"/api/v1/models/press9/versions/{job['model_version']}", headers=admin
    ).json()
    series = [f"{SENSOR}_{axis}" for axis in AXES] + ["sensor_008_current"]
    assert version["metrics"]["axes"] == ",".join(sorted(series))
    promote(client, "press9", job["model_version"], admin)
    values = {f"{SENSOR}_radial": 0.3, f"{SENSOR}_axial": 0.6,
              f"{SENSOR}_tangential": 0.9, "sensor_008_current": 1.2}  # fmt: skip
    body = {"timestamp": 1_800_000_000.0, "values": values}

    def scored() -> dict[str, Any] | None:
        answer = client.post("/api/v1/predict/sensors/press9", json=body,
                             headers=admin)  # fmt: skip
        return answer.json() if answer.status_code == 200 else None

    normal = wait_for(scored)
    assert not normal["anomaly"]
    body["values"] = values | {"sensor_008_current": 0.1}  # the motor alone drops
    broken = post_ok(client, admin, "/api/v1/predict/sensors/press9", body)
    assert broken["anomaly"]
    assert broken["contributing_axes"][0] == "sensor_008_current"


def test_a_group_larger_than_a_prediction_carries_is_refused(
    client: TestClient, admin: Headers
) -> None:
    sensors = "".join(f"s{i:03d},sensor,S{i},press9\n" for i in range(65))
    assert put_file(client, admin, MACHINE_TREE + sensors).status_code == 200
    body = {"series_id": [f"s{i:03d}_x" for i in range(65)],
            "timestamp": [1.7e9] * 65, "value": [0.3] * 65}  # fmt: skip
    assert client.post("/api/v1/series/points", json=body, headers=admin).is_success

    response = client.post(
        "/api/v1/training/press9",
        json={"config": {"algorithm": "multivariate"}, "window_hours": 168},
        headers=admin,
    )
    assert "at most 64" in refused(response, "group_size")
