"""Every benchmark runs once at a tiny size, so that none rots (no timing asserted)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from bench.__main__ import app
from typer.testing import CliRunner

from fixtures.db import create_database, drop_database, worker_database_name

SMOKE = [
    ["train-accept", "--requests", "2", "--points", "10000"],
    ["promote-visible", "--series", "2"],
    ["warm-load", "--models", "300"],
    ["train-jobs", "--series", "2"],
    ["predict-single", "--models", "300", "--duration", "1", "--runs", "1"],
    ["predict-batch", "--models", "300", "--readings", "1000"]
    + ["--series-per-request", "100", "--duration", "1", "--runs", "1"],
    # no peer: their virtualenvs take minutes to make (see bench/peers_bench.py)
    ["peers", "--models", "300", "--peers", "none", "--runs", "1", "--duration", "1"],
]


@pytest.mark.parametrize("args", SMOKE, ids=[a[0] for a in SMOKE])
def test_benchmark_runs_and_reports(args: list[str]) -> None:
    result = CliRunner().invoke(app, [*args, "--no-record"])

    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{args[0]}: ")


@pytest.fixture
def fleet_database(postgres_admin: str) -> Iterator[str]:
    """A database of its own: the benchmark's default one may be in use."""
    name = worker_database_name("_fleet")
    url = create_database(postgres_admin, name)
    try:
        yield url
    finally:
        drop_database(postgres_admin, name)


@pytest.mark.postgres
def test_fleet_retrain_runs_and_reports(fleet_database: str) -> None:
    args = ["fleet-retrain", "--series", "20", "--points", "10000"]
    result = CliRunner().invoke(app, [*args, "--url", fleet_database, "--no-record"])

    assert result.exit_code == 0, result.output
    assert result.output.startswith("fleet-retrain: ")
    assert "registered 20," in result.output


def test_quality_scores_a_labelled_folder(tmp_path: Path) -> None:
    """One SKAB-shaped experiment: 400 normal rows, then a shift the labels mark."""
    rng = np.random.default_rng(0)
    values = rng.normal(0, 1, (600, 2))
    labels = np.zeros(600)
    values[500:, 1] += 50.0
    labels[500:] = 1
    (tmp_path / "valve1").mkdir()
    lines = ["datetime;A;B;anomaly;changepoint"] + [
        f"2020-03-09 10:{i // 60:02d}:{i % 60:02d};{a};{b};{y};0"
        for i, ((a, b), y) in enumerate(zip(values, labels, strict=True))
    ]
    (tmp_path / "valve1" / "1.csv").write_text("\n".join(lines) + "\n")

    result = CliRunner().invoke(
        app, ["quality", "--data", str(tmp_path), "--no-record"]
    )

    assert result.exit_code == 0, result.output
    assert result.output.startswith("quality: files 1, flag_all_f1 0.667, ")
    assert "zscore_valve1_f1 1" in result.output.strip().split(", ")
    assert "valve2" not in result.output  # no experiment of that kind
