"""Prediction routes and the admin reloads."""

from __future__ import annotations

import time
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from atalaia.api.common.deps import Admin, Viewer
from atalaia.api.inference.schemas import BatchBody, BatchView, PredictionView, Reading
from atalaia.core.series import check_series_id
from atalaia.errors import DependencyUnavailable
from atalaia.services.inference import Prediction, Predictor

router = APIRouter(tags=["inference"])


def get_predictor(request: Request) -> Predictor:
    predictor: Predictor = request.state.predictor
    return predictor


PredictorDep = Annotated[Predictor, Depends(get_predictor)]


def _observe(
    request: Request,
    predictor: Predictor,
    predictions: list[Prediction],
    started: float,
) -> None:
    latency_ms = (time.perf_counter() - started) * 1000
    request.state.record_predictions(predictions)
    predictor.tally.add(
        [p.series_id for p in predictions], [p.anomaly for p in predictions], latency_ms
    )


@router.post("/predict/batch", response_model=BatchView)
async def predict_batch(
    body: BatchBody, request: Request, predictor: PredictorDep, _: Viewer
) -> dict[str, Any]:
    """Score up to 100,000 readings of many series in one vectorized pass."""
    started = time.perf_counter()
    points = body.points
    predictions = await run_in_threadpool(
        predictor.predict,
        [p.series_id for p in points],
        np.fromiter((p.timestamp for p in points), np.float64, len(points)),
        np.fromiter((p.value for p in points), np.float64, len(points)),
    )
    _observe(request, predictor, predictions, started)
    return {
        "count": len(predictions),
        "anomalies": sum(p.anomaly for p in predictions),
        "results": [p.as_dict() for p in predictions],
    }


@router.post("/predict/{series_id}", response_model=PredictionView)
async def predict(
    series_id: str, body: Reading, request: Request, predictor: PredictorDep, _: Viewer
) -> dict[str, Any]:
    """Is this reading an anomaly? Answered from memory, with a fallback chain."""
    started = time.perf_counter()
    check_series_id(series_id)
    [prediction] = await run_in_threadpool(
        predictor.predict,
        [series_id],
        np.array([body.timestamp]),
        np.array([body.value]),
    )
    _observe(request, predictor, [prediction], started)
    return prediction.as_dict()


@router.post("/admin/reload/{series_id}")
async def reload_series(
    series_id: str, predictor: PredictorDep, _: Admin
) -> dict[str, Any]:
    """Re-read one series' production model from the registry now."""
    await run_in_threadpool(_or_unavailable, predictor.reload_series, [series_id])
    model = predictor.table.model_of(series_id)
    return {"series_id": series_id, "version": model.version if model else None}


@router.post("/admin/reload")
async def reload_all(predictor: PredictorDep, _: Admin) -> dict[str, Any]:
    """Re-load every production model from the registry now."""
    await run_in_threadpool(_or_unavailable, predictor.reload_all)
    return {"models": len(predictor.table), "loaded_from": predictor.loaded_from}


def _or_unavailable(fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except Exception as exc:
        raise DependencyUnavailable("database", type(exc).__name__) from exc
