"""The ops-views benchmark runs once at a tiny size (no timing asserted), so
that it does not rot; its own test: it needs PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bench.__main__ import app
from typer.testing import CliRunner

from fixtures.db import create_database, drop_database, worker_database_name


@pytest.fixture
def ops_database(postgres_admin: str) -> Iterator[str]:
    """An empty database of its own: the benchmark's default one may be in use."""
    name = worker_database_name("_ops_views")
    url = create_database(postgres_admin, name)
    try:
        yield url
    finally:
        drop_database(postgres_admin, name)


@pytest.mark.postgres
def test_ops_views_runs_and_reports(ops_database: str) -> None:
    args = ["ops-views", "--jobs", "300", "--older", "1", "--versions", "300"]
    args += ["--requests", "3", "--url", ops_database, "--no-record"]
    result = CliRunner().invoke(app, args)

    assert result.exit_code == 0, result.output
    assert result.output.startswith("ops-views: jobs 300, older_batches 1,")
    assert "batch_running: p50" in result.output
