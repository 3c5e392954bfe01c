"""An isolation forest through the HTTP API: trained (its trees in the artifact
store), promoted, served one reading or a batch at a time exactly as the
library scores the same readings in a row, under a memory budget, and answered
by its band when its trees cannot be read."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from atalaia.adapters.storage import LocalArtifactStore
from atalaia.api.common.auth import Role
from atalaia.detection import ForestModel, Result
from atalaia.embedded import create_embedded_app
from atalaia.settings import Settings
from fixtures.api import (
    Headers,
    SettingsFactory,
    bearer,
    post_ok,
    predict,
    refused,
    serve,
)
from fixtures.db import truncate_tables
from fixtures.readings import DAY_S, EPOCH, sensor_series

SERIES = "sensor_001_radial"
CONFIG: dict[str, Any] = {
    "algorithm": "isolation_forest",
    "hyperparameters": {"trees": 40},
}


# `wait_until_served` probes with a reading (0.3 at PROBE_T): the forest keeps it
# before the readings that follow.
PROBE_T, PROBE_VALUE = 1_733_700_000.0, 0.3
# The first whole day after the probe, in phase with the training week.
START = EPOCH + DAY_S * np.ceil((PROBE_T - EPOCH) / DAY_S + 1)


def after_probe(n: int, stuck_from: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`n` readings like the training week's after the probe; from `stuck_from`
    on, stuck at the first of them (well inside the band)."""
    timestamps, values = sensor_series(n, seed=7, start=START)
    if stuck_from is not None:
        values[stuck_from:] = values[stuck_from]
    return timestamps, values


def library_model(settings: Settings, version: dict[str, Any]) -> ForestModel:
    """The version's forest as the artifact store holds it."""
    store = LocalArtifactStore(settings.artifacts_path)
    return ForestModel.from_bytes(store.get(version["artifact"]))


def library_scores(
    settings: Settings, version: dict[str, Any], timestamps: Any, values: Any
) -> Result:
    """The library's answers to the readings after the probe."""
    whole = library_model(settings, version).score(
        np.concatenate([[PROBE_T], timestamps]), np.concatenate([[PROBE_VALUE], values])
    )
    after = slice(1, None)
    return replace(
        whole,
        anomaly_score=whole.anomaly_score[after],
        anomaly=whole.anomaly[after],
        expected=whole.expected[after],
        lower=whole.lower[after],
        upper=whole.upper[after],
        direction=whole.direction[after],
        reason=whole.reason[after],
    )


def test_readings_one_at_a_time_are_scored_as_the_library_scores_them(
    client: TestClient, admin: Headers, settings: Settings
) -> None:
    version = serve(client, SERIES, admin, **CONFIG)
    timestamps, values = after_probe(40, stuck_from=20)

    answers = [
        predict(client, admin, v, SERIES, t)
        for t, v in zip(timestamps.tolist(), values.tolist(), strict=True)
    ]

    assert version["algorithm"] == "isolation_forest"
    assert version["artifact"].startswith(f"models/{SERIES}/")
    assert version["metrics"]["model_bytes"] > 0
    library = library_scores(settings, version, timestamps, values)
    scores = [a["anomaly_score"] for a in answers]
    np.testing.assert_allclose(scores, library.anomaly_score, rtol=1e-9)
    assert [a["anomaly"] for a in answers] == library.anomaly.tolist()
    np.testing.assert_allclose(
        [a["expected"] for a in answers], library.expected, rtol=1e-6
    )
    stuck = [a for a in answers[20:] if a["anomaly"]]
    assert stuck  # a flat line inside the band: the forest's call, not the band's
    assert all(a["reason"] == "isolated_pattern" for a in stuck)
    assert all(
        a["lower"] < v < a["upper"] for a, v in zip(answers, values, strict=True)
    )
    assert not any(a["anomaly"] for a in answers[:20])
    assert {a["model_info"]["type"] for a in answers} == {"isolation_forest"}


def test_batches_go_on_from_the_readings_before_them(
    client: TestClient, admin: Headers, settings: Settings
) -> None:
    version = serve(client, SERIES, admin, **CONFIG)
    timestamps, values = after_probe(30)
    values[20] += 0.3  # 30 sigmas: in the second batch
    first, second = slice(0, 12), slice(12, 30)

    rows = post_ok(client, admin, "/api/v1/predict/batch", {"points": [
        {"series_id": SERIES, "timestamp": t, "value": v}
        for t, v in zip(timestamps[first].tolist(), values[first].tolist(), strict=True)
    ]})  # fmt: skip
    columns = post_ok(client, admin, "/api/v1/predict/batch", {
        "series_id": [SERIES] * 18,
        "timestamp": timestamps[second].tolist(),
        "value": values[second].tolist(),
    })  # fmt: skip

    library = library_scores(settings, version, timestamps, values)
    served = [r["anomaly_score"] for r in rows["results"]] + columns["anomaly_score"]
    np.testing.assert_allclose(served, library.anomaly_score, rtol=1e-9)
    reasons = [r["reason"] for r in rows["results"]] + columns["reason"]
    assert reasons == [r or None for r in library.reason.tolist()]
    # The spike is outside the band; the readings whose windows hold it, not.
    assert reasons[20:25] == ["outside_seasonal_band", *["isolated_pattern"] * 4]


