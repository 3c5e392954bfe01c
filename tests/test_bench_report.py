"""The report-week benchmark runs once at a tiny size (no timing asserted), so
that it does not rot; it needs PostgreSQL."""

from __future__ import annotations

import pytest
from bench.__main__ import app
from typer.testing import CliRunner


@pytest.mark.postgres
def test_report_week_runs_and_reports(own_postgres: str) -> None:
    args = ["report-week", "--series", "30", "--incidents", "5", "--runs", "1"]
    args += ["--url", own_postgres, "--no-record"]
    result = CliRunner().invoke(app, args)

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("report-week: ")
    assert "incidents 5" in result.output
    assert "pdf_s" in result.output
    assert "scheduled_s" in result.output
