"""`python -m bench backup` runs once at a tiny size, so that it does not rot
(no timing asserted)."""

from __future__ import annotations

import pytest
from bench.__main__ import app
from typer.testing import CliRunner


@pytest.mark.postgres
def test_backup_runs_and_reports(own_postgres: str) -> None:
    args = ["backup", "--models", "300", "--readings", "3000", "--heavy", "5"]
    result = CliRunner().invoke(app, [*args, "--url", own_postgres, "--no-record"])

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("backup: models 300, readings 3000,")
    assert "rto_s_at" in result.output
    assert "rpo_h 6" in result.output