def test_the_plot_shows_the_forests_verdicts(
    client: TestClient, admin: Headers, settings: Settings
) -> None:
    version = serve(client, SERIES, admin, **CONFIG)
    timestamps, values = after_probe(60, stuck_from=30)
    stored = client.post(
        f"/api/v1/series/{SERIES}/points",
        json={"timestamps": timestamps.tolist(), "values": values.tolist()},
        headers=admin,
    )
    assert stored.status_code == 200, stored.text

    plot = client.get(
        "/api/v1/plot",
        params={"series_id": SERIES, "format": "json", "start": timestamps[0]},
        headers=admin,
    ).json()

    library = library_model(settings, version).score(timestamps, values)
    np.testing.assert_allclose(
        plot["points"]["anomaly_score"], library.anomaly_score, rtol=1e-9
    )
    flagged = np.flatnonzero(library.anomaly)
    assert flagged.size
    assert [a["reason"] for a in plot["anomalies"]] == library.reason[flagged].tolist()
    assert "isolated_pattern" in library.reason[flagged]
    png = client.get(
        "/api/v1/plot", params={"series_id": SERIES}, headers=admin
    )  # fmt: skip
    assert png.content.startswith(b"\x89PNG")


def heavy_counts(client: TestClient) -> dict[str, float]:
    """The heavy_model_cache_* figures of /metrics, by name."""
    return {
        line.split()[0]: float(line.split()[1])
        for line in client.get("/metrics").text.splitlines()
        if line.startswith("heavy_model_cache_")
    }


def test_forests_beyond_the_budget_are_evicted_and_read_again(
    settings: Settings,
) -> None:
    # 40 trees take about 0.14 MB: the budget holds one forest, not two.
    small = settings.model_copy(update={"inference_model_memory_mb": 0.2})
    admin = bearer(small, Role.ADMIN)
    with TestClient(create_embedded_app(small)) as client:
        for i in (1, 2):
            serve(client, f"sensor_00{i}_radial", admin, seed=i, **CONFIG)
        before = heavy_counts(client)
        timestamps, values = after_probe(4)
        for t, v in zip(timestamps.tolist(), values.tolist(), strict=True):
            for i in (1, 2):  # each reading needs the forest the last one evicted
                predict(client, admin, v, f"sensor_00{i}_radial", t)
        after = heavy_counts(client)

    def change(name: str) -> float:
        return after[f"heavy_model_cache_{name}"] - before[f"heavy_model_cache_{name}"]

    assert (change("misses_total"), change("evictions_total")) == (8, 8)
    assert change("hits_total") == 0
    assert after["heavy_model_cache_models"] == 1
    assert 0 < after["heavy_model_cache_bytes"] <= 0.2 * 2**20
    assert after["heavy_model_cache_budget_bytes"] == int(0.2 * 2**20)


def test_a_forest_that_cannot_be_read_is_answered_by_its_band(
    settings: Settings,
) -> None:
    nothing_kept = settings.model_copy(update={"inference_model_memory_mb": 0})
    admin = bearer(nothing_kept, Role.ADMIN)
    with TestClient(create_embedded_app(nothing_kept)) as client:
        version = serve(client, SERIES, admin, **CONFIG)
        (settings.artifacts_path / version["artifact"]).unlink()
        timestamps, values = after_probe(2)
        normal = predict(client, admin, float(values[0]), SERIES, float(timestamps[0]))
        far_out = predict(client, admin, 5.0, SERIES, float(timestamps[1]))
        failures = heavy_counts(client)["heavy_model_cache_load_failures_total"]
        plot = client.get(
            "/api/v1/plot", params={"series_id": SERIES, "format": "json"},
            headers=admin,
        )  # fmt: skip

    assert not normal["anomaly"]
    assert far_out["anomaly"]
    assert far_out["reason"] in ("outside_band", "outside_seasonal_band")
    assert far_out["model_info"]["type"] == "isolation_forest"
    assert failures == 1  # then left alone for a while: no read, no warning
    assert plot.status_code == 503
    assert plot.json()["rule"] == "dependency_available"
    assert "does not exist" in plot.json()["detail"]


def test_a_restarted_service_serves_forests_from_postgresql_and_redis(
    postgres_database: str,
    make_settings: SettingsFactory,
    redis_url: str,
    redis_prefix: str,
) -> None:
    truncate_tables(postgres_database)
    on_services = make_settings(
        postgres_database, redis_url=redis_url, redis_prefix=redis_prefix
    )
    admin = bearer(on_services, Role.ADMIN)
    with TestClient(create_embedded_app(on_services)) as client:
        serve(client, SERIES, admin, **CONFIG)
        through_redis = predict(client, admin, 0.9, SERIES, START)
    with TestClient(create_embedded_app(on_services)) as client:  # a warm load
        warm = predict(client, admin, 0.9, SERIES, START)
        counts = heavy_counts(client)

    for answer in (through_redis, warm):  # 60 sigmas out: the band's call
        assert answer["model_info"]["type"] == "isolation_forest"
        assert answer["anomaly_score"] > 10
        assert answer["reason"] == "outside_seasonal_band"
    assert (
        counts["heavy_model_cache_misses_total"],
        counts["heavy_model_cache_models"],
    ) == (1, 1)


def test_forest_hyperparameters_are_checked_at_the_request(
    client: TestClient, admin: Headers
) -> None:
    response = client.post(
        f"/api/v1/training/{SERIES}",
        json={"window_hours": 24, "config": {"algorithm": "isolation_forest",
                                             "hyperparameters": {"window": 1.5}}},
        headers=admin,
    )  # fmt: skip

    assert "whole number" in refused(response, "hyperparameters_range")
