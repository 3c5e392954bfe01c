"""A seasonal model through the HTTP API: trained, promoted, then probed at times
where a flat band cannot tell (a value normal at noon, not at the daily low)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from fixtures.api import (
    Headers,
    inline_body,
    post_ok,
    predict,
    refused,
    serve,
)
from fixtures.readings import DAY_S, EPOCH

SERIES = "sensor_001_radial"
# The training series: 0.3 + 0.1 sin(2π (t − EPOCH) / day) + noise of 0.01,
# a week of minutes. Its daily low (0.2) is at three quarters of a day.
LOW = EPOCH + 8 * DAY_S + 0.75 * DAY_S
HIGH = EPOCH + 8 * DAY_S + 0.25 * DAY_S


def test_a_seasonal_model_flags_a_value_normal_at_another_hour(
    client: TestClient, admin: Headers
) -> None:
    model = serve(client, SERIES, admin, algorithm="seasonal")
    assert model["metrics"]["period_s"] == DAY_S
    assert model["metrics"]["phases"] == 24

    at_low = predict(client, admin, 0.35, SERIES, LOW)
    at_high = predict(client, admin, 0.39, SERIES, HIGH)

    assert at_low["anomaly"]
    assert not at_high["anomaly"]
    assert at_low["model_info"]["type"] == "seasonal"
    assert abs(at_low["expected"] - 0.2) < 0.01
    assert abs(at_high["expected"] - 0.4) < 0.01
    assert at_low["lower"] < at_low["expected"] < at_low["upper"] < 0.35
    assert (at_low["direction"], at_low["reason"]) == (
        "above", "outside_seasonal_band"
    )  # fmt: skip
    assert (at_high["direction"], at_high["reason"]) == (None, None)


def test_a_flat_model_cannot_tell_the_hour(client: TestClient, admin: Headers) -> None:
    serve(client, SERIES, admin, algorithm="zscore")

    at_low = predict(client, admin, 0.35, SERIES, LOW)

    assert not at_low["anomaly"]
    assert abs(at_low["expected"] - 0.3) < 0.01  # one centre at every hour


def test_batches_explain_each_reading_as_the_single_route(
    client: TestClient, admin: Headers
) -> None:
    serve(client, SERIES, admin, algorithm="seasonal")
    readings = [(LOW, 0.35), (HIGH, 0.39), (LOW + 600, 0.05), (HIGH, 0.4)]
    singles = [predict(client, admin, v, SERIES, t) for t, v in readings]

    rows = post_ok(client, admin, "/api/v1/predict/batch", {"points": [
        {"series_id": SERIES, "timestamp": t, "value": v} for t, v in readings
    ]})  # fmt: skip
    columns = post_ok(client, admin, "/api/v1/predict/batch", {
        "series_id": [SERIES] * len(readings),
        "timestamp": [t for t, _ in readings],
        "value": [v for _, v in readings],
    })  # fmt: skip

    def fresh(answer: dict[str, Any]) -> dict[str, Any]:
        return answer | {"stale": False}

    # The same answers, but for `stale`: the batches come after the singles.
    assert [fresh(r) for r in rows["results"]] == [fresh(s) for s in singles]
    assert [s["stale"] for s in singles] == [False, True, False, True]
    assert columns["stale"] == [r["stale"] for r in rows["results"]] == [True] * 4
    for field in ("expected", "lower", "upper", "direction", "reason"):
        assert columns[field] == [s[field] for s in singles]
    assert columns["direction"] == ["above", None, "below", None]


def test_the_plot_draws_the_band_of_each_hour(
    client: TestClient, admin: Headers
) -> None:
    stored = client.post(
        f"/api/v1/series/{SERIES}/points", json=inline_body(), headers=admin
    )
    assert stored.status_code == 200, stored.text
    serve(client, SERIES, admin, algorithm="seasonal")

    plot = client.get(
        "/api/v1/plot", params={"series_id": SERIES, "format": "json"},
        headers=admin,
    ).json()  # fmt: skip

    expected = plot["points"]["expected"]
    assert plot["band"] is None  # no one flat band
    assert plot["model"]["phases"] == 24
    assert 0.18 < min(expected) < 0.22
    assert 0.38 < max(expected) < 0.42


def test_phases_must_be_a_whole_number(client: TestClient, admin: Headers) -> None:
    response = client.post(
        f"/api/v1/training/{SERIES}",
        json={"window_hours": 24, "config": {"algorithm": "seasonal",
                                             "hyperparameters": {"phases": 2.5}}},
        headers=admin,
    )  # fmt: skip

    assert "whole number" in refused(response, "hyperparameters_range")
