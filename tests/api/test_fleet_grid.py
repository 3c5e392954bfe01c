"""GET /fleet/sensors: every sensor's state, ranked worst first, by group;
its filters and group runs, gzip when asked; on SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from atalaia.api import training
from atalaia.core.fleet_states import LEGEND
from atalaia.embedded import create_embedded_app
from atalaia.settings import Settings
from fixtures.api import Headers, SettingsFactory, refused
from fixtures.incidents import anomaly, record
from fixtures.sensor_states import (
    log_anomaly,
    put_in_production,
    record_drift_run,
    store_readings,
)

GRID = "/api/v1/fleet/sensors"
# Every sensor of the `fleet` fixture, in the grid's order, with its state.
EXPECTED = {
    "fan_1": "ok",
    "fan_2": "no_model",  # readings, no production version
    "fan_3": "stale",  # its newest reading two hours old
    "fan_4": "drift",  # an axis drifted from its production model
    "fan_5": "anomalous",  # an anomaly two minutes ago, no incident
    "fan_6": "ok",  # an anomaly twenty minutes ago: past the gap
    "motor_9": "ok",  # a sensor model in production, no stored series
    "press.l2.m07": "major",  # a minor data-quality and a major anomaly incident
    "pump_1": "minor",
    "pump_10": "ok",
    "pump_2": "major",
    "pump_3": "critical",  # also stale and anomalous: the worst wins
}
RUNS = [
    {"name": "fan", "start": 0, "count": 6},
    {"name": "motor", "start": 6, "count": 1},
    {"name": "press.l2", "start": 7, "count": 1},
    {"name": "pump", "start": 8, "count": 4},
]


@pytest.fixture
def client(database_url: str, make_settings: SettingsFactory) -> Iterator[TestClient]:
    """The training service, on each database."""
    with TestClient(training.create_app(make_settings(database_url))) as test_client:
        yield test_client


@pytest.fixture
def fleet(sessions: sessionmaker[Session]) -> None:
    """The sensors of EXPECTED, each made what it says."""
    now = time.time()
    recent = ["fan_1_radial", "fan_1_axial", "fan_2_radial", "fan_4_radial"]
    recent += ["fan_4_axial", "fan_5_radial", "fan_6_radial", "press.l2.m07_radial"]
    recent += ["pump_1_radial", "pump_10_radial", "pump_2_radial"]
    store_readings(sessions, recent, now - 30)
    store_readings(sessions, ["fan_3_radial", "pump_3_radial"], now - 7200)
    modelled = [s for s in recent if not s.startswith("fan_2")]
    put_in_production(sessions, *modelled, "fan_3_radial", "pump_3_radial", "motor_9")
    record_drift_run(sessions, ["fan_4_axial", "gone_1_radial"])
    log_anomaly(sessions, "fan_5_radial", now - 120)
    log_anomaly(sessions, "fan_6_radial", now - 1200)
    log_anomaly(sessions, "pump_3_axial", now - 60)
    record(
        sessions,
        [
            anomaly("pump_1_radial", now - 100, 1.2),
            anomaly("pump_2_radial", now - 100, 2.5),
            anomaly("pump_3_radial", now - 100, 4.5),
            # The anomaly first: once stuck, its anomalies would be held back.
            anomaly("press.l2.m07_axial", now - 100, 2.5),
            anomaly("press.l2.m07_radial", now - 90, 1.5, reason="stuck"),
        ],
    )


def grid(client: TestClient, headers: Headers, query: str = "") -> dict[str, Any]:
    response = client.get(f"{GRID}?{query}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def states(body: dict[str, Any]) -> dict[str, str]:
    """Each sensor listed, in order, with its state's name."""
    names = [body["legend"][int(digit)] for digit in body["states"]]
    return dict(zip(body["sensors"], names, strict=True))


@pytest.mark.usefixtures("fleet")
class TestStates:
    def test_each_sensor_shows_its_worst_state_by_group_then_id(
        self, client: TestClient, viewer: Headers
    ) -> None:
        asked = time.time()
        body = grid(client, viewer)
        answered = time.time()

        assert list(states(body).items()) == list(EXPECTED.items())
        assert body["groups"] == RUNS
        assert body["legend"] == list(LEGEND)
        assert body["total"] == len(EXPECTED)
        assert asked <= body["at"] <= answered  # read for this answer

    def test_counts_every_state(self, client: TestClient, viewer: Headers) -> None:
        counts = grid(client, viewer)["counts"]

        assert counts == {
            "ok": 4, "no_model": 1, "stale": 1, "drift": 1, "anomalous": 1,
            "minor": 1, "major": 2, "critical": 1,
        }  # fmt: skip


