"""Control characters in any string a request carries are 422s, on both databases.

PostgreSQL text cannot hold U+0000: a NUL reaching the driver was a 500 there.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from atalaia.embedded import create_embedded_app
from fixtures.api import Headers, SettingsFactory, inline_body, refused

SERIES = "sensor_009_radial"
T = 1_733_700_000.0

# Query strings and paths carrying a NUL (free text, then series ids).
TEXT_QUERIES = [
    "/api/v1/models?cursor=%00",
    "/api/v1/models?prefix=a%00",
    "/api/v1/series?prefix=%00",
    "/api/v1/series?cursor=%00",
    "/api/v1/training/jobs?batch_id=%00",
    "/api/v1/training/jobs?cursor=%00",
    "/api/v1/training/jobs/%00",
    f"/api/v1/series/{SERIES}/points?cursor=%00",
]
ID_PATHS = [
    "/api/v1/training/jobs?series_id=%00",
    "/api/v1/models/a%00/versions",
    "/api/v1/models/a%00/versions/1",
    "/api/v1/models/a%00/metrics",
    "/api/v1/models/a%00/deployment-config",
    "/api/v1/series/a%00/points",
    "/api/v1/feedback/a%00",
    "/api/v1/plot?series_id=a%00",
]
# Bodies whose free-text fields carry a control character.
TEXT_BODIES = [
    (f"/api/v1/feedback/{SERIES}", {"timestamp": T, "is_anomaly": True, "note": "a\0"}),
    (f"/api/v1/models/{SERIES}/versions/1/promote", {"reason": "\0"}),
    (f"/api/v1/models/{SERIES}/rollback", {"reason": "\x1b[2J"}),
    ("/api/v1/training/batch", {"sensor_id": "\0"}),
    ("/api/v1/training/batch", {"prefix": "sensor\0"}),
    ("/api/v1/training/batch", {"series_ids": ["\0"]}),
    ("/api/v1/training/batch", {"all_series": True, "config": {"algorithm": "\0"}}),
    (
        "/api/v1/training/batch",
        {"all_series": True, "config": {"hyperparameters": {"\0": 1}}},
    ),
    (f"/api/v1/training/{SERIES}", {"window_hours": 1, "config": {"algorithm": "\0"}}),
]  # fmt: skip


@pytest.fixture
def client(make_settings: SettingsFactory, database_url: str) -> Iterator[TestClient]:
    with TestClient(create_embedded_app(make_settings(database_url))) as embedded:
        yield embedded


class TestControlCharacters:
    @pytest.mark.parametrize("url", TEXT_QUERIES)
    def test_nul_in_a_query_or_path_is_422(
        self, client: TestClient, admin: Headers, url: str
    ) -> None:
        response = client.get(url, headers=admin)

        assert "U+0000" in refused(response, "no_control_characters")

    def test_nul_in_a_job_to_cancel_is_422(
        self, client: TestClient, admin: Headers
    ) -> None:
        response = client.delete("/api/v1/training/jobs/%00", headers=admin)

        refused(response, "no_control_characters")

    @pytest.mark.parametrize(("url", "body"), TEXT_BODIES)
    def test_control_character_in_a_body_is_422(
        self, client: TestClient, admin: Headers, url: str, body: dict[str, Any]
    ) -> None:
        response = client.post(url, json=body, headers=admin)

        assert "control character" in refused(response, "no_control_characters")

    @pytest.mark.parametrize(
        ("url", "body"),
        [
            ("/api/v1/training/batch", b'{"prefix": "\\ud800"}'),
            ("/api/v1/training/batch", b'{"sensor_id": "a\\udfff"}'),
            ("/api/v1/training/batch", b'{"series_ids": ["\\ud800"]}'),
        ],
    )
    def test_lone_surrogate_in_a_body_is_422(
        self, client: TestClient, admin: Headers, url: str, body: bytes
    ) -> None:
        # JSON may escape half a surrogate pair; no UTF-8 text can hold it.
        response = client.post(
            url, content=body, headers=admin | {"content-type": "application/json"}
        )

        assert "unicode string" in refused(response, "request_schema")

    def test_nothing_is_stored_from_a_refused_note(
        self, client: TestClient, admin: Headers
    ) -> None:
        body = {"timestamp": T, "is_anomaly": True, "note": "\0"}

        client.post(f"/api/v1/feedback/{SERIES}", json=body, headers=admin)

        labels = client.get(f"/api/v1/feedback/{SERIES}", headers=admin).json()
        assert labels["feedback"] == []

    def test_tabs_and_newlines_in_a_note_are_kept(
        self, client: TestClient, admin: Headers
    ) -> None:
        body = {"timestamp": T, "is_anomaly": True, "note": "line 1\n\tline 2\r\n"}

        response = client.post(f"/api/v1/feedback/{SERIES}", json=body, headers=admin)

        assert response.status_code == 201, response.text
        labels = client.get(f"/api/v1/feedback/{SERIES}", headers=admin).json()
        assert labels["feedback"][0]["note"] == body["note"]

    @pytest.mark.parametrize("url", ["/api/v1/series", "/api/v1/models"])
    def test_prefix_longer_than_any_text_is_422(
        self, client: TestClient, admin: Headers, url: str
    ) -> None:
        # SQLite refuses a LIKE pattern over 50,000 bytes: it was a 503.
        points = {"timestamps": [T], "values": [1.0]}
        client.post(f"/api/v1/series/{SERIES}/points", json=points, headers=admin)

        response = client.get(url, params={"prefix": "a" * 60_000}, headers=admin)

        assert "at most 1000 characters" in refused(response, "request_schema")

    def test_unicode_text_is_kept(self, client: TestClient, admin: Headers) -> None:
        response = client.get("/api/v1/series?prefix=ção✓", headers=admin)

        assert response.status_code == 200, response.text


class TestSeriesIds:
    @pytest.mark.parametrize("url", ID_PATHS)
    def test_nul_in_a_series_id_is_422(
        self, client: TestClient, admin: Headers, url: str
    ) -> None:
        response = client.get(url, headers=admin)

        refused(response, "series_id_format")

    @pytest.mark.parametrize(
        ("method", "url"),
        [
            ("post", "/api/v1/models/a%00/versions/1/promote"),
            ("post", "/api/v1/models/a%00/rollback"),
            ("post", "/api/v1/admin/reload/a%00"),
            ("post", "/api/v1/series/a%00/points"),
            ("post", "/api/v1/training/a%00"),
            ("post", "/api/v1/feedback/a%00"),
        ],
    )
    def test_nul_in_a_series_id_to_change_is_422(
        self, client: TestClient, admin: Headers, method: str, url: str
    ) -> None:
        bodies = {
            "points": {"timestamps": [T], "values": [1.0]},
            "training": inline_body(),
            "feedback": {"timestamp": T, "is_anomaly": True},
        }
        body = next((b for k, b in bodies.items() if k in url), {})

        response = client.request(method, url, json=body, headers=admin)

        refused(response, "series_id_format")
