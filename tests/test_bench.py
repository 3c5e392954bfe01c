"""Every benchmark runs once at a tiny size, so that none rots (no timing asserted)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bench.__main__ import app
from typer.testing import CliRunner

from fixtures.db import create_database, drop_database, worker_database_name

SMOKE = [
    ["train-accept", "--requests", "2", "--points", "10000"],
    ["promote-visible", "--series", "2"],
    ["warm-load", "--models", "300"],
    ["train-jobs", "--series", "2"],
    ["predict-single", "--models", "300", "--duration", "1", "--runs", "1"],
    ["predict-batch", "--models", "300", "--readings", "1000"]
    + ["--series-per-request", "100", "--duration", "1", "--runs", "1"],
    # no peer: their virtualenvs take minutes to make (see bench/peers_bench.py)
    ["peers", "--models", "300", "--peers", "none", "--runs", "1", "--duration", "1"],
]


@pytest.mark.parametrize("args", SMOKE, ids=[a[0] for a in SMOKE])
def test_benchmark_runs_and_reports(args: list[str]) -> None:
    result = CliRunner().invoke(app, [*args, "--no-record"])

    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{args[0]}: ")


@pytest.fixture
def fleet_database(postgres_admin: str) -> Iterator[str]:
    """A database of its own: the benchmark's default one may be in use."""
    name = worker_database_name("_fleet")
    url = create_database(postgres_admin, name)
    try:
        yield url
    finally:
        drop_database(postgres_admin, name)


@pytest.mark.postgres
def test_fleet_retrain_runs_and_reports(fleet_database: str) -> None:
    args = ["fleet-retrain", "--series", "20", "--points", "10000"]
    result = CliRunner().invoke(app, [*args, "--url", fleet_database, "--no-record"])

    assert result.exit_code == 0, result.output
    assert result.output.startswith("fleet-retrain: ")
    assert "registered 20," in result.output
