"""`auto`'s stuck guard through the HTTP API: a value held for longer than the
series' training ever held one is an anomaly (`stuck`) inside the band, in
every answer, the plot included; a retried reading says it is `stale`."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from fixtures.api import Headers, inline_body, post_ok, predict, serve

SERIES = "sensor_007_axial"
AFTER = 1_734_000_000.0  # past the training readings and the probe of `serve`
MINUTE = 60.0


def held(client: TestClient, admin: Headers, n: int) -> tuple[float, list[Any]]:
    """The value expected at AFTER, and the answers to `n` readings of it a
    minute apart from there, one request each."""
    value = predict(client, admin, 0.0, SERIES, AFTER - MINUTE)["expected"]
    times = AFTER + MINUTE * np.arange(n)
    return value, [predict(client, admin, value, SERIES, t) for t in times.tolist()]


def test_a_value_held_too_long_is_stuck(client: TestClient, admin: Headers) -> None:
    version = serve(client, SERIES, admin)  # auto: the default
    limit = version["metrics"]["stuck_after"]

    value, answers = held(client, admin, int(limit) + 2)
    retried = predict(client, admin, value, SERIES, AFTER + MINUTE * (limit + 1))

    assert limit == 2  # noisy float readings never repeat in training
    assert [a["anomaly"] for a in answers] == [False] * int(limit) + [True] * 2
    last = answers[-1]
    assert last["reason"] == "stuck"
    assert last["lower"] < value < last["upper"]  # inside the band
    assert last["anomaly_score"] == (limit + 2) / limit
    assert not any(a["stale"] for a in answers)
    assert retried == last | {"stale": True}


def test_batches_count_the_runs_the_single_route_counted(
    client: TestClient, admin: Headers
) -> None:
    serve(client, SERIES, admin)
    value, _ = held(client, admin, 2)
    later = [AFTER + MINUTE * i for i in (2, 3)]

    columns = post_ok(client, admin, "/api/v1/predict/batch", {
        "series_id": [SERIES] * 3, "timestamp": [*later, AFTER],
        "value": [value] * 3,
    })  # fmt: skip

    # A batch reads each series in time order: the late reading comes first,
    # and repeats the value of a run of 2 then (within the limit).
    assert columns["reason"] == ["stuck", "stuck", None]
    assert columns["stale"] == [False, False, True]


def test_the_plot_names_the_stuck_readings(client: TestClient, admin: Headers) -> None:
    history = inline_body()
    values = history["values"]
    values[-5:] = [values[-6]] * 5  # the last six readings: one value
    stored = client.post(f"/api/v1/series/{SERIES}/points", json=history, headers=admin)
    assert stored.status_code == 200, stored.text
    serve(client, SERIES, admin)

    plot = client.get(
        "/api/v1/plot", params={"series_id": SERIES, "format": "json"},
        headers=admin,
    ).json()  # fmt: skip

    stuck = [a for a in plot["anomalies"] if a["reason"] == "stuck"]
    assert [a["timestamp"] for a in stuck] == history["timestamps"][-4:]
