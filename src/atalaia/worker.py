"""The queue worker: Celery running the training chunks the training API publishes.

Each chunk runs `run_training_chunk`, so a worker keeps every guarantee of the
embedded executor: a chunk delivered twice registers one version per job, a job
cancelled meanwhile is skipped, and a job left running by a dead worker is
claimed again when its chunk comes back.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Sequence
from functools import partial

import structlog
from celery import Celery
from celery.signals import worker_process_shutdown

from atalaia.adapters.db.engine import (
    engine_for,
    make_session_factory,
)
from atalaia.adapters.queue.celery_app import RUN_CHUNK, create_celery
from atalaia.adapters.storage import artifact_store_for
from atalaia.logging import configure_logging
from atalaia.services.training import run_training_chunk
from atalaia.services.training_chunk import Outcome
from atalaia.settings import Settings
from atalaia.tracing import configure_tracing, flush

log = structlog.get_logger()

Run = Callable[[Sequence[str]], Outcome]


class ProcessRunner:
    """`run_training_chunk` on the database and artifact store of this process.

    They are opened on the first chunk a process runs, so each child of a
    prefork pool has its own connections (a connection must not cross a fork).
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._opened: tuple[int, Run] | None = None

    def __call__(self, job_ids: Sequence[str]) -> Outcome:
        with self._lock:
            if self._opened is None or self._opened[0] != os.getpid():
                self._opened = (os.getpid(), self._open())
            run = self._opened[1]
        return run(job_ids)

    def _open(self) -> Run:
        engine = engine_for(self._settings, serving=False)
        return partial(
            run_training_chunk,
            sessions=make_session_factory(engine),
            artifacts=artifact_store_for(self._settings),
        )


def create_worker_app(settings: Settings) -> Celery:
    """The Celery app of `settings`' broker, with the training task registered."""
    if not settings.broker_url:
        raise ValueError("a worker needs ATALAIA_BROKER_URL")
    app = create_celery(settings.broker_url, queue=settings.training_queue)
    runner = ProcessRunner(settings)

    @app.task(name=RUN_CHUNK)
    def run_chunk(job_ids: list[str]) -> None:
        outcome = runner(job_ids)
        registered = sum(1 for version in outcome.values() if version is not None)
        log.info("worker.chunk_done", jobs=len(job_ids), with_version=registered)

    return app


def run_worker(settings: Settings, *, concurrency: int, loglevel: str) -> int:
    """Consume the training queue until told to stop; returns the exit code.

    `concurrency` chunks run at once, each in its own process (prefork pool).
    """
    configure_logging(level=loglevel, json=settings.log_json)
    if configure_tracing("worker"):
        # A pool process exports its last spans before it exits.
        worker_process_shutdown.connect(lambda **_: flush(), weak=False)
    app = create_worker_app(settings)
    worker = app.Worker(
        hostname=f"atalaia-{os.getpid()}@{socket.gethostname()}",
        queues=[settings.training_queue],
        concurrency=concurrency,
        pool_cls="prefork",
        loglevel=loglevel,
        without_mingle=True,
        without_gossip=True,
        without_heartbeat=True,
    )
    log.info("worker.starting", queue=settings.training_queue, concurrency=concurrency)
    worker.start()
    return int(worker.exitcode or 0)
