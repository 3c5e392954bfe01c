"""The fast prediction routes answer as a plain FastAPI app does.

The reference below is the obvious way to write the routes: Pydantic bodies and
views (the published schemas), one reading at a time against the model table,
FastAPI's encoder. The fast routes (msgspec, the data plane, answers shaped
column by column) must give the same answers, on random mixes of series with a
model in memory, with history only, with a model fetched on a miss (from Redis
or the database), and unknown.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from atalaia.adapters.db.migrate import upgrade_database
from atalaia.api.common.auth import Role
from atalaia.api.inference.answers import UNKNOWN_SERIES_WARNING
from atalaia.api.inference.app import create_app
from atalaia.api.inference.schemas import (
    BatchBody,
    BatchView,
    ColumnsBody,
    ColumnsView,
    ModelInfo,
    PredictionView,
    Reading,
)
from atalaia.core.detectors.stream_families import STREAM_FAMILIES
from atalaia.core.series import DEFAULT_TIMESTAMP_MAX, DEFAULT_TIMESTAMP_MIN
from atalaia.core.serving import ServedModel
from atalaia.services.model_table import ALGORITHMS, ModelTable, Source, Tier
from atalaia.settings import Settings
from fixtures.api import Headers, bearer
from fixtures.serving import FakeServing

IN_MEMORY = [Source.MEMORY, Source.SNAPSHOT]
ELSEWHERE = [Source.REDIS, Source.DATABASE]  # fetched on a miss
LOADED_FROM = {
    Source.MEMORY: "memory",
    Source.SNAPSHOT: "snapshot",
    Source.REDIS: "redis",
    Source.DATABASE: "database",
}


@dataclass(frozen=True)
class Series:
    """A series as drawn: a model and where it is, history, both or neither."""

    model: tuple[int, str, float, float, float] | None  # version … threshold
    source: Source  # where the model is: in memory, or elsewhere
    history: tuple[float, float] | None  # mean, std


finite = st.floats(min_value=-1e6, max_value=1e6) | st.integers(-(10**6), 10**6)
series = st.builds(
    Series,
    st.none()
    | st.tuples(
        st.integers(1, 2**31 - 1),
        st.sampled_from(ALGORITHMS),
        finite,
        st.floats(min_value=0.0, max_value=1e3),
        st.floats(min_value=0.5, max_value=10),
    ),
    st.sampled_from(IN_MEMORY + ELSEWHERE),
    st.none() | st.tuples(finite, st.just(0.0) | st.floats(1e-9, 1e3)),
)
timestamps = st.floats(DEFAULT_TIMESTAMP_MIN, DEFAULT_TIMESTAMP_MAX) | st.integers(
    int(DEFAULT_TIMESTAMP_MIN), int(DEFAULT_TIMESTAMP_MAX)
)
# Some series, and readings of them: (which series, timestamp, value).
Drawn = tuple[list[Series], list[tuple[int, float, float]]]
fleets = st.lists(series, min_size=1, max_size=6).flatmap(
    lambda fleet: st.tuples(
        st.just(fleet),
        st.lists(
            st.tuples(st.integers(0, len(fleet) - 1), timestamps, finite),
            min_size=1,
            max_size=8,
        ),
    )
)


def reference_app() -> FastAPI:
    """The prediction routes written plainly; `app.state.serving`: the model
    table and the models a miss fetches."""
    app = FastAPI()

    @app.post(
        "/api/v1/predict/batch",
        response_model=BatchView | ColumnsView,
        response_model_exclude_unset=True,
    )
    def predict_batch(
        body: BatchBody | ColumnsBody, request: Request
    ) -> BatchView | ColumnsView:
        serving: FakeServing = request.app.state.serving
        if isinstance(body, ColumnsBody):
            readings = list(
                zip(body.series_id, body.timestamp, body.value, strict=True)
            )
        else:
            readings = [(p.series_id, p.timestamp, p.value) for p in body.points]
        fetched = fetch_misses(serving, [series_id for series_id, _, _ in readings])
        stale = stale_in_batch(request.app.state.newest, serving, readings)
        results = [
            prediction(serving, *reading, fetched, stale=s)
            for reading, s in zip(readings, stale, strict=True)
        ]
        if isinstance(body, ColumnsBody):
            return columns_view(results)
        anomalies = sum(r.anomaly for r in results)
        return BatchView(count=len(results), anomalies=anomalies, results=results)

    @app.post(
        "/api/v1/predict/{series_id}",
        response_model=PredictionView,
        response_model_exclude_unset=True,
    )
    def predict(series_id: str, body: Reading, request: Request) -> PredictionView:
        serving: FakeServing = request.app.state.serving
        fetched = fetch_misses(serving, [series_id])
        (stale,) = stale_in_batch(
            request.app.state.newest, serving, [(series_id, body.timestamp, body.value)]
        )
        return prediction(
            serving, series_id, body.timestamp, body.value, fetched, stale=stale
        )

    return app


def fetch_misses(serving: FakeServing, series_ids: list[str]) -> dict[str, Source]:
    """Look up, once per request, the series the table does not know."""
    unknown = {s for s in series_ids if s not in serving.table.index}
    due = serving.due_lookups(unknown)
    return serving.look_up(due) if due else {}


def stale_in_batch(
    newest: dict[str, float],
    serving: FakeServing,
    readings: list[tuple[str, float, float]],
) -> list[bool]:
    """Per reading of a series the table knows: not after the newest reading of
    its series before the request, or a second one at a time the request
    already gave; `newest` then moves on to the request's newest."""
    stale, seen = [], set()
    for series_id, timestamp, _ in readings:
        known = series_id in serving.table.index
        before = newest.get(series_id, -math.inf)
        stale.append(known and (timestamp <= before or (series_id, timestamp) in seen))
        seen.add((series_id, timestamp))
    for series_id, timestamp, _ in readings:
        if series_id in serving.table.index:
            newest[series_id] = max(newest.get(series_id, -math.inf), timestamp)
    return stale


