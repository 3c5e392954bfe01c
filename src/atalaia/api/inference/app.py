"""The inference service (port 8001): every served model in memory, never down."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from atalaia.api.common.app import build_app
from atalaia.api.common.resources import Resources
from atalaia.api.inference.routes import router
from atalaia.services.inference import Prediction, Predictor
from atalaia.settings import Settings, load_settings

probe_router = APIRouter(tags=["probes"])


@probe_router.get("/liveness")
async def liveness() -> dict[str, str]:
    """Kubernetes-style liveness probe."""
    return {"status": "alive"}


@probe_router.get("/readiness")
async def readiness(request: Request) -> JSONResponse:
    """Ready once a model table is loaded (from the registry or the snapshot)."""
    predictor: Predictor = request.state.predictor
    ready = predictor.loaded_from != "nothing"
    body = {
        "status": "ready" if ready else "not_ready",
        "models": len(predictor.table),
        "loaded_from": predictor.loaded_from,
        "database": "up" if predictor.database_ok else "down",
    }
    return JSONResponse(body, status_code=200 if ready else 503)


def routers() -> list[APIRouter]:
    return [router, probe_router]


def _metrics(registry: CollectorRegistry, predictor: Predictor) -> Any:
    predictions = Counter(
        "anomaly_predictions",
        "Readings scored, by the stage that answered and the verdict",
        ["stage", "anomaly"],
        registry=registry,
    )
    load = Histogram(
        "model_load_duration_seconds",
        "Time to load the model table",
        ["source"],
        buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30),
        registry=registry,
    )
    Gauge(
        "models_loaded", "Production models in memory", registry=registry
    ).set_function(lambda: len(predictor.table))
    hits = Tally[str]()
    Gauge(
        "model_cache_hit_rate",
        "Share of readings answered by a production model held in memory",
        registry=registry,
    ).set_function(lambda: hits["model"] / max(1, hits["model"] + hits["fallback"]))

    def record(batch: list[Prediction]) -> None:
        tally = Tally((p.model_info["stage"] or "fallback", p.anomaly) for p in batch)
        for (stage, anomaly), n in tally.items():
            predictions.labels(stage, str(anomaly).lower()).inc(n)
            hits["model" if stage == "production" else "fallback"] += n

    predictor.on_load = lambda source, seconds: load.labels(source).observe(seconds)
    return record


@asynccontextmanager
async def model_serving(
    resources: Resources, registry: CollectorRegistry
) -> AsyncIterator[dict[str, Any]]:
    """Warm-load every production model, then follow the registry's change feed."""
    settings = resources.settings
    predictor = Predictor(
        resources.sessions,
        snapshot_path=settings.snapshot_path,
        poll_s=settings.inference_feed_poll_s,
        retry_s=settings.inference_db_retry_s,
        flush_s=settings.inference_stats_flush_s,
    )
    record = _metrics(registry, predictor)
    await run_in_threadpool(predictor.warm_load)
    predictor.start_following()
    # Serving goes on without the database, so it does not make us unready.
    resources.ready_checks["database"] = lambda: (
        True,
        "up" if predictor.database_ok else "down: serving from memory",
    )
    resources.ready_checks["models"] = lambda: (
        predictor.loaded_from != "nothing",
        f"{len(predictor.table)} models from {predictor.loaded_from}",
    )
    try:
        yield {"predictor": predictor, "record_predictions": record}
    finally:
        predictor.stop()
        await run_in_threadpool(predictor.save_snapshot)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    return build_app(
        name="inference", settings=settings, routers=routers(), parts=[model_serving]
    )
