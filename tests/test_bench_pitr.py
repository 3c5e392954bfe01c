"""`python -m bench pitr` runs once at a tiny size, so that it does not rot (no
timing asserted); it checks itself that the restore brought back every model."""

from __future__ import annotations

import pytest
from bench.__main__ import app
from bench._archiving_cluster import server_binaries
from typer.testing import CliRunner

from fixtures import require_service


@pytest.mark.postgres
def test_pitr_runs_and_reports() -> None:
    require_service("pgBackRest and PostgreSQL's server", server_binaries)
    args = ["pitr", "--models", "30", "--readings", "300", "--archive-timeout", "1"]
    result = CliRunner().invoke(app, [*args, "--samples", "1", "--no-record"])

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("pitr: models 30, readings 300,")
    assert "lag_s_max" in result.output
    assert "rto_s" in result.output