def prediction(
    serving: FakeServing,
    series_id: str,
    timestamp: float,
    value: float,
    fetched: Mapping[str, Source],
    *,
    stale: bool,
) -> PredictionView:
    _row, record, expected, width = serving.table.record(series_id, timestamp)
    score = abs(value - expected) / width
    anomaly = score > 1.0
    known = math.isfinite(width)
    if record.tier == Tier.MODEL:
        source = fetched.get(series_id, Source(record.source))
        info = ModelInfo(
            version=record.version,
            stage="production",
            type=ALGORITHMS[record.algorithm],
            loaded_from=LOADED_FROM[source],
            role="production",
        )
    elif record.tier == Tier.HISTORY:
        info = ModelInfo(
            version=None, stage=None, type="zscore", loaded_from="history", role=None
        )
    else:
        info = ModelInfo(
            version=None, stage=None, type="default", loaded_from="default", role=None
        )
    unknown = series_id not in serving.table.index
    streaming = (
        record.tier == Tier.MODEL and ALGORITHMS[record.algorithm] in STREAM_FAMILIES
    )
    return PredictionView(
        series_id=series_id,
        timestamp=timestamp,
        anomaly=anomaly,
        anomaly_score=score,
        expected=expected if known else None,
        lower=expected - width if known else None,
        upper=expected + width if known else None,
        direction=("above" if value > expected else "below") if anomaly else None,
        reason=("outside_seasonal_band" if record.phases else "outside_band")
        if anomaly
        else None,
        model_info=info,
        confidence="high" if record.tier == Tier.MODEL else "low",
        stale=stale,
        # A streaming model without a packed state stays cold: its band answers.
        state="cold" if streaming else None,
        **({"warning": UNKNOWN_SERIES_WARNING} if unknown else {}),
    )


