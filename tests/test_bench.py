"""Every benchmark runs once at a tiny size, so that none rots (no timing asserted)."""

from __future__ import annotations

import pytest
from bench.__main__ import app
from typer.testing import CliRunner

SMOKE = [
    ["train-accept", "--requests", "2", "--points", "10000"],
    ["promote-visible", "--series", "2"],
    ["warm-load", "--models", "300"],
    ["train-jobs", "--series", "2"],
]


@pytest.mark.parametrize("args", SMOKE, ids=[a[0] for a in SMOKE])
def test_benchmark_runs_and_reports(args: list[str]) -> None:
    result = CliRunner().invoke(app, [*args, "--no-record"])

    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{args[0]}: ")
