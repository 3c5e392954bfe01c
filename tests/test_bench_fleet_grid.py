"""`python -m bench fleet-grid` runs once at a tiny size, so that it does not
rot (no timing asserted)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bench.__main__ import app
from typer.testing import CliRunner

from fixtures.db import create_database, drop_database, worker_database_name


@pytest.fixture
def grid_database(postgres_admin: str) -> Iterator[str]:
    """A database of its own: the benchmark's default one may be in use."""
    name = worker_database_name("_grid")
    url = create_database(postgres_admin, name)
    try:
        yield url
    finally:
        drop_database(postgres_admin, name)


@pytest.mark.postgres
def test_fleet_grid_runs_and_reports(grid_database: str) -> None:
    args = ["fleet-grid", "--sensors", "300", "--incidents", "20", "--requests", "3"]
    result = CliRunner().invoke(app, [*args, "--url", grid_database, "--no-record"])

    assert result.exit_code == 0, result.output
    assert result.output.startswith("fleet-grid: sensors 300, series 900,")
    assert "incidents_live 20," in result.output
    assert "state_critical" in result.output
