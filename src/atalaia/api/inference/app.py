"""The inference service (port 8001): every served model in memory, never down."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry

from atalaia.adapters.cache import ModelCache, NoticeListener
from atalaia.adapters.db.serving import DatabaseServingStore
from atalaia.api.common.app import NOT_READY, build_app
from atalaia.api.common.resources import Resources
from atalaia.api.common.state import state_as
from atalaia.api.inference.ingest_routes import router as ingest_router
from atalaia.api.inference.metrics import ServingMetrics
from atalaia.api.inference.routes import FAST_ROUTES, router
from atalaia.api.inference.sensor_routes import router as sensor_router
from atalaia.api.inference.state import ServingState
from atalaia.services.inference import Predictor
from atalaia.services.inference.heavy import HeavyModels
from atalaia.settings import Settings, load_settings

probe_router = APIRouter(tags=["probes"])


@probe_router.get("/liveness")
async def liveness() -> dict[str, str]:
    """Kubernetes-style liveness probe."""
    return {"status": "alive"}


@probe_router.get("/readiness", responses=NOT_READY)
async def readiness(request: Request) -> JSONResponse:
    """Ready once a model table is loaded (from the registry or the snapshot)."""
    state = state_as(ServingState, request)
    predictor = state["predictor"]
    ready = predictor.loaded_from != "nothing"
    body = {
        "status": "ready" if ready else "not_ready",
        "models": len(predictor.table),
        "loaded_from": predictor.loaded_from,
        "database": "up" if predictor.database_ok else "down",
        "notices": _notices_state(state["notices"]),
    }
    return JSONResponse(body, status_code=200 if ready else 503)


def _notices_state(listener: NoticeListener | None) -> str:
    if listener is None:
        return "off (no Redis)"
    return "subscribed" if listener.subscribed.is_set() else "down"


def routers() -> list[APIRouter]:
    return [router, sensor_router, ingest_router, probe_router]


@asynccontextmanager
async def model_serving(
    resources: Resources, registry: CollectorRegistry
) -> AsyncIterator[ServingState]:
    """Warm-load every production model, then follow the registry: its notices
    over Redis (when configured) and its change feed in the database."""
    settings = resources.settings
    redis = resources.redis
    ttl_s = settings.redis_model_ttl_s
    cache = ModelCache(redis, ttl_s=ttl_s) if redis is not None else None
    predictor = Predictor(
        DatabaseServingStore(resources.sessions),
        snapshot_path=settings.snapshot_path,
        poll_s=settings.inference_feed_poll_s,
        retry_s=settings.inference_db_retry_s,
        flush_s=settings.inference_stats_flush_s,
        signals_s=settings.incident_flush_s,
        resolve_after=settings.incident_resolve_after,
        incidents=settings.incidents_enabled,
        cache=cache,
        heavy=HeavyModels(
            load=resources.artifacts.get,
            budget_bytes=int(settings.inference_model_memory_mb * 2**20),
        ),
    )
    metrics = ServingMetrics(registry, predictor)
    await run_in_threadpool(predictor.warm_load)
    # The table's ids are never garbage: keep the collector from walking them
    # (a full collection during a 10,000-reading batch otherwise doubles its cost).
    gc.freeze()
    predictor.start_following()
    listener = (
        NoticeListener(redis, predictor.apply_notice) if redis is not None else None
    )
    if listener is not None:
        await run_in_threadpool(listener.start)
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
        yield ServingState(
            predictor=predictor,
            serving_metrics=metrics,
            notices=listener,
            reject_unknown=settings.unknown_series == "reject",
        )
    finally:
        if listener is not None:
            await run_in_threadpool(listener.stop)
        predictor.stop()
        await run_in_threadpool(predictor.save_snapshot)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    return build_app(
        name="inference",
        settings=settings,
        routers=routers(),
        fast_routes=FAST_ROUTES,
        parts=[model_serving],
    )
