"""Series data API: idempotent ingest, paged queries, listing; feedback labels."""

from __future__ import annotations

from fastapi.testclient import TestClient

from fixtures.api import Headers, post_ok

SERIES = "sensor_005_axial"
T = 1_733_011_200.0  # 2024-12-01T00:00:00Z


def _ingest(
    client: TestClient, headers: Headers, ts: list[float], vs: list[float]
) -> dict[str, int]:
    points = {"timestamps": ts, "values": vs}
    return post_ok(client, headers, f"/api/v1/series/{SERIES}/points", points)


class TestIngest:
    def test_reingesting_the_same_points_stores_nothing_new(
        self, client: TestClient, scientist: Headers
    ) -> None:
        first = _ingest(client, scientist, [T + 1, T + 2, T + 3], [0.1, 0.2, 0.3])
        again = _ingest(client, scientist, [T + 3, T + 2, T + 4], [0.3, 0.2, 0.4])

        assert (first["inserted"], first["ignored"]) == (3, 0)
        assert (again["inserted"], again["ignored"]) == (1, 2)
        series = client.get("/api/v1/series", headers=scientist).json()["series"]
        assert series[0]["points"] == 4
        assert series[0]["sensor_id"] == "sensor_005"
        assert series[0]["axis"] == "axial"

    def test_a_timestamp_twice_in_one_request_is_422(
        self, client: TestClient, scientist: Headers
    ) -> None:
        response = client.post(
            f"/api/v1/series/{SERIES}/points",
            json={"timestamps": [T, T], "values": [0.1, 0.2]},
            headers=scientist,
        )

        assert response.status_code == 422
        assert response.json()["rule"] == "no_duplicates"
        assert (
            response.json()["detail"] == "duplicate timestamp 1733011200.0 at index 1"
        )

    def test_a_viewer_cannot_ingest(self, client: TestClient, viewer: Headers) -> None:
        response = client.post(
            f"/api/v1/series/{SERIES}/points",
            json={"timestamps": [T], "values": [0.1]},
            headers=viewer,
        )

        assert response.status_code == 403


class TestQuery:
    def test_pages_through_a_time_range(
        self, client: TestClient, scientist: Headers
    ) -> None:
        _ingest(client, scientist, [T + t for t in range(10)], [0.5] * 10)
        url = f"/api/v1/series/{SERIES}/points?start={T + 2}&end={T + 9}&limit=3"

        pages = [client.get(url, headers=scientist).json()]
        while cursor := pages[-1]["next_cursor"]:
            pages.append(client.get(f"{url}&cursor={cursor}", headers=scientist).json())

        assert [p["timestamps"] for p in pages] == [
            [T + 2, T + 3, T + 4],
            [T + 5, T + 6, T + 7],
            [T + 8],
        ]

    def test_unknown_series_is_404(self, client: TestClient, viewer: Headers) -> None:
        response = client.get("/api/v1/series/nope/points", headers=viewer)

        assert response.status_code == 404


class TestFeedback:
    def test_stores_and_lists_labels(
        self, client: TestClient, scientist: Headers
    ) -> None:
        response = client.post(
            f"/api/v1/feedback/{SERIES}",
            json={"timestamp": T, "is_anomaly": False, "note": "maintenance"},
            headers=scientist,
        )

        assert response.status_code == 201
        labels = client.get(f"/api/v1/feedback/{SERIES}", headers=scientist).json()
        assert [(f["timestamp"], f["is_anomaly"]) for f in labels["feedback"]] == [
            (T, False)
        ]
