"""The asset hierarchy over HTTP on the embedded server: imported from CSV and
YAML, edited, read as a tree, and filtering operations and incidents."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.settings import Settings
from fixtures.api import Headers, refused, wait_for
from fixtures.assets import ASSETS, CSV, YAML, put_file, with_readings
from fixtures.incidents import anomaly, record


def denied(response: Any, status: int, rule: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["rule"] == rule, response.text


def listed(client: TestClient, headers: Headers, query: str = "") -> list[str]:
    response = client.get(f"{ASSETS}?{query}", headers=headers)
    assert response.status_code == 200, response.text
    return [a["id"] for a in response.json()["assets"]]


@pytest.fixture
def tree(client: TestClient, engineer: Headers) -> TestClient:
    assert put_file(client, engineer, CSV).json() == {"created": 5, "replaced": 0}
    yaml_put = put_file(client, engineer, YAML, "application/yaml")
    assert yaml_put.json() == {"created": 4, "replaced": 0}
    return client


class TestImport:
    def test_a_tree_is_read_back_in_tree_order(
        self, tree: TestClient, viewer: Headers, admin: Headers, settings: Settings
    ) -> None:
        with_readings(tree, admin, settings, 12)  # sensors 0 to 3

        everything = listed(tree, viewer)
        detail = tree.get(f"{ASSETS}/sensor_000001", headers=viewer).json()

        assert everything == [
            "plant1", "line2", "press7", "sensor_000001", "sensor_000002",
            "plant2", "area1", "pump3", "sensor_000003",
        ]  # fmt: skip
        assert detail["path"] == "/plant1/line2/press7/sensor_000001/"
        assert [a["id"] for a in detail["ancestors"]] == ["plant1", "line2", "press7"]
        assert detail["ancestors"][2]["attributes"] == {"criticality": "high"}
        assert detail["attributes"] == {"unit": "mm/s"}
        assert (detail["x"], detail["y"], detail["series"]) == (13, 5, 3)
        site = tree.get(f"{ASSETS}/plant1", headers=viewer).json()
        assert (site["latitude"], site["children"], site["series"]) == (41.15, 1, 6)
        assert listed(tree, viewer, "kind=sensor") == [
            "sensor_000001", "sensor_000002", "sensor_000003"
        ]  # fmt: skip
        assert listed(tree, viewer, "under=line2&limit=2") == ["line2", "press7"]

    def test_every_error_with_its_line_and_nothing_written(
        self, client: TestClient, engineer: Headers, viewer: Headers
    ) -> None:
        bad = CSV.replace(
            "press7,machine,Press 7,line2", "press7,machine,Press 7,line9"
        )
        bad += "plant1,site,Again,,,,,,,\nsensor_x,sensor,X,press7,,,a,b,,\n"

        response = put_file(client, engineer, bad)

        assert response.status_code == 422, response.text
        assert response.json()["rule"] == "assets_valid"
        errors = response.json()["errors"]
        assert [(e["id"], e["rule"], e["line"]) for e in errors] == [
            ("sensor_x", "asset_field", 8),
            ("plant1", "asset_id_unique", 7),
            ("press7", "asset_parent_exists", 4),
        ]
        assert errors[0]["detail"].startswith("x: Input should be a valid number")
        assert errors[2]["detail"] == "no node 'line9'"
        assert listed(client, viewer) == []

    @pytest.mark.parametrize(
        ("text", "kind", "rule"),
        [
            (CSV, "application/json", "asset_file_type"),
            ("name,kind\nx,site\n", "text/csv", "assets_valid"),
            ("- id: [unclosed", "application/yaml", "assets_valid"),
            ("plant: 1", "application/yaml", "assets_valid"),
            ("[]", "application/yaml", "assets_valid"),
            ("id,kind\n", "text/csv", "assets_valid"),
        ],
    )
    def test_a_file_it_cannot_read_is_refused(
        self, client: TestClient, engineer: Headers, text: str, kind: str, rule: str
    ) -> None:
        refused(put_file(client, engineer, text, kind), rule)

    def test_a_viewer_may_read_but_not_import(
        self, client: TestClient, viewer: Headers
    ) -> None:
        denied(put_file(client, viewer, CSV), 403, "role_allows")


class TestEdit:
    def test_a_moved_machine_takes_its_sensors_along(
        self, tree: TestClient, engineer: Headers
    ) -> None:
        moved = tree.put(
            f"{ASSETS}/press7",
            json={
                "kind": "machine",
                "name": "Press 7",
                "parent": "area1",
                "x": 1,
                "y": 1,
            },
            headers=engineer,
        )

        assert moved.json() == {"created": 0, "replaced": 1}
        sensor = tree.get(f"{ASSETS}/sensor_000002", headers=engineer).json()
        assert sensor["path"] == "/plant2/area1/press7/sensor_000002/"
        assert listed(tree, engineer, "under=line2") == ["line2"]

    def test_a_node_with_nodes_under_it_stays(
        self, tree: TestClient, engineer: Headers
    ) -> None:
        press, sensor = f"{ASSETS}/press7", f"{ASSETS}/sensor_000002"
        denied(tree.delete(press, headers=engineer), 409, "asset_has_children")
        assert tree.delete(sensor, headers=engineer).status_code == 204
        denied(tree.delete(sensor, headers=engineer), 404, "asset_exists")

    def test_a_node_whose_children_could_not_stay_is_refused(
        self, tree: TestClient, engineer: Headers
    ) -> None:
        body = {"kind": "sensor", "parent": "plant1"}

        response = tree.put(f"{ASSETS}/line2", json=body, headers=engineer)

        refused(response, "assets_valid")
        assert response.json()["errors"] == [
            {"id": "press7", "rule": "asset_parent_kind",
             "detail": "a machine cannot belong to a sensor (line2)"}
        ]  # fmt: skip


class TestFilters:
    def test_an_operation_selects_the_series_under_a_node(
        self, tree: TestClient, engineer: Headers, admin: Headers, settings: Settings
    ) -> None:
        with_readings(tree, admin, settings, 12)
        body = {"action": "promote", "selector": {"asset": "press7"}, "dry_run": True}

        counted = tree.post("/api/v1/operations", json=body, headers=engineer).json()
        unknown = tree.post(
            "/api/v1/operations",
            json=body | {"selector": {"asset": "nowhere"}},
            headers=engineer,
        )

        assert (counted["selected"], counted["eligible"]) == (6, 6)
        denied(unknown, 404, "asset_exists")

    def test_the_fleet_grid_and_a_batch_of_training_under_a_node(
        self, tree: TestClient, admin: Headers, settings: Settings
    ) -> None:
        with_readings(tree, admin, settings, 12)

        def grid() -> list[str] | None:
            found = tree.get("/api/v1/fleet/sensors?asset=plant1", headers=admin)
            sensors: list[str] = found.json()["sensors"]
            return sensors or None

        batch = tree.post(
            "/api/v1/training/batch",
            json={"asset": "area1", "window_hours": 24},
            headers=admin,
        )

        assert wait_for(grid) == ["sensor_000001", "sensor_000002"]
        assert batch.status_code in (202, 422), batch.text
        answered = batch.json()
        named = {r["series_id"] for r in answered.get("rejected", [])} | {
            j["series_id"] for j in answered.get("jobs", [])
        }
        assert named == {
            "sensor_000003_radial", "sensor_000003_axial", "sensor_000003_tangential"
        }  # fmt: skip

    def test_incidents_of_the_sensors_under_a_node(
        self, tree: TestClient, viewer: Headers, settings: Settings
    ) -> None:
        now = time.time()
        engine = make_engine(settings.database_url)
        made = record(
            make_session_factory(engine),
            [
                anomaly("sensor_000001_radial", now - 60, 2.0),
                anomaly("sensor_000003_axial", now - 60, 2.0),
                anomaly("sensor_000009_axial", now - 60, 2.0),
            ],
        )
        engine.dispose()

        def under(node: str) -> set[str]:
            found = tree.get(f"/api/v1/incidents?asset={node}", headers=viewer)
            return {i["sensor_id"] for i in found.json()["incidents"]}

        assert set(made) == {"sensor_000001", "sensor_000003", "sensor_000009"}
        assert under("plant1") == {"sensor_000001"}
        assert under("area1") == {"sensor_000003"}
        nowhere = tree.get("/api/v1/incidents?asset=nowhere", headers=viewer)
        denied(nowhere, 404, "asset_exists")
