"""`python -m bench fleet-promotion` runs once at a tiny size, so that it does
not rot (no timing asserted)."""

from __future__ import annotations

import pytest
from bench.__main__ import app
from typer.testing import CliRunner


@pytest.mark.postgres
def test_fleet_promotion_runs_and_reports(own_postgres: str) -> None:
    args = ["fleet-promotion", "--series", "900", "--url", own_postgres]
    result = CliRunner().invoke(app, [*args, "--no-record"])

    assert result.exit_code == 0, result.output
    assert result.output.startswith("fleet-promotion: series 900,")
    assert "whole_fleet_v2 1," in result.output
    assert "rollback_run_s" in result.output
    assert "900 series promoted in" in result.output
