"""Data-quality API: a series' and a sensor's report over a stored window, on
each database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from atalaia.api import training
from fixtures.api import Headers, SettingsFactory, refused
from fixtures.fleet import store
from fixtures.readings import DAY_S, EPOCH, STEP_S, sensor_series

SENSOR = "sensor_031"
WEEK = 10_080  # minutes


@pytest.fixture
def client(database_url: str, make_settings: SettingsFactory) -> Iterator[TestClient]:
    """The training service, on each database."""
    with TestClient(training.create_app(make_settings(database_url))) as test_client:
        yield test_client


def quality(
    client: TestClient, path: str, headers: Headers, **query: Any
) -> dict[str, Any]:
    response = client.get(f"/api/v1/{path}/quality", params=query, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def rules(report: dict[str, Any]) -> list[str]:
    return [finding["rule"] for finding in report["findings"]]


class TestSeriesQuality:
    def test_a_healthy_week_is_fit_to_train(
        self, client: TestClient, sessions: sessionmaker[Session], viewer: Headers
    ) -> None:
        ts, vs = sensor_series(2 * WEEK)  # two weeks: the default is the last one
        store(sessions, f"{SENSOR}_radial", ts, vs)

        body = quality(client, f"series/{SENSOR}_radial", viewer)

        assert body["fit_to_train"] is True
        assert body["end"] > ts[-1]
        assert body["start"] == pytest.approx(body["end"] - 7 * DAY_S)
        report = body["report"]
        assert report["count"] == WEEK
        assert report["sampling"]["interval_s"] == STEP_S
        assert report["findings"] == []

    def test_a_stuck_run_is_a_blocking_finding(
        self, client: TestClient, sessions: sessionmaker[Session], viewer: Headers
    ) -> None:
        ts, vs = sensor_series(WEEK + 100)
        vs[3_000:4_000] = vs[3_000]
        store(sessions, f"{SENSOR}_radial", ts, vs)

        body = quality(client, f"series/{SENSOR}_radial", viewer)

        assert body["fit_to_train"] is False
        [finding] = body["report"]["findings"]
        assert finding["rule"] == "stuck"
        assert finding["blocking"] is True
        assert body["report"]["stuck"]["listed"][0]["readings"] == 1_000

    def test_a_window_and_a_physical_range(
        self, client: TestClient, sessions: sessionmaker[Session], viewer: Headers
    ) -> None:
        ts, vs = sensor_series(WEEK)
        store(sessions, f"{SENSOR}_radial", ts, vs)

        body = quality(
            client, f"series/{SENSOR}_radial", viewer,
            start=EPOCH, end="2024-12-01T00:00:00Z", min_value=0, max_value=0.31,
        )  # fmt: skip

        assert body["end"] == 1_733_011_200.0
        report = body["report"]
        assert report["count"] == (1_733_011_200.0 - EPOCH) // STEP_S + 1
        assert report["out_of_range"] > 0
        assert rules(report) == ["too_few_readings", "out_of_range"]

    def test_an_unknown_series_is_404(
        self, client: TestClient, viewer: Headers
    ) -> None:
        response = client.get("/api/v1/series/nope_radial/quality", headers=viewer)

        assert response.status_code == 404
        assert response.json()["rule"] == "series_exists"

    @pytest.mark.parametrize(
        ("query", "rule"),
        [
            ({"start": EPOCH + 100, "end": EPOCH}, "time_range"),
            ({"start": 1.7e12}, "timestamp_range"),
            ({"min_value": 1}, "physical_range"),
            ({"min_value": 2, "max_value": 1}, "physical_range"),
        ],
    )
    def test_a_bad_window_or_range_is_422_naming_the_rule(
        self,
        client: TestClient,
        sessions: sessionmaker[Session],
        viewer: Headers,
        query: dict[str, float],
        rule: str,
    ) -> None:
        store(sessions, f"{SENSOR}_radial", *sensor_series(100))

        response = client.get(
            f"/api/v1/series/{SENSOR}_radial/quality", params=query, headers=viewer
        )

        refused(response, rule)

    def test_needs_a_token(self, client: TestClient) -> None:
        response = client.get(f"/api/v1/series/{SENSOR}_radial/quality")

        assert response.status_code == 401


class TestSensorQuality:
    def test_one_verdict_for_the_axes(
        self, client: TestClient, sessions: sessionmaker[Session], viewer: Headers
    ) -> None:
        ts, vs = sensor_series(WEEK)
        store(sessions, f"{SENSOR}_radial", ts, vs)
        switched = vs.copy()
        switched[6_000:] *= 1000  # millivolts from then on
        store(sessions, f"{SENSOR}_axial", ts, switched)

        body = quality(client, f"sensors/{SENSOR}", viewer)

        assert body["fit_to_train"] is False
        assert sorted(body["axes"]) == ["axial", "radial"]
        assert body["axes"]["radial"]["fit_to_train"] is True
        assert rules(body["axes"]["axial"]["report"]) == ["unit_jump"]
        jump = body["axes"]["axial"]["report"]["unit_jumps"][0]
        assert jump["timestamp"] == ts[6_000]

    def test_an_unknown_sensor_is_404(
        self, client: TestClient, viewer: Headers
    ) -> None:
        response = client.get("/api/v1/sensors/sensor_404/quality", headers=viewer)

        assert response.status_code == 404
        assert response.json()["rule"] == "sensor_exists"
