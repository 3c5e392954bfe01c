"""`python -m bench chart` runs once at a tiny size, so that it does not rot
(no timing asserted; `tests/test_bench.py` runs the others)."""

from __future__ import annotations

import re

from bench.__main__ import app
from typer.testing import CliRunner


def test_chart_benchmark_runs_and_reports() -> None:
    args = ["chart", "--readings", "20000", "--requests", "2", "--no-record"]

    result = CliRunner().invoke(app, args)

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("chart: ")
    found = re.search(r"chart_20000_points (\d+),", result.output)
    assert found is not None
    assert int(found[1]) <= 4 * 1_000  # of 20,000 readings: decimated
