"""Numbers past a column's range, a plausible time or the value range are 422s,
on both databases.

Each went to the driver before (OverflowError on SQLite, NumericValueOutOfRange
on PostgreSQL: a 500), or was stored (an infinite timestamp read back as null).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from atalaia.core.series import MAX_ABS_VALUE
from atalaia.embedded import create_embedded_app
from fixtures.api import Headers, SettingsFactory, inline_body, promote, refused, train

SERIES = "sensor_009_radial"
T = 1_733_700_000.0
TOO_BIG = ["2147483648", "9223372036854775808", "0"]


@pytest.fixture
def client(make_settings: SettingsFactory, database_url: str) -> Iterator[TestClient]:
    settings = make_settings(database_url, training_min_interval_s=0)
    with TestClient(create_embedded_app(settings)) as test_client:
        yield test_client


class TestVersionNumbers:
    @pytest.mark.parametrize("version", TOO_BIG)
    def test_version_past_the_column_is_422_everywhere(
        self, client: TestClient, admin: Headers, version: str
    ) -> None:
        models = f"/api/v1/models/{SERIES}/versions/{version}"
        label = f'{{"timestamp": {T}, "is_anomaly": true, "version": {version}}}'
        answers = [
            client.get(models, headers=admin),
            client.post(f"{models}/promote", json={}, headers=admin),
            client.get(f"/api/v1/plot?series_id={SERIES}&version={version}",
                       headers=admin),
            client.post(
                f"/api/v1/feedback/{SERIES}",
                content=label,
                headers=admin | {"content-type": "application/json"},
            ),
        ]  # fmt: skip

        for response in answers:
            assert "version" in refused(response, "request_schema")

    def test_the_largest_version_is_a_404(
        self, client: TestClient, admin: Headers
    ) -> None:
        response = client.get(
            f"/api/v1/models/{SERIES}/versions/2147483647", headers=admin
        )

        assert response.status_code == 404


class TestFeedback:
    @pytest.mark.parametrize("timestamp", ["1e309", "-1e309", "NaN", "Infinity"])
    def test_non_finite_timestamp_is_422(
        self, client: TestClient, scientist: Headers, timestamp: str
    ) -> None:
        response = client.post(
            f"/api/v1/feedback/{SERIES}",
            content=f'{{"timestamp": {timestamp}, "is_anomaly": true}}',
            headers=scientist | {"content-type": "application/json"},
        )

        assert "timestamp" in refused(response, "request_schema")
        labels = client.get(f"/api/v1/feedback/{SERIES}", headers=scientist).json()
        assert labels["feedback"] == []

    def test_timestamp_in_milliseconds_is_422(
        self, client: TestClient, scientist: Headers
    ) -> None:
        response = client.post(
            f"/api/v1/feedback/{SERIES}",
            json={"timestamp": T * 1000, "is_anomaly": True},
            headers=scientist,
        )

        assert "look like milliseconds" in refused(response, "timestamp_range")

    def test_version_that_does_not_exist_is_422(
        self, client: TestClient, admin: Headers
    ) -> None:
        train(client, SERIES, admin)

        def label(version: int) -> Any:
            body = {"timestamp": T, "is_anomaly": False, "version": version}
            return client.post(f"/api/v1/feedback/{SERIES}", json=body, headers=admin)

        assert label(1).status_code == 201
        assert "has no version 2" in refused(label(2), "version_exists")


class TestTimestampsEnteringTheStore:
    def test_ingest_in_milliseconds_is_422_and_stores_nothing(
        self, client: TestClient, scientist: Headers
    ) -> None:
        response = client.post(
            f"/api/v1/series/{SERIES}/points",
            json={"timestamps": [T * 1000, T * 1000 + 1], "values": [1.0, 2.0]},
            headers=scientist,
        )

        assert "look like milliseconds" in refused(response, "timestamp_range")
        assert client.get("/api/v1/series", headers=scientist).json()["series"] == []

    @pytest.mark.parametrize("bad", [1e300, -1e12, 1e18])
    def test_ingest_of_an_implausible_time_is_422(
        self, client: TestClient, scientist: Headers, bad: float
    ) -> None:
        response = client.post(
            f"/api/v1/series/{SERIES}/points",
            json={"timestamps": [T, bad], "values": [1.0, 2.0]},
            headers=scientist,
        )

        assert refused(response, "timestamp_range").startswith(
            "timestamp at index 1 is"
        )

    def test_training_data_in_milliseconds_is_422(
        self, client: TestClient, scientist: Headers
    ) -> None:
        body = inline_body()
        body["timestamps"] = [t * 1000 for t in body["timestamps"]]

        response = client.post(
            f"/api/v1/training/{SERIES}", json=body, headers=scientist
        )

        assert "look like milliseconds" in refused(response, "timestamp_range")

    @pytest.mark.parametrize("cursor", ["nan", "inf", "-1e400"])
    def test_points_query_cursor_that_is_no_time_is_422(
        self, client: TestClient, scientist: Headers, cursor: str
    ) -> None:
        client.post(
            f"/api/v1/series/{SERIES}/points",
            json={"timestamps": [T], "values": [1.0]},
            headers=scientist,
        )

        response = client.get(
            f"/api/v1/series/{SERIES}/points?cursor={cursor}", headers=scientist
        )

        assert "not one this API gave" in refused(response, "cursor")

    @pytest.mark.parametrize("bound", ["start", "end"])
    def test_points_query_bounds_are_checked(
        self, client: TestClient, scientist: Headers, bound: str
    ) -> None:
        response = client.get(
            f"/api/v1/series/{SERIES}/points?{bound}={T * 1e6}", headers=scientist
        )

        assert "look like microseconds" in refused(response, "timestamp_range")


class TestPlotWindow:
    @pytest.mark.parametrize("bound", ["start", "end"])
    def test_bound_in_milliseconds_is_422(
        self, client: TestClient, scientist: Headers, bound: str
    ) -> None:
        response = client.get(
            f"/api/v1/plot?series_id={SERIES}&{bound}={T * 1000:.0f}",
            headers=scientist,
        )

        assert "look like milliseconds" in refused(response, "timestamp_range")

    @pytest.mark.parametrize("start", [f"{T:.0f}", f"{T}", "2024-12-08T23:20:00Z"])
    def test_bound_in_seconds_or_iso_8601_is_read(
        self, client: TestClient, scientist: Headers, start: str
    ) -> None:
        client.post(
            f"/api/v1/series/{SERIES}/points",
            json={"timestamps": [T, T + 60], "values": [1.0, 2.0]},
            headers=scientist,
        )

        response = client.get(
            f"/api/v1/plot?series_id={SERIES}&format=json&start={start}&end={T + 61}",
            headers=scientist,
        )

        assert response.status_code == 200, response.text
        assert response.json()["summary"]["points"] == 2

    def test_bound_that_is_neither_is_422(
        self, client: TestClient, scientist: Headers
    ) -> None:
        response = client.get(
            f"/api/v1/plot?series_id={SERIES}&start=yesterday", headers=scientist
        )

        assert "start" in refused(response, "request_schema")


class TestValueRange:
    @pytest.mark.parametrize("huge", [1.79e308, 8e307, -MAX_ABS_VALUE * 1.01])
    def test_ingest_of_a_huge_value_is_422_and_stores_nothing(
        self, client: TestClient, scientist: Headers, huge: float
    ) -> None:
        response = client.post(
            f"/api/v1/series/{SERIES}/points",
            json={"timestamps": [T, T + 1], "values": [1.0, huge]},
            headers=scientist,
        )

        assert refused(response, "value_range").startswith("value at index 1 is")
        assert client.get("/api/v1/series", headers=scientist).json()["series"] == []

    def test_ingest_at_the_bounds_keeps_finite_statistics(
        self, client: TestClient, scientist: Headers
    ) -> None:
        body = {"timestamps": [T, T + 1], "values": [MAX_ABS_VALUE, -MAX_ABS_VALUE]}

        response = client.post(
            f"/api/v1/series/{SERIES}/points", json=body, headers=scientist
        )

        assert response.status_code == 200, response.text
        (series,) = client.get("/api/v1/series", headers=scientist).json()["series"]
        assert (series["mean"], series["std"]) == (0.0, MAX_ABS_VALUE)

    def test_training_data_with_a_huge_value_is_422(
        self, client: TestClient, scientist: Headers
    ) -> None:
        body = inline_body()
        body["values"][7] = 1.79e308

        response = client.post(
            f"/api/v1/training/{SERIES}", json=body, headers=scientist
        )

        assert refused(response, "value_range").startswith("value at index 7 is")

    @pytest.mark.parametrize(
        "body",
        [
            {"points": [{"series_id": SERIES, "timestamp": T, "value": 1e308}]},
            {"series_id": [SERIES] * 2, "timestamp": [T, T], "value": [0.3, -1e308]},
        ],
        ids=["rows", "columns"],
    )
    def test_batch_prediction_of_a_huge_value_is_422(
        self, client: TestClient, admin: Headers, body: dict[str, Any]
    ) -> None:
        train(client, SERIES, admin)
        promote(client, SERIES, 1, admin)

        response = client.post("/api/v1/predict/batch", json=body, headers=admin)

        assert "value at index" in refused(response, "value_range")

    def test_prediction_of_a_huge_value_is_422(
        self, client: TestClient, admin: Headers
    ) -> None:
        train(client, SERIES, admin)
        promote(client, SERIES, 1, admin)

        response = client.post(
            f"/api/v1/predict/{SERIES}",
            json={"timestamp": T, "value": 1e308},
            headers=admin,
        )

        assert refused(response, "value_range").startswith("value is 1e+308")
