"""`python -m bench <benchmark> [options]`: run one benchmark, print and record it."""

from __future__ import annotations

from typing import Annotated

import typer

from atalaia.logging import configure_logging
from bench import platform_bench, store_bench
from bench._report import report

app = typer.Typer(add_completion=False, no_args_is_help=True)
Record = Annotated[bool, typer.Option(help="Append the figures to bench/RESULTS.md.")]
Url = Annotated[
    str | None, typer.Option(help="Database URL (default: a fresh SQLite file).")
]


@app.command("train-accept")
def train_accept(
    requests: int = 50, points: int = 10_000, record: Record = True
) -> None:
    """POST /training with inline points: time to the 202, one request at a time."""
    report("train-accept", platform_bench.train_accept(requests, points), record=record)


@app.command("promote-visible")
def promote_visible(series: int = 20, record: Record = True) -> None:
    """Promotion answered → first prediction by the new version (embedded, SQLite)."""
    report("promote-visible", platform_bench.promote_visible(series), record=record)


@app.command("warm-load")
def warm_load(models: int = 285_000, url: Url = None, record: Record = True) -> None:
    """Load every production model of the registry into the inference table."""
    report("warm-load", store_bench.warm_load(models, url), record=record)


@app.command("train-jobs")
def train_jobs(series: int = 200, url: Url = None, record: Record = True) -> None:
    """Run training jobs from each series' stored week, one after the other."""
    report("train-jobs", store_bench.train_jobs(series, url), record=record)


if __name__ == "__main__":
    configure_logging(level="WARNING")
    app()
