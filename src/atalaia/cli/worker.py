"""`atalaia worker`: run training jobs from the broker at ATALAIA_BROKER_URL."""

from __future__ import annotations

from typing import Annotated

import typer

from atalaia.cli.db import require_schema
from atalaia.settings import load_settings


def worker(
    concurrency: Annotated[
        int, typer.Option(min=1, help="Chunks run at once, each in its own process.")
    ] = 1,
    loglevel: Annotated[
        str | None, typer.Option(help="Log level (default: ATALAIA_LOG_LEVEL).")
    ] = None,
) -> None:
    """Consume training jobs from the queue (needs ATALAIA_BROKER_URL)."""
    settings = load_settings()
    if not settings.broker_url:
        typer.echo(
            "atalaia worker needs a broker: set ATALAIA_BROKER_URL "
            "(amqp://user:password@host:5672// or redis://host:6379/0); without "
            "one, the training service runs jobs in its own executor",
            err=True,
        )
        raise typer.Exit(2)
    from atalaia.worker import run_worker  # Celery loads only for a worker

    require_schema(settings.database_url)  # fails in one line, before any log line

    typer.echo(
        f"atalaia worker on queue {settings.training_queue} "
        f"(concurrency {concurrency})",
        err=True,
    )
    raise typer.Exit(
        run_worker(
            settings,
            concurrency=concurrency,
            loglevel=(loglevel or settings.log_level).upper(),
        )
    )
