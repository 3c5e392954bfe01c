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


def takeover(client: TestClient) -> None:
    """Forget every series' state, as a replica that never served them."""
    client.app_state["predictor"].streams = SeriesStreams()


def test_answers_through_a_takeover_are_the_library_s(
    client: TestClient, admin: Headers
) -> None:
    serve(client, SERIES, admin, algorithm="forecast")
    trained_t, trained_v = sensor_series()
    model = detection.fit("forecast", trained_t, trained_v)
    t = trained_t[-1] + STEP_S * np.arange(1, 61)
    v = sensor_series(60, seed=9, start=float(t[0]))[1]
    v[30:] += 0.1  # a sustained shift, ten noise sigmas
    takeover(client)  # the probe's prediction (not stored) forgotten too

    answered = []
    for i in range(t.size):
        if i == 40:
            takeover(client)
        body = {"timestamps": [t[i]], "values": [v[i]]}
        answer = post_ok(client, admin, f"/api/v1/series/{SERIES}/points", body)
        assert answer["scored"] == 1
        answered += [(a["timestamp"], a["reason"]) for a in answer["anomalies"]]

    expected = model.score(t, v)
    assert answered == [
        (float(ti), str(r))
        for ti, r in zip(
            t[expected.anomaly], expected.reason[expected.anomaly], strict=True
        )
    ]
    assert answered
    assert answered[0][0] >= t[30]  # none before the shift
    assert {reason for _, reason in answered} == {"forecast_deviation"}