@pytest.mark.usefixtures("fleet")
class TestFilters:
    @pytest.mark.parametrize(
        ("query", "sensors", "runs"),
        [
            ("prefix=pump_1", ["pump_1", "pump_10"], [("pump", 0, 2)]),
            ("prefix=pump_1_ax", ["pump_1"], [("pump", 0, 1)]),
            ("prefix=fan_4_radial", ["fan_4"], [("fan", 0, 1)]),
            (
                "prefix=p",
                ["press.l2.m07", "pump_1", "pump_10", "pump_2", "pump_3"],
                [("press.l2", 0, 1), ("pump", 1, 4)],
            ),
            ("group=press.l2", ["press.l2.m07"], [("press.l2", 0, 1)]),
            ("group=pump&prefix=pump_2", ["pump_2"], [("pump", 0, 1)]),
            ("group=pump&prefix=fan", [], []),
            ("group=pum", [], []),
            ("prefix=nothing", [], []),
        ],
    )
    def test_keeps_the_sensors_asked_for_with_their_runs(
        self,
        client: TestClient,
        viewer: Headers,
        query: str,
        sensors: list[str],
        runs: list[tuple[str, int, int]],
    ) -> None:
        body = grid(client, viewer, query)

        assert states(body) == {s: EXPECTED[s] for s in sensors}
        assert [(r["name"], r["start"], r["count"]) for r in body["groups"]] == runs
        assert body["total"] == len(sensors)
        assert sum(body["counts"].values()) == len(sensors)

    def test_an_empty_filter_is_no_filter(
        self, client: TestClient, viewer: Headers
    ) -> None:
        assert states(grid(client, viewer, "prefix=&group=")) == EXPECTED


class TestAnswer:
    def test_is_gzipped_when_asked(
        self, client: TestClient, viewer: Headers, sessions: sessionmaker[Session]
    ) -> None:
        store_readings(sessions, [f"line_{i:03d}_radial" for i in range(200)], 0.0)

        asked = viewer | {"Accept-Encoding": "gzip"}
        with client.stream("GET", GRID, headers=asked) as zipped:
            wire = b"".join(zipped.iter_raw())
            encoding = zipped.headers.get("content-encoding")
        plain = client.get(GRID, headers=viewer | {"Accept-Encoding": "identity"})

        assert encoding == "gzip"
        assert "content-encoding" not in plain.headers
        assert orjson.loads(gzip.decompress(wire)) == plain.json()
        assert plain.json()["total"] == 200
        assert len(wire) < len(plain.content) / 3

    def test_an_empty_fleet_has_no_sensors(
        self, client: TestClient, viewer: Headers
    ) -> None:
        body = grid(client, viewer)

        assert (body["total"], body["sensors"], body["groups"]) == (0, [], [])
        assert body["states"] == ""
        assert body["counts"] == dict.fromkeys(LEGEND, 0)

    def test_needs_a_token(self, client: TestClient) -> None:
        assert client.get(GRID).status_code == 401

    def test_refuses_a_control_character(
        self, client: TestClient, viewer: Headers
    ) -> None:
        response = client.get(f"{GRID}?prefix=a%1b", headers=viewer)

        refused(response, "no_control_characters")


def test_the_embedded_platform_serves_it(
    settings: Settings, viewer: Headers, scientist: Headers
) -> None:
    now = time.time()
    points = {"timestamps": [now - 60, now], "values": [0.3, 0.31]}
    with TestClient(create_embedded_app(settings)) as embedded:
        sent = embedded.post(
            "/api/v1/series/belt_4_radial/points", json=points, headers=scientist
        )
        assert sent.status_code == 200, sent.text

        body = grid(embedded, viewer)

    assert states(body) == {"belt_4": "no_model"}
    assert body["groups"] == [{"name": "belt", "start": 0, "count": 1}]
