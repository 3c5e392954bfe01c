"""The training service (port 8000): jobs, registry, series data, feedback."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import partial

from fastapi import APIRouter, FastAPI
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session

from atalaia.adapters.cache import ModelCache
from atalaia.adapters.db.repositories import JobStore
from atalaia.adapters.db.write_turns import WriteTurns
from atalaia.adapters.queue import InProcessExecutor
from atalaia.api.common.app import build_app
from atalaia.api.common.resources import Resources
from atalaia.api.training.broker import celery_dispatch
from atalaia.api.training.metrics import RegistryFigures, StageMoves, WalArchive
from atalaia.api.training.routes import (
    alerts,
    anomalies,
    assets,
    audit,
    feedback,
    fleet,
    healing,
    incidents,
    maps,
    models,
    operations,
    quality,
    report_files,
    reports,
    rollouts,
    series,
    session,
    training,
    uploads,
)
from atalaia.api.training.routes.uploads import SPOOL_FOLDER
from atalaia.api.training.state import FleetState, JobsState
from atalaia.errors import DependencyUnavailable
from atalaia.services import fleet_grid
from atalaia.services.fleet import GroupRates
from atalaia.services.operation_runner import OperationRunner
from atalaia.services.training import run_training_chunk
from atalaia.services.upload_runner import UploadRunner
from atalaia.settings import Settings, load_settings

BACKGROUND_NICENESS = 10
GROUP_RATES_TTL_S = 15.0


def routers() -> list[APIRouter]:
    return [
        training.router,
        models.router,
        operations.router,
        assets.router,
        maps.sensors_router,
        maps.sites_router,
        rollouts.router,
        series.router,
        quality.series_router,
        quality.sensors_router,
        feedback.router,
        anomalies.router,
        incidents.router,
        fleet.router,
        alerts.router,
        healing.router,
        reports.router,
        report_files.router,
        session.router,
        uploads.router,
        audit.router,
    ]


@asynccontextmanager
async def job_executor(
    resources: Resources, registry: CollectorRegistry
) -> AsyncIterator[JobsState]:
    """Hand training jobs to the Celery broker when one is set, else run them
    here; run fleet operations here (`operation_runner`)."""
    part = celery_dispatch if resources.settings.broker_url else in_process_executor
    # Counted from the database: jobs fail and versions are registered wherever
    # training runs (this process's executor, a worker's).
    registry.register(FailedJobs(resources.sessions))
    registry.register(RegistryFigures(resources.sessions))
    registry.register(StageMoves(resources.sessions))
    registry.register(WalArchive(resources.sessions))
    async with (
        part(resources, registry) as state,
        operation_runner(resources, state["write_turns"]),
        upload_runner(resources, state["write_turns"]),
    ):
        yield state


@asynccontextmanager
async def operation_runner(
    resources: Resources, turns: WriteTurns | None
) -> AsyncIterator[OperationRunner]:
    """Run fleet operations on a thread of this process: each replica claims
    operations from the database, and takes over one whose runner died. On
    SQLite, its writes take their turn behind the API's requests."""
    sessions = (
        turns.background_sessions(resources.engine) if turns else resources.sessions
    )
    redis = resources.redis
    ttl_s = resources.settings.redis_model_ttl_s
    cache = ModelCache(redis, ttl_s=ttl_s) if redis is not None else None
    runner = OperationRunner(sessions, cache=cache)
    runner.start()
    try:
        yield runner
    finally:
        await run_in_threadpool(runner.stop)


@asynccontextmanager
async def upload_runner(
    resources: Resources, turns: WriteTurns | None
) -> AsyncIterator[UploadRunner]:
    """Ingest uploaded files on a thread of this process (each replica its
    own uploads); on SQLite, behind the API's requests."""
    sessions = (
        turns.background_sessions(resources.engine) if turns else resources.sessions
    )
    runner = UploadRunner(
        sessions,
        artifacts=resources.artifacts,
        spool_dir=resources.settings.home / SPOOL_FOLDER,
        time_range=resources.time_range,
    )
    runner.start()
    try:
        yield runner
    finally:
        await run_in_threadpool(runner.stop)


