"""The ops-views benchmark runs once at a tiny size (no timing asserted), so
that it does not rot; its own test: it needs PostgreSQL."""

from __future__ import annotations

import pytest
from bench.__main__ import app
from typer.testing import CliRunner


@pytest.mark.postgres
def test_ops_views_runs_and_reports(own_postgres: str) -> None:
    args = ["ops-views", "--jobs", "300", "--older", "1", "--versions", "300"]
    args += ["--requests", "3", "--url", own_postgres, "--no-record"]
    result = CliRunner().invoke(app, args)

    assert result.exit_code == 0, result.output
    assert result.output.startswith("ops-views: jobs 300, older_batches 1,")
    assert "batch_running: p50" in result.output
