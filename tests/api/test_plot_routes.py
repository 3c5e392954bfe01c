"""GET /api/v1/plot over a migrated SQLite database with one trained series."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from fastapi.testclient import TestClient

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.db.migrate import upgrade_database
from atalaia.adapters.db.repositories import ReadingStore
from atalaia.adapters.storage import LocalArtifactStore
from atalaia.api.common.auth import Role
from atalaia.api.common.resources import authenticator_for
from atalaia.api.plot import create_app
from atalaia.core.series import Readings
from atalaia.settings import Settings
from fixtures.fleet import train_then_store

SERIES = "sensor_007_axial"
T0 = 1_733_011_200.0  # 2024-12-01T00:00:00Z
STEP = 60.0
TRAINING_POINTS = 10_000
N = 12_000  # 8⅓ days; the default plot shows the last 7
SPIKES = (10_500, 11_000, 11_800)
URL = "/api/v1/plot"


def _readings() -> Readings:
    rng = np.random.default_rng(11)
    ts = T0 + STEP * np.arange(N)
    values = (
        10.0 + 2.0 * np.sin(2 * np.pi * np.arange(N) / 1440) + rng.normal(0, 0.3, N)
    )
    values[list(SPIKES)] = [18.0, 2.0, 17.5]
    return Readings.of(ts, values)


def _seed(settings: Settings) -> None:
    """Train v1 on the first TRAINING_POINTS readings, then ingest the rest."""
    engine = make_engine(settings.database_url)
    artifacts = LocalArtifactStore(settings.artifacts_path)
    sessions = make_session_factory(engine)
    train_then_store(
        sessions, artifacts, SERIES, "zscore", _readings(), TRAINING_POINTS
    )
    engine.dispose()


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    home: Path = tmp_path_factory.mktemp("plot")
    settings = Settings(
        home=home, database_url=f"sqlite:///{home}/a.db", log_json=False
    )
    upgrade_database(settings.database_url)
    _seed(settings)
    return settings


@pytest.fixture(scope="module")
def anonymous(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def client(anonymous: TestClient, settings: Settings) -> Iterator[TestClient]:
    """The app's client with a viewer's token."""
    token = authenticator_for(settings).issue(subject="t", role=Role.VIEWER, ttl_s=3600)
    anonymous.headers["Authorization"] = f"Bearer {token}"
    yield anonymous
    del anonymous.headers["Authorization"]


def test_json_shows_the_model_and_the_spikes(client: TestClient) -> None:
    response = client.get(URL, params={"series_id": SERIES, "format": "json"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["model"]["version"] == 1
    assert body["model"]["stage"] == "staging"
    assert body["model"]["algorithm"] == "zscore"
    assert body["band"]["lower"] < 10.0 < body["band"]["upper"]
    assert body["training_window"] == {
        "start": T0,
        "end": T0 + STEP * (TRAINING_POINTS - 1),
    }
    expected = [T0 + STEP * i for i in SPIKES]
    assert [a["timestamp"] for a in body["anomalies"]] == expected
    assert all(a["anomaly_score"] > 1.0 for a in body["anomalies"])
    assert body["summary"] == {"points": 7 * 1440, "anomalies": 3}
    assert len(body["points"]["timestamps"]) == 7 * 1440


def test_explicit_window_in_iso_and_epoch_seconds(client: TestClient) -> None:
    start = datetime.fromtimestamp(T0 + STEP * 10_900, UTC).isoformat()
    params = {"series_id": SERIES, "format": "json", "start": start}
    params["end"] = str(T0 + STEP * 11_100)
    body = client.get(URL, params=params).json()
    assert body["summary"] == {"points": 200, "anomalies": 1}
    assert body["anomalies"][0]["timestamp"] == T0 + STEP * 11_000


def test_png(client: TestClient) -> None:
    response = client.get(URL, params={"series_id": SERIES})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n")
    image = matplotlib.image.imread(io.BytesIO(response.content), format="png")
    assert image.ndim == 3


def test_svg(client: TestClient) -> None:
    response = client.get(URL, params={"series_id": SERIES, "format": "svg"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert ET.fromstring(response.content).tag.endswith("svg")


def test_token_is_required(anonymous: TestClient) -> None:
    response = anonymous.get(URL, params={"series_id": SERIES})
    assert response.status_code == 401
    assert response.json()["error"] == "AuthenticationFailed"


def test_unknown_series_and_version(client: TestClient) -> None:
    response = client.get(URL, params={"series_id": "sensor_999_radial"})
    assert response.status_code == 404
    assert response.json()["error"] == "SeriesNotFound"
    response = client.get(URL, params={"series_id": SERIES, "version": 5})
    assert response.status_code == 404
    assert response.json()["error"] == "VersionNotFound"


@pytest.mark.parametrize(
    ("params", "rule"),
    [
        (
            {"start": "2024-12-05T00:00:00Z", "end": "2024-12-04T00:00:00Z"},
            "time_range",
        ),
        (
            {"start": "2024-12-05T00:00:00Z", "end": "2024-12-05T00:00:00Z"},
            "time_range",
        ),
        ({"format": "gif"}, "request_schema"),
        ({"start": "yesterday"}, "request_schema"),
        ({"version": 0}, "request_schema"),
        ({"version": 2**31}, "request_schema"),
        ({"version": 2**63}, "request_schema"),
        ({"start": "1999-12-31T23:59:59Z"}, "timestamp_range"),
        ({"end": "2100-01-01T00:00:01Z"}, "timestamp_range"),
        ({"start": "0001-01-01T00:00:00Z"}, "timestamp_range"),
    ],
)
def test_bad_queries_are_refused(
    client: TestClient, params: dict[str, object], rule: str
) -> None:
    response = client.get(URL, params={"series_id": SERIES, **params})
    assert response.status_code == 422
    assert response.json()["rule"] == rule


# Readings stored before timestamps were bounded (ingest refuses them now), and
# values near float64's limit (finite, so accepted).
STEPS = T0 + STEP * np.arange(3)
LEGACY = {
    "legacy_ms": (T0 * 1000 + 60_000.0 * np.arange(50), np.linspace(0, 1, 50)),
    "legacy_far": (np.array([T0, T0 + 60.0, 1e300]), np.zeros(3)),
    "legacy_past": (np.array([-1e12, -1e12 + 60.0, T0]), np.zeros(3)),
    "legacy_lone": (np.array([1e300]), np.zeros(1)),
    "huge_values": (STEPS, np.array([8e307, -8e307, 0.0])),
}


@pytest.fixture(scope="module")
def legacy(settings: Settings) -> None:
    engine = make_engine(settings.database_url)
    with make_session_factory(engine)() as session:
        store = ReadingStore(session)
        with np.errstate(over="ignore"):  # the store's running spread of huge_values
            for series_id, (ts, vs) in LEGACY.items():
                store.append(series_id, Readings.of(ts, vs))
        session.commit()
    engine.dispose()


@pytest.mark.usefixtures("legacy")
@pytest.mark.parametrize("series_id", sorted(LEGACY))
@pytest.mark.parametrize("format_", ["png", "svg", "json"])
def test_stored_readings_at_any_time_are_plotted(
    client: TestClient, series_id: str, format_: str
) -> None:
    response = client.get(URL, params={"series_id": series_id, "format": format_})
    assert response.status_code == 200, response.text
    if format_ == "json":
        assert response.json()["summary"]["points"] >= 1
