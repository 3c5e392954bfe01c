"""`python -m bench fleet-grid` runs once at a tiny size, so that it does not
rot (no timing asserted)."""

from __future__ import annotations

import pytest
from bench.__main__ import app
from typer.testing import CliRunner


@pytest.mark.postgres
def test_fleet_grid_runs_and_reports(own_postgres: str) -> None:
    args = ["fleet-grid", "--sensors", "300", "--incidents", "20", "--requests", "3"]
    result = CliRunner().invoke(app, [*args, "--url", own_postgres, "--no-record"])

    assert result.exit_code == 0, result.output
    assert result.output.startswith("fleet-grid: sensors 300, series 900,")
    assert "incidents_live 20," in result.output
    assert "state_critical" in result.output
