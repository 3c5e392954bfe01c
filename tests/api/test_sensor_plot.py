"""GET /api/v1/plot/sensors/{sensor_id} over a migrated SQLite database with one
sensor (three axes following one load) trained on its first week; its second
week holds an axis-correlation break and a reading one axis missed."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib.image
import numpy as np
import pytest
from fastapi.testclient import TestClient

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.db.migrate import upgrade_database
from atalaia.adapters.db.repositories import ModelStore, ReadingStore
from atalaia.adapters.storage import LocalArtifactStore
from atalaia.api.common.auth import Role
from atalaia.api.plot import create_app
from atalaia.core.detectors.multivariate import SensorScores
from atalaia.core.series import Readings
from atalaia.errors import InvalidInput
from atalaia.services.sensor_plotting import SensorPlotQuery, build_sensor_plot_data
from atalaia.services.training import TrainingRequest, run_training_job, submit_training
from atalaia.settings import Settings
from fixtures.api import bearer
from fixtures.readings import EPOCH, ONE_WEEK_OF_MINUTES, STEP_S, sensor_series

SENSOR = "sensor_007"
AXES = ("radial", "axial", "tangential")  # modelled in name order
N = 2 * ONE_WEEK_OF_MINUTES  # trained on the first week
BREAK = range(N - 3 * 1440, N - 3 * 1440 + 30)  # tangential leaves the load
MISSED = N - 1440  # radial has no reading then
URL = f"/api/v1/plot/sensors/{SENSOR}"
AXIAL = f"{SENSOR}_axial"


def _axes() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Timestamps, and each axis' values: (k + 1) × one load, plus noise."""
    timestamps, load = sensor_series(N, seed=1)
    noise = np.random.default_rng(2).normal(0, 0.005, (N, len(AXES)))
    values = {axis: (k + 1) * load + noise[:, k] for k, axis in enumerate(AXES)}
    values["tangential"][list(BREAK)] -= 0.15  # within its range, not the others'
    return timestamps, values


def _store(settings: Settings, part: slice) -> None:
    timestamps, values = _axes()
    engine = make_engine(settings.database_url)
    with make_session_factory(engine)() as session:
        store = ReadingStore(session)
        for axis, vs in values.items():
            keep = np.zeros(N, np.bool_)
            keep[part] = True
            if axis == "radial":
                keep[MISSED] = False
            readings = Readings(timestamps[keep], vs[keep])
            store.append(f"{SENSOR}_{axis}", readings)
        session.commit()
    engine.dispose()


def _train(settings: Settings, request: TrainingRequest) -> None:
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    artifacts = LocalArtifactStore(settings.artifacts_path)
    with sessions() as session:
        job = submit_training(
            session=session, artifacts=artifacts, request=request, actor="test",
            min_interval_s=0,
        )  # fmt: skip
        session.commit()
    assert run_training_job(job.job_id, sessions=sessions, artifacts=artifacts)
    engine.dispose()


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """v1 of the sensor on its first week; then its second week is stored, and
    one axis gets a series model (v1 of its own)."""
    home: Path = tmp_path_factory.mktemp("sensor_plot")
    settings = Settings(
        home=home, database_url=f"sqlite:///{home}/a.db", log_json=False
    )
    upgrade_database(settings.database_url)
    _store(settings, slice(0, ONE_WEEK_OF_MINUTES))
    _train(settings, TrainingRequest(SENSOR, "multivariate", {}, window_hours=168))
    _store(settings, slice(ONE_WEEK_OF_MINUTES, N))
    _train(settings, TrainingRequest(AXIAL, "zscore", {}, window_hours=168))
    return settings


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    """The plot app's client with a viewer's token."""
    with TestClient(create_app(settings)) as client:
        client.headers.update(bearer(settings, Role.VIEWER))
        yield client


def _library_scores(settings: Settings, rows: np.ndarray) -> SensorScores:
    """The stored model's scores of `rows` (axes in the model's order)."""
    engine = make_engine(settings.database_url)
    with make_session_factory(engine)() as session:
        sensor = ModelStore(session).get(SENSOR, 1).sensor
    engine.dispose()
    assert sensor is not None
    assert sensor.axes == tuple(sorted(AXES))
    return sensor.params.score(rows)


def _plot(client: TestClient, **params: object) -> dict[str, Any]:
    response = client.get(URL, params={"format": "json", **params})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


def test_json_is_the_library_scoring_of_the_shared_readings(
    client: TestClient, settings: Settings
) -> None:
    body = _plot(client)

    timestamps, values = _axes()
    week = np.arange(N - ONE_WEEK_OF_MINUTES, N)
    shared = week[week != MISSED]  # radial missed it: not a shared timestamp
    rows = np.column_stack([values[axis][shared] for axis in sorted(AXES)])
    library = _library_scores(settings, rows)
    points = body["points"]
    assert points["timestamps"] == timestamps[shared].tolist()
    assert points["anomaly_score"] == pytest.approx(library.score.tolist())
    assert points["anomaly"] == library.anomaly.tolist()
    for k, axis in enumerate(sorted(AXES)):
        column = points["axes"][axis]
        assert column["series_id"] == f"{SENSOR}_{axis}"
        assert column["values"] == rows[:, k].tolist()
        for band in ("expected", "lower", "upper"):
            assert column[band] == pytest.approx(getattr(library, band)[:, k].tolist())
    assert body["summary"] == {
        "points": shared.size,
        "anomalies": int(library.anomaly.sum()),
    }


