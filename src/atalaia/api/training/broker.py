"""Training jobs through a Celery broker: publish them, and publish again the lost.

The training service only publishes; `atalaia worker` processes run the jobs.
A job whose chunk could not be published (the broker was down), or whose
publisher died before publishing, stays queued in the jobs table: a sweeper
publishes it again once the broker's queue is empty and the job is older than
`redispatch_after_s`. While chunks wait in the broker the queued jobs may be
among them, so they are left alone; a job running for longer than
`stuck_job_after_s` is published again in any case.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import structlog
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CollectorRegistry, Gauge

from atalaia.adapters.db.repositories import JobStore
from atalaia.adapters.queue.celery_app import create_celery
from atalaia.adapters.queue.celery_queue import CeleryJobQueue
from atalaia.adapters.queue.sweeper import Sweeper
from atalaia.api.common.resources import Resources
from atalaia.api.training.state import JobsState

log = structlog.get_logger()

MIN_SWEEP_EVERY_S, MAX_SWEEP_EVERY_S = 0.25, 60.0


def redispatch_stale_jobs(resources: Resources, job_queue: CeleryJobQueue) -> int:
    """Publish the jobs presumed lost again; returns how many."""
    waiting = job_queue.depth()
    if waiting is None:  # nothing can be published now: next sweep
        return 0
    settings = resources.settings
    now = datetime.now(UTC)
    queued_before = None
    if waiting == 0:
        queued_before = now - timedelta(seconds=settings.redispatch_after_s)
    with resources.sessions() as session:
        stale = JobStore(session).stale(
            queued_before=queued_before,
            started_before=now - timedelta(seconds=settings.stuck_job_after_s),
        )
    if stale:
        job_queue.dispatch_many(stale)
        log.info("training.jobs_redispatched", jobs=len(stale))
    return len(stale)


def sweep_interval_s(resources: Resources) -> float:
    """A third of the shorter bound, so a lost job waits at most a third longer."""
    settings = resources.settings
    bound = min(settings.redispatch_after_s, settings.stuck_job_after_s)
    return min(MAX_SWEEP_EVERY_S, max(MIN_SWEEP_EVERY_S, bound / 3))


@asynccontextmanager
async def celery_dispatch(
    resources: Resources, registry: CollectorRegistry
) -> AsyncIterator[JobsState]:
    """Publish training jobs to the broker; sweep for the lost ones meanwhile."""
    settings = resources.settings
    assert settings.broker_url is not None  # chosen by the caller for that
    app = create_celery(settings.broker_url, queue=settings.training_queue)
    job_queue = CeleryJobQueue(app, queue=settings.training_queue)
    broker = urlsplit(settings.broker_url).scheme  # no credentials in details

    def waiting() -> float:
        depth = job_queue.depth()
        return math.nan if depth is None else depth

    def check() -> tuple[bool, str]:
        # Jobs are accepted while the broker is down: degraded, still ready.
        depth = job_queue.depth()
        if depth is None:
            return True, f"degraded: {broker} unreachable, jobs wait queued"
        return True, f"{broker}, {depth} chunks waiting"

    Gauge(
        "training_queue_depth",
        "Training chunks waiting in the broker (NaN: broker unreachable)",
        registry=registry,
    ).set_function(waiting)
    sweeper = Sweeper(
        lambda: redispatch_stale_jobs(resources, job_queue),
        every_s=sweep_interval_s(resources),
    )
    sweeper.start()
    resources.ready_checks["broker"] = check
    resources.ready_checks["sweeper"] = lambda: (sweeper.alive(), "lost jobs")
    try:
        yield JobsState(job_queue=job_queue, write_turns=None)
    finally:
        await run_in_threadpool(sweeper.stop)
        app.close()
