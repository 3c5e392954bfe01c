"""Streaming models behind the ingest route: readings sent in advance their
series' state, and a replica that takes a series over (no state of its own)
catches up from the stored readings: the answers are the library's."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient

from atalaia import detection
from atalaia.services.inference.streams import SeriesStreams
from fixtures.api import Headers, post_ok, serve
from fixtures.readings import STEP_S, sensor_series

SERIES = "sensor_007_axial"


def takeover(client: TestClient, streams: SeriesStreams | None = None) -> SeriesStreams:
    """Serve with `streams` (default: new ones, as a replica that never served
    a series); the streams served until then."""
    predictor = client.app_state["predictor"]
    before: SeriesStreams = predictor.streams
    predictor.streams = streams or SeriesStreams()
    return before


def stream(
    client: TestClient, admin: Headers, away: range
) -> tuple[list[tuple[float, str]], list[tuple[float, str]]]:
    """Send 60 readings of SERIES in one at a time, those `away` to another
    replica (streams of their own, new); the anomalies answered, and the
    library's."""
    serve(client, SERIES, admin, algorithm="forecast")
    trained_t, trained_v = sensor_series()
    model = detection.fit("forecast", trained_t, trained_v)
    t = trained_t[-1] + STEP_S * np.arange(1, 61)
    v = sensor_series(60, seed=9, start=float(t[0]))[1]
    v[30:] += 0.1  # a sustained shift, ten noise sigmas
    takeover(client)  # the probe's prediction (not stored) forgotten too
    other = SeriesStreams()
    answered = []
    for i in range(t.size):
        if i == away.start:
            first = takeover(client, other)
        if i == away.stop:
            takeover(client, first)
        body = {"timestamps": [t[i]], "values": [v[i]]}
        answer = post_ok(client, admin, f"/api/v1/series/{SERIES}/points", body)
        assert answer["scored"] == 1
        answered += [(a["timestamp"], a["reason"]) for a in answer["anomalies"]]
    expected = model.score(t, v)
    return answered, [
        (float(ti), str(r))
        for ti, r in zip(
            t[expected.anomaly], expected.reason[expected.anomaly], strict=True
        )
    ]


def test_answers_through_a_takeover_are_the_library_s(
    client: TestClient, admin: Headers
) -> None:
    answered, expected = stream(client, admin, range(40, 60))  # killed at 40

    assert answered == expected
    assert answered
    assert {reason for _, reason in answered} == {"forecast_deviation"}


def test_readings_scored_by_another_replica_are_caught_up(
    client: TestClient, admin: Headers
) -> None:
    answered, expected = stream(client, admin, range(25, 35))

    assert answered == expected
    assert answered
