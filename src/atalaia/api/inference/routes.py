"""Prediction routes (the hot path) and the admin reloads.

The prediction endpoints are bare ASGI endpoints (see `FastRoute`): they parse
with msgspec, authorize from a cache of verified tokens, score through the data
plane (`services.inference.data_plane`: in memory on the event loop; a series
unknown to the table is read from Redis or the database in a worker thread, at
most once a minute per series), count and shape the answer.

A series with no model and no history (unknown to the table, e.g. a mistyped
id) is answered with the default and a warning, or refused with 404 when the
request asks `?unknown=reject` or the service is set so (ATALAIA_UNKNOWN_SERIES).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.types import Scope

from atalaia.api.common.auth import Role
from atalaia.api.common.deps import (
    Admin,
    FleetAdmin,
    authorize,
    check_query_names,
    guard_batch,
)
from atalaia.api.common.fast_routes import FastRoute
from atalaia.api.common.openapi import error_responses
from atalaia.api.common.params import SeriesId
from atalaia.api.common.state import state_as
from atalaia.api.inference import answers
from atalaia.api.inference.bodies import parse_batch, parse_reading
from atalaia.api.inference.schemas import (
    BatchBody,
    BatchView,
    ColumnsBody,
    ColumnsView,
    PredictionView,
    Reading,
)
from atalaia.api.inference.state import InferenceState, ServingState
from atalaia.core.series import check_series_id, check_value, check_values
from atalaia.errors import (
    DependencyUnavailable,
    InvalidInput,
    PermissionDenied,
    SeriesNotFound,
    UnknownSeries,
)
from atalaia.services.inference import data_plane

router = APIRouter(tags=["inference"])


_encode = msgspec.json.Encoder().encode


async def predict(scope: Scope, body: bytes) -> bytes:
    """Is this reading an anomaly? Answered from memory, with a fallback chain:
    production model → model read from Redis → from the database → on-disk
    snapshot → the series' history (low confidence) → a default (no anomaly, low
    confidence, and a `warning` when the series is unknown; `?unknown=reject`:
    404 instead)."""
    started = time.perf_counter()
    state: InferenceState = scope["state"]
    await authorize(scope, Role.VIEWER)
    reject_unknown = _rejects_unknown(state, scope)
    series_id = check_series_id(scope["path_params"]["series_id"])
    timestamp, value = parse_reading(body)
    state["resources"].time_range.check_one(timestamp)
    check_value(value)
    scored = await data_plane.score_one_async(
        state["predictor"], series_id, timestamp, value
    )
    if not scored.known:
        _on_unknown(state, [series_id], reject=reject_unknown)
    metrics = state["serving_metrics"]
    metrics.one(scored.table, scored.row, series_id, scored.anomaly, started)
    state["predictor"].signals.one(series_id, timestamp, value, scored)
    return _encode(answers.reading_answer(series_id, timestamp, value, scored))


async def predict_batch(scope: Scope, body: bytes) -> bytes:
    """Score up to 100,000 readings of many series in one vectorized pass.

    Send the row form (`points`, answered with one object per reading) or the
    columnar form (`series_id`, `timestamp`, `value` arrays, answered with one
    array per field): the columnar form is several times cheaper. Readings of
    unknown series carry a `warning`; `?unknown=reject`: 404 naming them."""
    started = time.perf_counter()
    state: InferenceState = scope["state"]
    principal = await authorize(scope, Role.VIEWER)
    reject_unknown = _rejects_unknown(state, scope)
    batch = parse_batch(body)
    guard_batch(state["resources"], principal, batch.series_ids)
    state["resources"].time_range.check(batch.timestamps)
    check_values(batch.values)
    scored = await data_plane.score_batch_async(
        state["predictor"], batch.series_ids, batch.timestamps, batch.values
    )
    if scored.unknown:
        _on_unknown(state, scored.unknown, reject=reject_unknown)
    shape = answers.columns_answer if batch.columnar else answers.rows_answer
    answer = shape(
        batch.series_ids, batch.timestamps, batch.values, scored.scores,
        scored.fetched,
    )  # fmt: skip
    metrics = state["serving_metrics"]
    metrics.batch(batch.series_ids, scored.scores, started)
    state["predictor"].signals.many(
        batch.series_ids, batch.timestamps, batch.values, scored.scores
    )
    return answers.encode_columns(answer) if batch.columnar else _encode(answer)


_POLICIES = {"default": False, "reject": True}  # ?unknown= → refuse unknown series
_UNKNOWN_QUERY: dict[str, Any] = {
    "name": "unknown",
    "in": "query",
    "required": False,
    "schema": {"enum": list(_POLICIES)},
    "description": "A series with no model and no history: answered with the "
    "default and a warning, or refused with 404 (default: ATALAIA_UNKNOWN_SERIES)",
}


def _rejects_unknown(state: ServingState, scope: Scope) -> bool:
    """Whether to refuse unknown series: `?unknown=`, else the service's setting."""
    query: bytes = scope["query_string"]
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True) if query else []
    check_query_names((key for key, _ in pairs), ("unknown",))
    for key, value in pairs:
        if key == "unknown":
            if value not in _POLICIES:
                raise InvalidInput(
                    f"query: unknown must be one of {', '.join(_POLICIES)}, "
                    f"not {value[:40]!r}",
                    rule="unknown_series_policy",
                )
            return _POLICIES[value]
    return state["reject_unknown"]


def _on_unknown(state: ServingState, readings: Sequence[str], *, reject: bool) -> None:
    """Count the readings of unknown series; refuse them if asked to."""
    state["serving_metrics"].unknown_series(len(readings))
    if reject:
        raise UnknownSeries(sorted(set(readings)))


# /predict/batch first: it would match /predict/{series_id} too.
FAST_ROUTES = [
    FastRoute(
        "/predict/batch", predict_batch, "Predict a batch of readings",
        (BatchBody, ColumnsBody), (BatchView, ColumnsView), "inference",
        (_UNKNOWN_QUERY,), (UnknownSeries, PermissionDenied), compressed=True,
    ),
    FastRoute(
        "/predict/{series_id}", predict, "Predict one reading",
        (Reading,), (PredictionView,), "inference",
        (_UNKNOWN_QUERY,), (UnknownSeries, SeriesNotFound),
    ),
]  # fmt: skip


@router.post(
    "/admin/reload/{series_id}", responses=error_responses(DependencyUnavailable)
)
async def reload_series(
    series_id: SeriesId, request: Request, _: Admin
) -> dict[str, Any]:
    """Re-read one series' production model from the registry now."""
    predictor = state_as(ServingState, request)["predictor"]
    await run_in_threadpool(_or_unavailable, predictor.reload_series, [series_id])
    model = predictor.table.model_of(series_id)
    return {"series_id": series_id, "version": model.version if model else None}


@router.post("/admin/reload", responses=error_responses(DependencyUnavailable))
async def reload_all(request: Request, _: FleetAdmin) -> dict[str, Any]:
    """Re-load every production model from the registry now."""
    predictor = state_as(ServingState, request)["predictor"]
    await run_in_threadpool(_or_unavailable, predictor.reload_all)
    return {"models": len(predictor.table), "loaded_from": predictor.loaded_from}


def _or_unavailable(fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except Exception as exc:
        raise DependencyUnavailable("database", type(exc).__name__) from exc
