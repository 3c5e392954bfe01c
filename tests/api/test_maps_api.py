"""Maps without a tile server: sensors within a map's bounds, a site's floor
plan uploaded as an image, its machines and sensors placed on it with their
states."""

from __future__ import annotations

import io
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.settings import Settings
from fixtures.api import Headers, refused, wait_for
from fixtures.assets import CSV, YAML, put_file, with_readings
from fixtures.incidents import anomaly, record

SITES = "/api/v1/sites"


def image(kind: str = "PNG", size: tuple[int, int] = (200, 100)) -> bytes:
    found = io.BytesIO()
    Image.new("RGB", size, "white").save(found, format=kind)
    return found.getvalue()


@pytest.fixture
def tree(client: TestClient, engineer: Headers) -> TestClient:
    for text, kind in ((CSV, "text/csv"), (YAML, "application/yaml")):
        assert put_file(client, engineer, text, kind).status_code == 200
    return client


def upload(client: TestClient, headers: Headers, site: str, data: bytes, kind: str):  # type: ignore[no-untyped-def]
    return client.put(
        f"{SITES}/{site}/floorplan",
        content=data,
        headers=headers | {"Content-Type": kind},
    )


class TestSensorsOnAMap:
    def test_the_sensors_of_the_sites_within_the_bounds(
        self, tree: TestClient, viewer: Headers
    ) -> None:
        def within(bbox: str) -> list[tuple[str, str]]:
            found = tree.get(f"/api/v1/sensors?bbox={bbox}", headers=viewer).json()
            return [(s["site"], s["id"]) for s in found["sensors"]]

        assert within("-9.5,38.5,-8.0,41.5") == [
            ("plant1", "sensor_000001"), ("plant1", "sensor_000002"),
            ("plant2", "sensor_000003"),
        ]  # fmt: skip
        assert within("-8.7,41.0,-8.5,41.3") == [
            ("plant1", "sensor_000001"), ("plant1", "sensor_000002")
        ]  # fmt: skip
        assert within("0,0,1,1") == []

    @pytest.mark.parametrize(
        ("bbox", "rule"),
        [
            ("1,2,3", "request_schema"),
            ("a,b,c,d", "request_schema"),
            ("10,0,5,1", "bbox"),  # west of its west
            ("0,-95,1,1", "bbox"),
        ],
    )
    def test_bounds_it_cannot_read_are_refused(
        self, tree: TestClient, viewer: Headers, bbox: str, rule: str
    ) -> None:
        refused(tree.get(f"/api/v1/sensors?bbox={bbox}", headers=viewer), rule)


def test_every_site_with_its_sensors_by_state(
    tree: TestClient, viewer: Headers, admin: Headers, settings: Settings
) -> None:
    with_readings(tree, admin, settings, 9)  # sensors 0 to 2

    def summed() -> dict[str, Any] | None:
        found = tree.get(f"{SITES}", headers=viewer).json()["sites"]
        by_site = {s["site"]["id"]: s for s in found}
        known = by_site["plant1"]["by_state"].get("unknown", 0) == 0
        return by_site if known else None

    by_site = wait_for(summed)
    assert list(by_site) == ["plant1", "plant2"]
    assert by_site["plant1"]["sensors"] == 2
    assert sum(by_site["plant1"]["by_state"].values()) == 2
    assert by_site["plant1"]["worst"] in by_site["plant1"]["by_state"]
    assert by_site["plant2"]["by_state"] == {"unknown": 1}  # sensor 3: no series
    assert by_site["plant2"]["worst"] is None


class TestFloorplan:
    def test_uploaded_read_back_and_the_nodes_placed_on_it(
        self, tree: TestClient, engineer: Headers, admin: Headers, settings: Settings
    ) -> None:
        with_readings(tree, admin, settings, 9)  # sensors 0 to 2
        png = image()

        put = upload(tree, engineer, "plant1", png, "image/png")
        got = tree.get(f"{SITES}/plant1/floorplan", headers=engineer)

        assert put.status_code == 200, put.text
        assert put.json() == {
            "media_type": "image/png", "width": 200, "height": 100,
            "url": "/api/v1/sites/plant1/floorplan",
        }  # fmt: skip
        assert (got.content, got.headers["content-type"]) == (png, "image/png")

        def placed() -> dict[str, tuple[float, float, str | None]] | None:
            plan = tree.get(f"{SITES}/plant1/plan", headers=engineer).json()
            found = {p["id"]: (p["x"], p["y"], p["state"]) for p in plan["placed"]}
            return found if found["sensor_000001"][2] is not None else None

        found = wait_for(placed)
        assert found == {
            "press7": (12.0, 4.5, found["sensor_000001"][2]),  # its worst sensor's
            "sensor_000001": (13.0, 5.0, found["sensor_000001"][2]),
        }  # sensor_000002 has no place on the plan

    @pytest.mark.parametrize(
        ("data", "kind"),
        [
            (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml"),
            (image("PNG"), "image/jpeg"),
            (b"not an image at all", "image/png"),
            (image("PNG")[:40], "image/png"),
        ],
    )
    def test_only_an_image_that_decodes_as_named(
        self, tree: TestClient, engineer: Headers, data: bytes, kind: str
    ) -> None:
        refused(upload(tree, engineer, "plant1", data, kind), "floorplan_image")

    def test_only_a_site_has_one(self, tree: TestClient, engineer: Headers) -> None:
        press = upload(tree, engineer, "press7", image(), "image/png")
        missing = tree.get(f"{SITES}/plant2/floorplan", headers=engineer)

        assert (press.status_code, press.json()["rule"]) == (404, "site_exists")
        assert (missing.status_code, missing.json()["rule"]) == (
            404, "floorplan_exists"
        )  # fmt: skip
        plan = tree.get(f"{SITES}/plant2/plan", headers=engineer).json()
        assert plan["floorplan"] is None
        assert [p["id"] for p in plan["placed"]] == ["pump3"]


def test_incidents_of_the_period_heat_the_sites_and_the_plan(
    tree: TestClient, viewer: Headers, settings: Settings
) -> None:
    now = time.time()
    engine = make_engine(settings.database_url)
    try:
        record(
            make_session_factory(engine),
            [
                anomaly("sensor_000001_radial", now - 60, 5.0),
                anomaly("sensor_000002_current", now - 120, 5.0),
                anomaly("sensor_000001_axial", now - 10 * 86_400, 5.0),  # long ago
                anomaly("sensor_000003_radial", now - 60, 5.0),
            ],
        )
    finally:
        engine.dispose()

    def counted(days: int) -> tuple[dict[str, int], dict[str, int]]:
        sites = tree.get(f"{SITES}?days={days}", headers=viewer).json()["sites"]
        plan = tree.get(f"{SITES}/plant1/plan?days={days}", headers=viewer).json()
        return (
            {s["site"]["id"]: s["incidents"] for s in sites},
            {p["id"]: p["incidents"] for p in plan["placed"]},
        )

    assert counted(7) == (
        {"plant1": 2, "plant2": 1},
        {"press7": 2, "sensor_000001": 1},  # the machine: both its sensors'
    )
    assert counted(30) == (
        {"plant1": 3, "plant2": 1},
        {"press7": 3, "sensor_000001": 2},
    )
    refused(tree.get(f"{SITES}?days=0", headers=viewer), "request_schema")
