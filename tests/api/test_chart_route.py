"""GET /api/v1/series/{series_id}/chart: decimated readings with the model's
band at their times, anomalies (capped), change points and incidents."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.db.migrate import upgrade_database
from atalaia.adapters.db.repositories import AnomalyLog, ModelStore, ReadingStore
from atalaia.adapters.storage import LocalArtifactStore
from atalaia.api import training
from atalaia.api.common.auth import Role
from atalaia.core.registry import served_band
from atalaia.core.series import Readings
from atalaia.core.serving import ScoredAnomaly
from atalaia.services.chart import MAX_ANOMALIES
from atalaia.services.plotting import PlotQuery, build_plot_data
from atalaia.settings import Settings
from fixtures.api import Headers, SettingsFactory, bearer, refused
from fixtures.fleet import train_then_store
from fixtures.incidents import anomaly, record
from fixtures.readings import sensor_series

T0 = 1_733_011_200.0  # 2024-12-01T00:00:00Z
STEP = 60.0
FLAT = "sensor_007_axial"  # zscore; 12,000 readings, 3 spikes after training
SPIKES = (10_500, 11_000, 11_800)
SEASONAL = "sensor_008_radial"  # a daily cycle, a week of minutes
MANY = "sensor_009_radial"  # 8,000 anomalies of distinct scores after training
TRAINING_POINTS = 10_000


def url(series_id: str) -> str:
    return f"/api/v1/series/{series_id}/chart"


def _flat() -> Readings:
    rng = np.random.default_rng(11)
    n = 12_000
    values = 10.0 + 2.0 * np.sin(2 * np.pi * np.arange(n) / 1440)
    values += rng.normal(0, 0.3, n)
    values[list(SPIKES)] = [18.0, 2.0, 17.5]
    return Readings.of(T0 + STEP * np.arange(n), values)


def _many() -> Readings:
    """Normal readings to train on, then 8,000 far above the band, each a
    different distance away (a shuffled ramp)."""
    rng = np.random.default_rng(12)
    normal = rng.normal(5.0, 0.5, TRAINING_POINTS)
    far = 20.0 + rng.permutation(8_000) * 0.01
    n = TRAINING_POINTS + far.size
    return Readings.of(T0 + STEP * np.arange(n), np.concatenate([normal, far]))


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    home: Path = tmp_path_factory.mktemp("chart")
    settings = Settings(
        home=home, database_url=f"sqlite:///{home}/a.db", log_json=False
    )
    upgrade_database(settings.database_url)
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    artifacts = LocalArtifactStore(settings.artifacts_path)
    train_then_store(sessions, artifacts, FLAT, "zscore", _flat())
    train_then_store(sessions, artifacts, MANY, "zscore", _many())
    seasonal = Readings(*sensor_series(TRAINING_POINTS, start=T0))
    train_then_store(sessions, artifacts, SEASONAL, "seasonal", seasonal)
    engine.dispose()
    return settings


@pytest.fixture(scope="module")
def anonymous(seeded: Settings) -> Iterator[TestClient]:
    with TestClient(training.create_app(seeded)) as client:
        yield client


@pytest.fixture
def client(anonymous: TestClient, seeded: Settings) -> Iterator[TestClient]:
    """The training service's client with a viewer's token."""
    anonymous.headers.update(bearer(seeded, Role.VIEWER))
    yield anonymous
    del anonymous.headers["Authorization"]


def chart(client: TestClient, series_id: str, **params: Any) -> dict[str, Any]:
    response = client.get(url(series_id), params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def stored(settings: Settings, series_id: str) -> Readings:
    engine = make_engine(settings.database_url)
    with make_session_factory(engine)() as session:
        readings = ReadingStore(session).window(series_id)
    engine.dispose()
    return readings


class TestPoints:
    def test_the_default_week_is_decimated_keeping_the_spikes(
        self, client: TestClient, seeded: Settings
    ) -> None:
        body = chart(client, FLAT)

        week = 7 * 1440
        end = float(np.nextafter(T0 + STEP * 11_999, np.inf))  # the newest, included
        assert body["window"] == {"start": end - 7 * 86_400, "end": end}
        assert body["readings"] == week
        assert body["decimated"] is True
        t, value = body["points"]["t"], body["points"]["value"]
        assert len(t) == len(value) <= 4 * 1_000
        assert t == sorted(set(t))
        readings = stored(seeded, FLAT)
        at = np.searchsorted(readings.timestamps, t)
        assert np.array_equal(readings.timestamps[at], t)  # readings, not made up
        assert np.array_equal(readings.values[at], value)
        for spike in SPIKES:
            assert T0 + STEP * spike in t
        assert (min(value), max(value)) == (2.0, 18.0)

    def test_a_wide_chart_or_a_zoomed_window_is_left_whole(
        self, client: TestClient
    ) -> None:
        wide = chart(client, FLAT, points=5_000)
        start = datetime.fromtimestamp(T0 + STEP * 10_900, UTC).isoformat()
        zoomed = chart(client, FLAT, start=start, end=str(T0 + STEP * 11_100))

        assert (wide["decimated"], len(wide["points"]["t"])) == (False, 7 * 1440)
        assert zoomed["readings"] == len(zoomed["points"]["t"]) == 200
        assert zoomed["decimated"] is False
        assert zoomed["points"]["t"][0] == T0 + STEP * 10_900

    def test_a_window_without_readings_is_empty(self, client: TestClient) -> None:
        body = chart(client, FLAT, start=T0 - 3_600, end=T0)

        assert (body["readings"], body["decimated"]) == (0, False)
        assert body["points"] == {"t": [], "value": []}
        assert body["band"] == {"t": [], "expected": [], "lower": [], "upper": []}
        assert body["anomalies_total"] == 0

    def test_model_and_training_window(self, client: TestClient) -> None:
        body = chart(client, FLAT)

        assert body["model"]["version"] == 1
        assert body["model"]["stage"] == "staging"
        assert body["model"]["algorithm"] == "zscore"
        assert body["training_window"] == {
            "start": T0,
            "end": T0 + STEP * (TRAINING_POINTS - 1),
        }


class TestBand:
    def _model_band(
        self, settings: Settings, series_id: str, t: list[float]
    ) -> tuple[np.ndarray, np.ndarray]:
        engine = make_engine(settings.database_url)
        with make_session_factory(engine)() as session:
            model = ModelStore(session).get(series_id, 1)
        engine.dispose()
        return served_band(model).at(np.array(t))

    def test_a_flat_band_at_the_points_times(
        self, client: TestClient, seeded: Settings
    ) -> None:
        body = chart(client, FLAT)
        band = body["band"]

        assert band["t"] == body["points"]["t"]
        expected, width = self._model_band(seeded, FLAT, band["t"])
        assert len(set(band["expected"])) == 1  # flat
        np.testing.assert_allclose(band["expected"], expected, rtol=1e-12)
        np.testing.assert_allclose(band["lower"], expected - width, rtol=1e-12)
        np.testing.assert_allclose(band["upper"], expected + width, rtol=1e-12)

    def test_a_seasonal_band_follows_the_hour(
        self, client: TestClient, seeded: Settings
    ) -> None:
        body = chart(client, SEASONAL, points=100)
        band = body["band"]

        assert body["model"]["algorithm"] == "seasonal"
        assert body["model"]["period_s"] == 86_400.0
        assert band["t"] == body["points"]["t"]
        expected, width = self._model_band(seeded, SEASONAL, band["t"])
        np.testing.assert_allclose(band["expected"], expected, rtol=1e-12)
        np.testing.assert_allclose(band["lower"], expected - width, rtol=1e-12)
        np.testing.assert_allclose(band["upper"], expected + width, rtol=1e-12)
        assert max(band["expected"]) - min(band["expected"]) > 0.15  # the cycle


class TestAnomalies:
    def test_every_anomaly_of_the_window_with_its_reason(
        self, client: TestClient
    ) -> None:
        body = chart(client, FLAT)

        assert body["anomalies"]["t"] == [T0 + STEP * i for i in SPIKES]
        assert body["anomalies"]["value"] == [18.0, 2.0, 17.5]
        assert all(s > 1.0 for s in body["anomalies"]["score"])
        assert body["anomalies"]["reason"] == ["outside_band"] * 3
        assert body["anomalies_total"] == 3

    def test_past_the_cap_the_highest_scores_are_kept_in_time_order(
        self, client: TestClient, seeded: Settings
    ) -> None:
        body = chart(client, MANY)

        engine = make_engine(seeded.database_url)
        with make_session_factory(engine)() as session:
            data = build_plot_data(session, PlotQuery(MANY))  # as GET /plot
        engine.dispose()
        flagged = np.flatnonzero(data.anomaly)
        assert data.scores is not None
        top = flagged[np.argsort(-data.scores[flagged])[:MAX_ANOMALIES]]
        anomalies = body["anomalies"]
        assert body["anomalies_total"] == flagged.size >= 8_000
        kept = np.sort(top)
        assert anomalies["t"] == data.readings.timestamps[kept].tolist()
        assert anomalies["value"] == data.readings.values[kept].tolist()
        assert anomalies["score"] == data.scores[kept].tolist()
        assert anomalies["reason"] == ["outside_band"] * MAX_ANOMALIES


class TestRefusals:
    def test_unknown_series_and_version(self, client: TestClient) -> None:
        response = client.get(url("sensor_999_radial"))
        assert response.status_code == 404
        assert response.json()["error"] == "SeriesNotFound"
        response = client.get(url(FLAT), params={"version": 5})
        assert response.status_code == 404
        assert response.json()["error"] == "VersionNotFound"

    @pytest.mark.parametrize(
        ("params", "rule"),
        [
            ({"start": "2024-12-05T00:00:00Z", "end": "2024-12-04T00:00:00Z"},
             "time_range"),
            ({"start": "2024-12-05T00:00:00", "end": str(1_733_356_800.0)},
             "time_range"),
            ({"points": 99}, "request_schema"),
            ({"points": 5_001}, "request_schema"),
            ({"start": "yesterday"}, "request_schema"),
            ({"version": 0}, "request_schema"),
            ({"version": 2**31}, "request_schema"),
            ({"start": "1999-12-31T23:59:59Z"}, "timestamp_range"),
            ({"end": "2100-01-01T00:00:01Z"}, "timestamp_range"),
            ({"pionts": 100}, "query_parameters"),
        ],
    )  # fmt: skip
    def test_bad_queries_name_their_rule(
        self, client: TestClient, params: dict[str, object], rule: str
    ) -> None:
        refused(client.get(url(FLAT), params=params), rule)

    def test_a_bad_series_id_names_its_rule(self, client: TestClient) -> None:
        refused(client.get(url("not%20an%20id")), "series_id_format")

    def test_a_token_is_required(self, anonymous: TestClient) -> None:
        response = anonymous.get(url(FLAT))
        assert response.status_code == 401
        assert response.json()["error"] == "AuthenticationFailed"


class TestGzip:
    def test_gzipped_when_taken_plain_otherwise(self, client: TestClient) -> None:
        with client.stream(
            "GET", url(FLAT), headers={"Accept-Encoding": "gzip"}
        ) as zipped:
            wire = b"".join(zipped.iter_raw())
        plain = client.get(url(FLAT), headers={"Accept-Encoding": "identity"})

        assert zipped.headers["content-encoding"] == "gzip"
        assert "content-encoding" not in plain.headers
        assert zipped.headers["vary"] == plain.headers["vary"] == "Accept-Encoding"
        assert gzip.decompress(wire) == plain.content
        assert len(wire) < len(plain.content) / 2


# --- change points and incidents, on each database -------------------------------

LOGGED = "sensor_010_radial"
N = 1_000  # readings a minute from T0


def _logged(index: int, reason: str) -> ScoredAnomaly:
    return ScoredAnomaly(
        LOGGED, T0 + STEP * index, 9.0, 3.0, 1.0, 0.5, 1.5, "above", reason, 1,
        "changepoint", False,
    )  # fmt: skip


@pytest.fixture
def logged(sessions: sessionmaker[Session]) -> None:
    """LOGGED's readings (no model) and its anomaly log: level shifts at
    100-149, one at 300 running on as a variance change to 310, outside-band
    readings at 500-505, level shifts at 600, 601 and 603; incidents of it
    (at 36,000 s), of its sensor's axial axis alone (at 7,200 s) and of
    another sensor."""
    rows = [*range(100, 150), 300, *range(600, 602), 603]
    log = [_logged(i, "level_shift") for i in rows]
    log += [_logged(i, "variance_change") for i in range(301, 311)]
    log += [_logged(i, "outside_band") for i in range(500, 506)]
    with sessions() as session:
        values = np.random.default_rng(1).normal(1.0, 0.1, N)
        ReadingStore(session).append(
            LOGGED, Readings.of(T0 + STEP * np.arange(N), values)
        )
        AnomalyLog(session).append(log)
        session.commit()
    record(
        sessions,
        [
            anomaly("sensor_010_axial", T0 + 7_200, 1.5),
            anomaly(LOGGED, T0 + 36_000, 2.5),
            anomaly(LOGGED, T0 + 36_060, 4.5, reason="level_shift"),
            anomaly("sensor_011_radial", T0 + 36_000, 1.5),
        ],
    )


@pytest.fixture
def backend_client(
    database_url: str, make_settings: SettingsFactory
) -> Iterator[TestClient]:
    with TestClient(training.create_app(make_settings(database_url))) as test_client:
        yield test_client


@pytest.mark.usefixtures("logged")
class TestMarks:
    @pytest.mark.parametrize(
        ("first", "last", "starts"),
        [
            (0, N, [100, 300, 600, 603]),
            (120, N, [300, 600, 603]),  # the first change began before
            (100, 301, [100, 300]),
            (301, 600, []),
            (602, 700, [603]),
        ],
    )
    def test_change_points_are_where_logged_changes_begin(
        self,
        backend_client: TestClient,
        viewer: Headers,
        first: int,
        last: int,
        starts: list[int],
    ) -> None:
        params = {"start": T0 + STEP * first, "end": T0 + STEP * last}
        response = backend_client.get(url(LOGGED), params=params, headers=viewer)

        assert response.status_code == 200, response.text
        assert response.json()["changepoints"] == [T0 + STEP * i for i in starts]

    def test_incidents_involving_the_series_that_touch_the_window(
        self, backend_client: TestClient, viewer: Headers
    ) -> None:
        whole = backend_client.get(url(LOGGED), headers=viewer).json()
        before = backend_client.get(
            url(LOGGED), params={"end": T0 + 30_000}, headers=viewer
        ).json()

        [incident] = whole["incidents"]
        assert set(incident) == {"id", "start", "end", "severity", "status", "kind"}
        assert incident["start"] == T0 + 36_000
        assert incident["end"] == T0 + 36_060
        assert (incident["severity"], incident["status"], incident["kind"]) == (
            "critical", "open", "anomaly",
        )  # fmt: skip
        assert before["incidents"] == []

    def test_a_series_without_a_model_has_points_and_no_band(
        self, backend_client: TestClient, viewer: Headers
    ) -> None:
        body = backend_client.get(url(LOGGED), headers=viewer).json()

        assert (body["model"], body["band"], body["training_window"]) == (None,) * 3
        assert body["anomalies"] == {"t": [], "value": [], "score": [], "reason": []}
        assert body["anomalies_total"] == 0
        assert body["readings"] == N
        assert body["decimated"] is False