def test_the_break_is_an_anomaly_led_by_its_axis(client: TestClient) -> None:
    body = _plot(client)

    broken = [EPOCH + STEP_S * i for i in BREAK]
    found = {a["timestamp"]: a for a in body["anomalies"]}
    assert set(broken) <= set(found)
    for timestamp in broken:
        anomaly = found[timestamp]
        assert anomaly["reason"] == "axis_correlation_break"
        assert anomaly["direction"] == "below"
        assert anomaly["top_axis"] == "tangential"
        assert anomaly["anomaly_score"] > 1.0
        axes = anomaly["axes"]
        assert sum(a["contribution"] for a in axes.values()) == pytest.approx(1.0)
        tangential = axes["tangential"]
        assert tangential["value"] < tangential["lower"] < tangential["expected"]
    clear = {t for t, a in found.items() if a["anomaly_score"] > 2.0}
    assert clear == set(broken)  # elsewhere, at most a reading at the threshold


def test_json_names_the_model_and_its_training_window(client: TestClient) -> None:
    body = _plot(client)

    assert body["sensor_id"] == SENSOR
    assert body["model"] == {
        "version": 1,
        "stage": "staging",
        "algorithm": "multivariate",
        "axes": sorted(AXES),
        "modelled_axes": sorted(AXES),
        "threshold": 4.0,
        "window": 5,
    }
    last_trained = EPOCH + STEP_S * (ONE_WEEK_OF_MINUTES - 1)
    assert body["training_window"] == {"start": EPOCH, "end": last_trained}


def test_an_explicit_window_and_version(client: TestClient) -> None:
    start, end = EPOCH + STEP_S * BREAK[0], EPOCH + STEP_S * BREAK[-1]
    body = _plot(client, start=start, end=end, version=1)

    assert body["window"] == {"start": start, "end": end}
    assert len(body["points"]["timestamps"]) == len(BREAK) - 1


def test_a_window_without_shared_readings_is_empty(client: TestClient) -> None:
    before = {"start": EPOCH - 7200.0, "end": EPOCH - 3600.0}
    body = _plot(client, **before)

    assert body["summary"] == {"points": 0, "anomalies": 0}
    assert body["points"]["axes"]["radial"]["values"] == []
    png = client.get(URL, params=before)
    assert png.status_code == 200
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")


def test_png_has_a_panel_per_axis_and_the_score(client: TestClient) -> None:
    response = client.get(URL)

    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    image = matplotlib.image.imread(io.BytesIO(response.content), format="png")
    assert image.shape[:2] == (780, 1200)


def test_svg(client: TestClient) -> None:
    response = client.get(URL, params={"format": "svg"})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert ET.fromstring(response.content).tag == "{http://www.w3.org/2000/svg}svg"


def test_a_token_is_required(settings: Settings) -> None:
    with TestClient(create_app(settings)) as anonymous:
        response = anonymous.get(URL)

    assert response.status_code == 401


@pytest.mark.parametrize(
    ("path", "params", "error", "rule"),
    [
        ("/api/v1/plot/sensors/sensor_404", {}, "SensorModelNotFound",
         "sensor_model_exists"),
        (f"/api/v1/plot/sensors/{AXIAL}", {}, "SensorModelNotFound",
         "sensor_model_exists"),
        (f"/api/v1/plot/sensors/{AXIAL}", {"version": 1}, "SensorModelNotFound",
         "sensor_model_exists"),
        (URL, {"version": 9}, "VersionNotFound", "version_exists"),
    ],
)  # fmt: skip
def test_a_sensor_without_that_model_is_not_found(
    client: TestClient, path: str, params: dict[str, object], error: str, rule: str
) -> None:
    response = client.get(path, params=params)

    assert response.status_code == 404
    assert (response.json()["error"], response.json()["rule"]) == (error, rule)


@pytest.mark.parametrize(
    ("params", "rule"),
    [
        ({"start": "2024-12-05T00:00:00Z", "end": "2024-12-04T00:00:00Z"},
         "time_range"),
        ({"start": "2024-12-05T00:00:00Z", "end": "2024-12-05T00:00:00Z"},
         "time_range"),
        ({"start": "yesterday"}, "request_schema"),
        ({"format": "gif"}, "request_schema"),
        ({"version": 0}, "request_schema"),
        ({"end": "2100-01-01T00:00:01Z"}, "timestamp_range"),
    ],
)  # fmt: skip
def test_bad_windows_are_refused(
    client: TestClient, params: dict[str, object], rule: str
) -> None:
    response = client.get(URL, params=params)

    assert response.status_code == 422
    assert response.json()["rule"] == rule


def test_a_window_over_the_point_limit_is_refused(settings: Settings) -> None:
    engine = make_engine(settings.database_url)
    with make_session_factory(engine)() as session, pytest.raises(InvalidInput) as no:
        build_sensor_plot_data(session, SensorPlotQuery(SENSOR), max_points=3 * 1000)
    engine.dispose()

    assert no.value.rule == "max_window_points"


def test_a_sensor_id_breaking_the_rule_names_it(client: TestClient) -> None:
    response = client.get("/api/v1/plot/sensors/not%20an%20id")

    assert response.status_code == 422
    assert response.json()["rule"] == "series_id_format"
