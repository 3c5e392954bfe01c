"""Scoring on ingest: readings stored and, for series with a production model,
scored on the way in; their anomalies answered and logged once per reading."""

from __future__ import annotations

from typing import Any, get_args

from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import AnomalyLog
from atalaia.api.common.explained import Reason
from atalaia.services.model_table import REASONS
from atalaia.settings import Settings
from fixtures.api import Headers, post_ok, predict, serve

MODELLED, PLAIN = "sensor_003_radial", "sensor_004_radial"
AFTER = 1_734_000_000.0  # after the training readings and `serve`'s probe


def logged(settings: Settings) -> list[str]:
    """Every anomaly in the log, in order: "series@timestamp"."""
    engine = create_engine(settings.database_url)
    with Session(engine) as session:
        page, _ = AnomalyLog(session).after(None, limit=1000)
    engine.dispose()
    return [f"{a.series_id}@{a.timestamp:g}" for a in page]


def points(client: TestClient, headers: Headers, series_id: str,
           readings: list[tuple[float, float]]) -> dict[str, Any]:  # fmt: skip
    body = {"timestamps": [t for t, _ in readings], "values": [v for _, v in readings]}
    return post_ok(client, headers, f"/api/v1/series/{series_id}/points", body)


def test_readings_of_a_modelled_series_are_scored_and_logged_once(
    client: TestClient, admin: Headers, settings: Settings
) -> None:
    serve(client, MODELLED, admin, algorithm="zscore")
    readings = [
        (AFTER, 0.3),
        (AFTER + 60, 9.0),
        (AFTER + 120, 0.31),
        (AFTER + 180, -9.0),
    ]

    first = points(client, admin, MODELLED, readings)
    again = points(client, admin, MODELLED, readings)

    assert (first["inserted"], first["scored"]) == (4, 4)
    spikes = first["anomalies"]
    assert [(a["timestamp"], a["direction"]) for a in spikes] == [
        (AFTER + 60, "above"), (AFTER + 180, "below")
    ]  # fmt: skip
    assert spikes[0]["reason"] == "outside_band"
    assert spikes[0]["lower"] < spikes[0]["expected"] < spikes[0]["upper"] < 9.0
    assert spikes[0]["type"] == "zscore"
    assert not any(a["stale"] for a in spikes)
    assert (again["inserted"], again["ignored"]) == (0, 4)
    assert [a["stale"] for a in again["anomalies"]] == [True, True]
    assert logged(settings) == [
        f"{MODELLED}@{AFTER + 60:g}",
        f"{MODELLED}@{AFTER + 180:g}",
    ]


def test_a_series_without_a_model_is_stored_not_scored(
    client: TestClient, admin: Headers
) -> None:
    answer = points(client, admin, PLAIN, [(AFTER, 0.3), (AFTER + 60, 1e6)])

    assert (answer["inserted"], answer["scored"], answer["anomalies"]) == (2, 0, [])


def test_many_series_in_one_columnar_request(
    client: TestClient, admin: Headers, settings: Settings
) -> None:
    serve(client, MODELLED, admin, algorithm="zscore")
    body = {
        "series_id": [PLAIN, MODELLED, MODELLED, PLAIN],
        "timestamp": [AFTER, AFTER + 60, AFTER, AFTER + 60],
        "value": [1e6, 9.0, 0.3, 0.3],
    }

    answer = post_ok(client, admin, "/api/v1/series/points", body)
    stored = client.get(f"/api/v1/series/{PLAIN}/points", headers=admin).json()

    assert {k: answer[k] for k in ("series", "received", "inserted", "scored")} == {
        "series": 2, "received": 4, "inserted": 4, "scored": 2
    }  # fmt: skip
    assert [(a["series_id"], a["timestamp"]) for a in answer["anomalies"]] == [
        (MODELLED, AFTER + 60)
    ]
    assert stored["values"] == [1e6, 0.3]
    assert logged(settings) == [f"{MODELLED}@{AFTER + 60:g}"]


def test_ingested_readings_advance_the_series_stream(
    client: TestClient, admin: Headers
) -> None:
    serve(client, MODELLED, admin)  # auto: a stuck guard of 2 readings
    held = predict(client, admin, 0.0, MODELLED, AFTER - 60)["expected"]

    three = [(AFTER + 60 * i, held) for i in range(3)]
    ingested = points(client, admin, MODELLED, three)
    next_one = predict(client, admin, held, MODELLED, AFTER + 180)

    assert [a["reason"] for a in ingested["anomalies"]] == ["stuck"]  # the 3rd
    assert next_one["reason"] == "stuck"
    assert next_one["anomaly_score"] == 4 / 2


def test_bad_readings_are_refused_and_nothing_is_stored(
    client: TestClient, admin: Headers, settings: Settings
) -> None:
    serve(client, MODELLED, admin, algorithm="zscore")
    twice = {"timestamps": [AFTER, AFTER], "values": [9.0, 9.0]}
    misaligned = {"series_id": [MODELLED], "timestamp": [AFTER, AFTER + 1],
                  "value": [9.0]}  # fmt: skip

    one = client.post(f"/api/v1/series/{MODELLED}/points", json=twice, headers=admin)
    bulk = client.post("/api/v1/series/points", json=misaligned, headers=admin)
    later = points(client, admin, MODELLED, [(AFTER, 9.0)])

    assert one.status_code == 422
    assert bulk.status_code == 422
    assert later["inserted"] == 1
    assert not later["anomalies"][0]["stale"]  # the refused ones advanced nothing
    assert logged(settings) == [f"{MODELLED}@{AFTER:g}"]


def test_the_log_is_read_in_pages_from_a_cursor(
    client: TestClient, admin: Headers, viewer: Headers
) -> None:
    serve(client, MODELLED, admin, algorithm="zscore")
    points(client, admin, MODELLED, [(AFTER + 60 * i, 9.0) for i in range(3)])

    def page(after: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": 2} | ({"after": after} if after else {})
        answer = client.get("/api/v1/anomalies", params=params, headers=viewer)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    first = page(None)
    second = page(first["next_cursor"])
    third = page(second["next_cursor"])
    refused = client.get("/api/v1/anomalies", params={"after": "x"}, headers=viewer)

    times = [a["timestamp"] for p in (first, second) for a in p["anomalies"]]
    assert times == [AFTER, AFTER + 60, AFTER + 120]
    assert first["anomalies"][0]["reason"] == "outside_band"
    assert (third["anomalies"], third["next_cursor"]) == ([], second["next_cursor"])
    assert refused.status_code == 422
    assert refused.json()["rule"] == "cursor"


def test_every_reason_served_is_documented() -> None:
    """A series' reasons, and the sensor models' (their anomalies are logged
    as their top axis')."""
    sensors = {"axis_correlation_break"}
    assert set(get_args(Reason)) == set(REASONS) | sensors
