"""Inference API: answers, fallback chain, change feed, validation."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atalaia.embedded import create_embedded_app
from fixtures.api import (
    Headers,
    SettingsFactory,
    inline_body,
    promote,
    train,
    wait_until_served,
)
from fixtures.api import predict as predict_reading

SERIES = "sensor_003_radial"
T = 1_733_700_000.0


@pytest.fixture
def client(make_settings: SettingsFactory, tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(f"sqlite:///{tmp_path}/a.db", training_min_interval_s=0)
    with TestClient(create_embedded_app(settings)) as test_client:
        yield test_client


def predict(
    client: TestClient, headers: Headers, value: float, series_id: str = SERIES
) -> dict[str, Any]:
    return predict_reading(client, headers, value, series_id, timestamp=T)


def serving(client: TestClient, headers: Headers, version: int) -> dict[str, Any]:
    return wait_until_served(client, headers, version, SERIES)


class TestFallbackChain:
    def test_unknown_series_gets_a_low_confidence_default(
        self, client: TestClient, viewer: Headers
    ) -> None:
        body = predict(client, viewer, 1e9, series_id="never_seen")

        assert body["anomaly"] is False
        assert body["confidence"] == "low"
        assert body["model_info"]["loaded_from"] == "default"

    def test_series_with_history_but_no_model_uses_its_statistics(
        self, client: TestClient, admin: Headers
    ) -> None:
        client.post(
            f"/api/v1/series/{SERIES}/points", json=inline_body(), headers=admin
        )

        body = predict(client, admin, 1e6)

        assert body["anomaly"] is True
        assert body["confidence"] == "low"
        assert body["model_info"]["loaded_from"] == "history"

    def test_production_model_answers_with_high_confidence(
        self, client: TestClient, admin: Headers
    ) -> None:
        train(client, SERIES, admin, algorithm="zscore")
        promote(client, SERIES, 1, admin)

        serving(client, admin, 1)
        body = predict(client, admin, 0.3)

        assert body["confidence"] == "high"
        assert body["model_info"] == {
            "version": 1,
            "stage": "production",
            "type": "zscore",
            "loaded_from": "memory",
            "role": "production",
        }
        assert body["anomaly"] is False
        assert predict(client, admin, 50.0)["anomaly"] is True


class TestChangeFeed:
    def test_promotion_and_rollback_reach_the_served_table(
        self, client: TestClient, admin: Headers
    ) -> None:
        train(client, SERIES, admin, seed=1)
        train(client, SERIES, admin, seed=2)
        promote(client, SERIES, 1, admin)
        serving(client, admin, 1)

        promote(client, SERIES, 2, admin)
        serving(client, admin, 2)
        client.post(f"/api/v1/models/{SERIES}/rollback", headers=admin)

        assert serving(client, admin, 1)["model_info"]["version"] == 1

    def test_admin_reload_serves_a_promotion_at_once(
        self, client: TestClient, admin: Headers
    ) -> None:
        train(client, SERIES, admin)
        promote(client, SERIES, 1, admin)

        response = client.post(f"/api/v1/admin/reload/{SERIES}", headers=admin)

        assert response.json() == {"series_id": SERIES, "version": 1}
        assert predict(client, admin, 0.3)["model_info"]["version"] == 1


class TestBatch:
    def test_scores_many_series_in_request_order(
        self, client: TestClient, admin: Headers
    ) -> None:
        train(client, SERIES, admin, algorithm="zscore")
        promote(client, SERIES, 1, admin)
        serving(client, admin, 1)
        points = [
            {"series_id": SERIES, "timestamp": T + 1.0, "value": 0.3},
            {"series_id": "other", "timestamp": T + 2.0, "value": 0.3},
            {"series_id": SERIES, "timestamp": T + 3.0, "value": 99.0},
        ]

        body = client.post(
            "/api/v1/predict/batch", json={"points": points}, headers=admin
        ).json()

        assert body["count"] == 3
        assert body["anomalies"] == 1
        assert [r["timestamp"] for r in body["results"]] == [T + 1, T + 2, T + 3]
        assert [r["confidence"] for r in body["results"]] == ["high", "low", "high"]

    def test_empty_batch_is_422(self, client: TestClient, viewer: Headers) -> None:
        response = client.post(
            "/api/v1/predict/batch", json={"points": []}, headers=viewer
        )

        assert response.status_code == 422


class TestValidation:
    @pytest.mark.parametrize(
        "body",
        [
            '{"timestamp": 1, "value": NaN}',
            '{"timestamp": 1, "value": Infinity}',
            '{"timestamp": 1}',
            '{"timestamp": 1, "value": "high"}',
            "[]",
        ],
    )
    def test_bad_reading_is_422(
        self, client: TestClient, viewer: Headers, body: str
    ) -> None:
        response = client.post(
            f"/api/v1/predict/{SERIES}",
            content=body,
            headers=viewer | {"content-type": "application/json"},
        )

        assert response.status_code == 422
        assert response.json()["rule"] == "request_schema"

    @pytest.mark.parametrize(
        ("body", "rule", "detail"),
        [
            (
                {"points": [{"series_id": "a b", "timestamp": T, "value": 1}]},
                "series_id_format",
                "series id 'a b'",
            ),
            (
                {"series_id": [SERIES, "a b"], "timestamp": [T, T], "value": [1, 2]},
                "series_id_format",
                "series id 'a b'",
            ),
            (
                {
                    "points": [
                        {"series_id": SERIES, "timestamp": t, "value": 1}
                        for t in (T, T * 1e3)
                    ]
                },
                "timestamp_range",
                "timestamp at index 1 is",
            ),
            (
                {"series_id": [SERIES] * 2, "timestamp": [T, T * 1e3], "value": [1, 2]},
                "timestamp_range",
                "timestamp at index 1 is",
            ),
        ],
        ids=["rows-id", "columns-id", "rows-milliseconds", "columns-milliseconds"],
    )
    def test_bad_batch_is_422_naming_the_rule(
        self, client: TestClient, viewer: Headers, body: dict[str, Any], rule: str,
        detail: str,
    ) -> None:  # fmt: skip
        response = client.post("/api/v1/predict/batch", json=body, headers=viewer)

        assert response.status_code == 422
        assert response.json()["rule"] == rule
        assert response.json()["detail"].startswith(detail)
        if rule == "timestamp_range":
            assert "look like milliseconds; send seconds" in response.json()["detail"]

    def test_bad_series_id_is_422(self, client: TestClient, viewer: Headers) -> None:
        response = client.post(
            "/api/v1/predict/a%20b", json={"timestamp": 1, "value": 1}, headers=viewer
        )

        assert response.status_code == 422
        assert response.json()["rule"] == "series_id_format"

    @pytest.mark.parametrize(
        "body",
        [
            b'{"series_id":["a"],"timestamp":[1],"value":[NaN]}',
            b'{"series_id":["a"],"timestamp":[1733700000],"val',
            b'{"series_id":["a"],"timestamp":[1733700000],"value":[1]}}garbage',
        ],
        ids=["nan", "truncated", "trailing-garbage"],
    )
    def test_malformed_columnar_batch_is_422(
        self, client: TestClient, viewer: Headers, body: bytes
    ) -> None:
        response = client.post("/api/v1/predict/batch", content=body, headers=viewer)

        assert response.status_code == 422
        assert response.json()["rule"] == "request_schema"
        assert "invalid JSON" in response.json()["detail"]


class TestTimestampRange:
    @pytest.mark.parametrize(
        ("timestamp", "hint"),
        [
            (T * 1e3, "timestamps look like milliseconds; send seconds"),
            (T * 1e9, "timestamps look like nanoseconds; send seconds"),
            (1e300, "outside 2000-01-01T00:00:00+00:00"),
            (-1e12, "outside 2000-01-01T00:00:00+00:00"),
        ],
    )
    def test_single_reading_out_of_range_is_422(
        self, client: TestClient, viewer: Headers, timestamp: float, hint: str
    ) -> None:
        response = client.post(
            f"/api/v1/predict/{SERIES}",
            json={"timestamp": timestamp, "value": 1.0},
            headers=viewer,
        )

        assert response.status_code == 422
        assert response.json()["rule"] == "timestamp_range"
        assert hint in response.json()["detail"]

    def test_bounds_come_from_the_settings(
        self, make_settings: SettingsFactory, tmp_path: Path, viewer: Headers
    ) -> None:
        settings = make_settings(f"sqlite:///{tmp_path}/b.db", timestamp_min=0.0)
        reading = {"timestamp": 1.0, "value": 1.0}

        with TestClient(create_embedded_app(settings)) as client:
            response = client.post(
                f"/api/v1/predict/{SERIES}", json=reading, headers=viewer
            )

        assert response.status_code == 200, response.text


def _valid_bodies() -> st.SearchStrategy[bytes]:
    integers = st.integers(min_value=-(2**63), max_value=2**64 - 1)  # orjson's
    number = st.one_of(st.floats(), integers, st.just(T))
    sid = st.one_of(st.just(SERIES), st.text(max_size=6))
    reading = st.fixed_dictionaries({"timestamp": number, "value": number})
    point = st.fixed_dictionaries(
        {"series_id": sid, "timestamp": number, "value": number}
    )
    columns = st.fixed_dictionaries(
        {
            "series_id": st.lists(sid, max_size=3),
            "timestamp": st.lists(number, max_size=3),
            "value": st.lists(number, max_size=3),
        }
    )
    bodies = st.one_of(
        reading, st.fixed_dictionaries({"points": st.lists(point, max_size=3)}), columns
    )
    return bodies.map(lambda b: orjson.dumps(b, option=orjson.OPT_SERIALIZE_NUMPY))


def _mutated(body: bytes, data: st.DataObject) -> bytes:
    """`body` cut short, with bytes replaced or inserted, or garbage appended."""
    at = data.draw(st.integers(0, len(body)))
    junk = data.draw(
        st.binary(max_size=4) | st.sampled_from([b"NaN", b"}", b'"', b"1e999"])
    )
    how = data.draw(st.sampled_from(["cut", "insert", "replace", "append", "keep"]))
    return {
        "cut": body[:at],
        "insert": body[:at] + junk + body[at:],
        "replace": body[:at] + junk + body[at + len(junk) :],
        "append": body + junk,
        "keep": body,
    }[how]


class TestNeverA5xx:
    @settings(
        max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(
        route=st.sampled_from([f"/api/v1/predict/{SERIES}", "/api/v1/predict/batch"]),
        body=_valid_bodies() | st.binary(max_size=40),
        data=st.data(),
    )
    def test_arbitrary_and_mutated_bodies_are_answered_below_500(
        self,
        client: TestClient,
        viewer: Headers,
        route: str,
        body: bytes,
        data: st.DataObject,
    ) -> None:
        response = client.post(route, content=_mutated(body, data), headers=viewer)

        assert response.status_code < 500, response.text
        if response.status_code == 422:
            assert response.json()["rule"]


class TestUnknownSeries:
    """A series with no model and no history (a mistyped id) is answered with the
    default and a warning, counted, or refused when asked."""

    def test_single_answer_warns_and_is_counted(
        self, client: TestClient, admin: Headers
    ) -> None:
        client.post(
            f"/api/v1/series/{SERIES}/points", json=inline_body(), headers=admin
        )

        unknown = predict(client, admin, 1e9, series_id="sensor_003_radail")
        known = predict(client, admin, 0.3)

        assert unknown["warning"].startswith("unknown_series: ")
        assert unknown["anomaly"] is False
        assert "warning" not in known
        assert unknown_counted(client) == 1

    @pytest.mark.parametrize("columnar", [False, True], ids=["rows", "columns"])
    def test_batch_warns_on_each_reading_of_an_unknown_series(
        self, client: TestClient, admin: Headers, columnar: bool
    ) -> None:
        client.post(
            f"/api/v1/series/{SERIES}/points", json=inline_body(), headers=admin
        )
        ids = [SERIES, "typo_1", SERIES, "typo_1", "typo_2"]

        body = predict_batch(client, admin, ids, columnar=columnar)

        warned = (
            body["warning"] if columnar else [r.get("warning") for r in body["results"]]
        )
        assert [w is not None for w in warned] == [False, True, False, True, True]
        assert unknown_counted(client) == 3
        known = predict_batch(client, admin, [SERIES], columnar=columnar)
        assert "warning" not in (known if columnar else known["results"][0])

    @pytest.mark.parametrize("route", ["single", "rows", "columns"])
    def test_reject_refuses_with_404_naming_the_series(
        self, client: TestClient, viewer: Headers, route: str
    ) -> None:
        ids = ["typo_1", "typo_2", "typo_1"][: 1 if route == "single" else 3]

        response = request_predictions(
            client, viewer, ids, route, params={"unknown": "reject"}
        )

        assert response.status_code == 404
        assert response.json()["error"] == "UnknownSeries"
        assert all(repr(i) in response.json()["detail"] for i in ids)
        assert unknown_counted(client) == len(ids)

    def test_a_refused_batch_names_at_most_fifty_series(
        self, client: TestClient, viewer: Headers
    ) -> None:
        ids = [f"typo_{i:03}" for i in range(60)]

        response = request_predictions(
            client, viewer, ids, "rows", params={"unknown": "reject"}
        )

        detail = response.json()["detail"]
        assert "60 series" in detail
        assert "'typo_049'" in detail
        assert "'typo_050'" not in detail
        assert detail.endswith("and 10 more")

    def test_the_setting_rejects_and_the_query_overrides_it(
        self, make_settings: SettingsFactory, tmp_path: Path, viewer: Headers
    ) -> None:
        settings = make_settings(f"sqlite:///{tmp_path}/r.db", unknown_series="reject")
        with TestClient(create_embedded_app(settings)) as rejecting:
            refused = request_predictions(rejecting, viewer, ["typo"], "single")
            answered = request_predictions(
                rejecting, viewer, ["typo"], "single", params={"unknown": "default"}
            )

        assert refused.status_code == 404
        assert answered.status_code == 200
        assert "warning" in answered.json()

    def test_the_policy_and_the_warning_are_documented(
        self, client: TestClient
    ) -> None:
        spec = client.get("/openapi.json").json()

        for path in ("/api/v1/predict/{series_id}", "/api/v1/predict/batch"):
            operation = spec["paths"][path]["post"]
            assert "unknown" in [p["name"] for p in operation["parameters"]]
            assert {"404", "413"} <= set(operation["responses"])
        for view in ("PredictionView", "ColumnsView"):
            assert "warning" in spec["components"]["schemas"][view]["properties"]

    def test_an_unknown_policy_is_422(
        self, client: TestClient, viewer: Headers
    ) -> None:
        response = request_predictions(
            client, viewer, ["typo"], "single", params={"unknown": "rejct"}
        )

        assert response.status_code == 422
        assert response.json()["rule"] == "unknown_series_policy"

    @pytest.mark.parametrize("route", ["single", "rows", "columns"])
    @pytest.mark.parametrize(
        "query",
        [b"=false", b"limt=10", b"unknown=reject&unknown=default"],
        ids=["blank-name", "typo", "repeated"],
    )
    def test_a_query_parameter_not_taken_or_repeated_is_422(
        self, client: TestClient, viewer: Headers, route: str, query: bytes
    ) -> None:
        response = request_predictions(
            client, viewer, [SERIES], route, params=httpx.QueryParams(query.decode())
        )

        assert response.status_code == 422, response.text
        assert response.json()["rule"] == "query_parameters"


def request_predictions(
    client: TestClient,
    headers: Headers,
    ids: list[str],
    route: str,
    params: dict[str, str] | httpx.QueryParams | None = None,
) -> httpx.Response:
    """POST readings of `ids` to the single route (the first id), or as a batch."""
    body: dict[str, Any]
    if route == "single":
        url, body = f"/api/v1/predict/{ids[0]}", {"timestamp": T, "value": 0.3}
    elif route == "rows":
        url = "/api/v1/predict/batch"
        body = {"points": [{"series_id": i, "timestamp": T, "value": 0.3} for i in ids]}
    else:
        url = "/api/v1/predict/batch"
        n = len(ids)
        body = {"series_id": ids, "timestamp": [T] * n, "value": [0.3] * n}
    response: httpx.Response = client.post(
        url, json=body, headers=headers, params=params
    )
    return response


def predict_batch(
    client: TestClient, headers: Headers, ids: list[str], *, columnar: bool
) -> dict[str, Any]:
    response = request_predictions(
        client, headers, ids, "columns" if columnar else "rows"
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def unknown_counted(client: TestClient) -> float:
    """predictions_unknown_series_total, as /metrics says."""
    text = client.get("/metrics").text
    found = re.search(r"^predictions_unknown_series_total (\S+)$", text, re.M)
    assert found is not None, "predictions_unknown_series_total is not exported"
    return float(found.group(1))