class FailedJobs(Collector):
    """`training_jobs_failed_total`: the jobs that ended failed, read from the
    jobs table when scraped (nothing while the database is down)."""

    def __init__(self, sessions: Callable[[], AbstractContextManager[Session]]) -> None:
        self._sessions = sessions

    def collect(self) -> Iterator[Metric]:
        try:
            with self._sessions() as session:
                failed = JobStore(session).failed_count()
        except DependencyUnavailable:
            return
        yield CounterMetricFamily(
            "training_jobs_failed",
            "Training jobs that ended failed (invalid data, or the training crashed)",
            value=failed,
        )


@asynccontextmanager
async def in_process_executor(
    resources: Resources, registry: CollectorRegistry
) -> AsyncIterator[JobsState]:
    """Run training jobs on threads of this process; resume the unfinished ones.

    A sweeper re-dispatches queued jobs this process does not hold and running
    ones older than `stuck_job_after_s` (their run died, e.g. on a DB outage).
    On SQLite (the embedded platform) the API's requests go first: jobs write in
    turns behind them (`WriteTurns`) and their threads run at a lower priority.
    """
    settings = resources.settings
    turns = WriteTurns() if resources.engine.dialect.name == "sqlite" else None
    sessions = (
        turns.background_sessions(resources.engine) if turns else resources.sessions
    )
    run = partial(run_training_chunk, sessions=sessions, artifacts=resources.artifacts)

    def orphans() -> list[str]:
        stuck = datetime.now(UTC) - timedelta(seconds=settings.stuck_job_after_s)
        with resources.sessions() as session:
            return JobStore(session).unfinished(started_before=stuck)

    executor = InProcessExecutor(
        run,
        threads=settings.training_threads,
        niceness=BACKGROUND_NICENESS if turns else 0,
        find_orphans=orphans,
        sweep_every_s=min(60.0, settings.stuck_job_after_s / 4),
    )
    Gauge(
        "training_queue_depth",
        "Training jobs waiting for an executor",
        registry=registry,
    ).set_function(executor.depth)

    def pending() -> list[str]:
        with resources.sessions() as session:
            return JobStore(session).unfinished()

    executor.start(await run_in_threadpool(pending))
    resources.ready_checks["executor"] = lambda: (executor.alive(), "in-process")
    try:
        yield JobsState(job_queue=executor, write_turns=turns)
    finally:
        await run_in_threadpool(executor.stop)


@asynccontextmanager
async def fleet_figures(
    resources: Resources, _registry: CollectorRegistry
) -> AsyncIterator[FleetState]:
    """The sensor groups' anomaly rates, read at most every GROUP_RATES_TTL_S,
    and the fleet's grid, at most every `fleet_grid.TTL_S`."""
    settings = resources.settings
    grids = fleet_grid.FleetGrids(
        resources.sessions,
        ttl_s=fleet_grid.TTL_S,
        max_age_s=fleet_grid.MAX_AGE_S,
        anomaly_window_s=settings.incident_gap_s,
        stale_after_s=settings.fleet_stale_after_s,
    )
    # Beside start-up: a fleet's first grid read is twice a kept one's.
    preparing = threading.Thread(target=grids.prepare, name="atalaia-fleet-grid")
    preparing.start()
    try:
        yield FleetState(
            group_rates=GroupRates(resources.sessions, ttl_s=GROUP_RATES_TTL_S),
            fleet_grids=grids,
        )
    finally:
        await run_in_threadpool(preparing.join)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    return build_app(
        name="training",
        settings=settings,
        routers=routers(),
        parts=[job_executor, fleet_figures],
        migrate=True,
        console=True,
    )