def columns_view(results: list[PredictionView]) -> ColumnsView:
    columns: dict[str, Any] = {
        "count": len(results),
        "anomalies": sum(r.anomaly for r in results),
    }
    for field in (
        "series_id", "timestamp", "anomaly", "anomaly_score", "expected", "lower",
        "upper", "direction", "reason", "confidence", "stale", "state",
    ):  # fmt: skip
        columns[field] = [getattr(r, field) for r in results]
    for field in ("version", "stage", "type", "loaded_from", "role"):
        columns[field] = [getattr(r.model_info, field) for r in results]
    if any(r.warning for r in results):
        columns["warning"] = [r.warning for r in results]
    return ColumnsView(**columns)


@dataclass
class Apps:
    """The inference service and the reference, served the same fleet."""

    fast: TestClient
    headers: Headers
    reference: FastAPI

    def serve(self, fleet: list[Series]) -> list[str]:
        """Serve `fleet` alike in both, afresh; returns its series ids."""
        ids = [f"s{i}" for i in range(len(fleet))]
        self.fast.app_state["predictor"] = serving_of(fleet, ids)
        self.reference.state.serving = serving_of(fleet, ids)
        self.reference.state.newest = {}
        return ids

    def answers(self, path: str, body: dict[str, Any]) -> tuple[Any, Any]:
        """(the fast answer, the reference's) to the same request."""
        answers = []
        for client in (self.fast, TestClient(self.reference)):
            response = client.post(path, json=body, headers=self.headers)
            assert response.status_code == 200, response.text
            answers.append(response.json())
        return answers[0], answers[1]


def serving_of(fleet: list[Series], ids: list[str]) -> FakeServing:
    table, elsewhere = ModelTable(), {}
    for series_id, drawn in zip(ids, fleet, strict=True):
        if drawn.history is not None:
            mean, std = drawn.history
            table.set_history([series_id], np.array([mean]), np.array([std]))
        if drawn.model is not None:
            model = ServedModel(series_id, *drawn.model)
            if drawn.source in ELSEWHERE:
                elsewhere[series_id] = (model, drawn.source)
            else:
                table.set_models([model], drawn.source)
    return FakeServing(table, elsewhere)


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Apps]:
    home = tmp_path_factory.mktemp("inference")
    settings = Settings(
        home=home, database_url=f"sqlite:///{home}/atalaia.db", log_json=False
    )
    upgrade_database(settings.database_url)  # a service that loads at start
    with TestClient(create_app(settings)) as fast:
        yield Apps(fast, bearer(settings, Role.VIEWER), reference_app())


def documented(view: type[BaseModel], answer: Mapping[str, Any]) -> bool:
    """Every field of an answer is one its view documents (views allow extras)."""
    return set(answer) <= set(view.model_fields)


@settings(max_examples=60)
@given(fleets)
def test_single_readings_are_answered_as_the_reference_does(
    apps: Apps, drawn: Drawn
) -> None:
    fleet, readings = drawn
    ids = apps.serve(fleet)

    for i, timestamp, value in readings:
        body = {"timestamp": timestamp, "value": value}
        fast, reference = apps.answers(f"/api/v1/predict/{ids[i]}", body)

        assert documented(PredictionView, fast)
        assert documented(ModelInfo, fast["model_info"])
        PredictionView.model_validate(fast)
        assert fast == reference


@pytest.mark.parametrize("columnar", [False, True], ids=["rows", "columns"])
@settings(max_examples=60)
@given(fleets)
def test_batches_are_answered_as_the_reference_does(
    apps: Apps, columnar: bool, drawn: Drawn
) -> None:
    fleet, readings = drawn
    ids = apps.serve(fleet)
    points = [{"series_id": ids[i], "timestamp": t, "value": v} for i, t, v in readings]
    body: dict[str, Any] = {"points": points}
    if columnar:
        body = {key: [p[key] for p in points] for key in points[0]}

    fast, reference = apps.answers("/api/v1/predict/batch", body)

    if columnar:
        assert documented(ColumnsView, fast)
        ColumnsView.model_validate(fast)
    else:
        assert set(fast) == set(BatchView.model_fields)
        assert all(documented(PredictionView, r) for r in fast["results"])
        BatchView.model_validate(fast)
    assert fast == reference
