"""`atalaia scheduler`: weekly fleet retraining and drift checks, and the
alerter (incidents and notifications), one instance of each.

Jobs go through the training service's API at ATALAIA_TRAINING_URL (which
dispatches them through its own job queue), with short-lived tokens of the
`scheduler` subject signed with this installation's secret.
"""

from __future__ import annotations

import json
import signal
import threading
from functools import partial
from typing import TYPE_CHECKING, Annotated

import structlog
import typer

from atalaia.cli.failures import CommandFailed
from atalaia.core.schedule import Task

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from atalaia.api.common.auth import Authenticator
    from atalaia.scheduler import Scheduler

log = structlog.get_logger()

DEFAULT_METRICS_PORT = 8004
TOKEN_TTL_S = 3600.0
REQUEST_TIMEOUT_S = 300.0  # a batch of the whole fleet takes a while to accept


def scheduler(
    once: Annotated[
        Task | None,
        typer.Option("--once", help="Run this task now, print its report, exit."),
    ] = None,
    host: Annotated[str, typer.Option(help="Interface of /metrics.")] = "127.0.0.1",
    metrics_port: Annotated[
        int, typer.Option(help="Port of /metrics (Prometheus); 0: none.")
    ] = DEFAULT_METRICS_PORT,
) -> None:
    """Run the scheduled tasks until SIGTERM or SIGINT, one instance at a time."""
    # Imported here: every `atalaia` command (`serve` too) loads this module.
    import httpx
    from prometheus_client import CollectorRegistry, ProcessCollector

    from atalaia.adapters.db.engine import (
        engine_for,
        make_session_factory,
    )
    from atalaia.adapters.training_api import TrainingApiSubmitter
    from atalaia.api.common.resources import authenticator_for, redis_link_for
    from atalaia.cli.db import require_schema
    from atalaia.logging import configure_logging
    from atalaia.scheduler import build_alerter, build_scheduler, utcnow
    from atalaia.settings import load_settings
    from atalaia.tls import client_context
    from atalaia.tracing import configure_tracing

    settings = load_settings()
    # What the operator must fix fails in one line, before the first log line.
    require_schema(settings.database_url)
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)  # CPU, memory, open files
    if once is None and metrics_port:
        serve_metrics(host, metrics_port, registry)
    configure_logging(level=settings.log_level, json=settings.log_json)
    configure_tracing("scheduler")
    engine = engine_for(settings, serving=False)
    client = httpx.Client(
        base_url=settings.training_url,
        timeout=REQUEST_TIMEOUT_S,
        verify=client_context(settings),
    )
    try:
        submitter = TrainingApiSubmitter(
            client, token=partial(_token, authenticator_for(settings))
        )
        fleet = build_scheduler(
            settings,
            engine=engine,
            sessions=make_session_factory(engine),
            submitter=submitter,
            registry=registry,
            redis=redis_link_for(settings),
        )
        if once is not None:
            _run_once(fleet, once)
            return
        alerter = build_alerter(
            settings, engine=engine, sessions=make_session_factory(engine)
        )
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        log.info("scheduler.started", training_url=settings.training_url)
        alerter.start()
        try:
            fleet.run(stop, utcnow)
        finally:
            alerter.stop()
        log.info("scheduler.stopped")
    finally:
        client.close()
        engine.dispose()


def serve_metrics(host: str, port: int, registry: CollectorRegistry) -> None:
    """Export `registry` at http://host:port/metrics on a thread (`--metrics-port`)."""
    from prometheus_client import start_http_server

    from atalaia.cli.failures import port_failure

    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise port_failure(exc, host=host, port=port, option="--metrics-port") from None


_SWITCHES = {
    Task.WAVE: "ATALAIA_WEEKLY_WAVE to a policy",
    Task.ARCHIVE: "ATALAIA_HOT_DAYS to the days of readings the database keeps",
    Task.REPORT: "ATALAIA_REPORT_SUBSCRIPTIONS",
}


def _run_once(fleet: Scheduler, task: Task) -> None:
    """Run `task` and print its report as JSON; exit 1 when it failed."""
    from atalaia.scheduler import utcnow

    if task not in fleet.tasks:  # the weekly wave, the cold history, the reports
        setting = _SWITCHES.get(task, "its setting")
        raise CommandFailed(f"the {task.value} task is off: set {setting}")
    try:
        report = fleet.run_once(task, utcnow())
    except Exception:
        log.error("scheduler.task_failed", task=task.value, exc_info=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(report.detail()))
    if report.error:
        raise typer.Exit(1)


def _token(authenticator: Authenticator) -> str:
    from atalaia.api.common.auth import Role
    from atalaia.services.scheduler import ACTOR

    return authenticator.issue(
        subject=ACTOR, role=Role.DATA_SCIENTIST, ttl_s=TOKEN_TTL_S
    )
