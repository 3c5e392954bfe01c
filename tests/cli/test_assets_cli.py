"""`atalaia assets import | list` against a training service process."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from atalaia.api.common.auth import Role
from fixtures.assets import CSV, YAML
from fixtures.training_process import ATALAIA, training_process


@pytest.fixture
def training(tmp_path: Path) -> Iterator[dict[str, str]]:
    """An ML engineer's environment calling a training service process."""
    with training_process(tmp_path, Role.ML_ENGINEER) as env:
        yield env


def assets(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ATALAIA, "assets", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_imports_csv_and_yaml_files_then_lists_the_tree(
    training: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "plant1.csv").write_text(CSV)
    (tmp_path / "plant2.yaml").write_text(YAML)

    csv = assets(training, "import", str(tmp_path / "plant1.csv"))
    yaml = assets(training, "import", str(tmp_path / "plant2.yaml"))
    again = assets(training, "import", str(tmp_path / "plant1.csv"))
    listed = assets(training, "list", "--under", "plant1")

    assert csv.returncode == 0, csv.stderr
    assert csv.stdout == "imported 5 node(s) from plant1.csv: 5 created, 0 replaced\n"
    assert yaml.stdout.startswith("imported 4 node(s) from plant2.yaml: 4 created")
    assert again.stdout.endswith("0 created, 5 replaced\n")
    assert listed.returncode == 0, listed.stderr
    assert [line.split("\t")[:2] for line in listed.stdout.splitlines()] == [
        ["/plant1/", "site"],
        ["/plant1/line2/", "line"],
        ["/plant1/line2/press7/", "machine"],
        ["/plant1/line2/press7/sensor_000001/", "sensor"],
        ["/plant1/line2/press7/sensor_000002/", "sensor"],
    ]


def test_a_file_with_errors_prints_each_with_its_line_and_fails(
    training: dict[str, str], tmp_path: Path
) -> None:
    bad = CSV.replace("line2,line,Line 2,plant1", "line2,line,Line 2,plant9")
    (tmp_path / "bad.csv").write_text(bad + "press7,machine,Again,line2,,,,,,\n")

    done = assets(training, "import", str(tmp_path / "bad.csv"))
    listed = assets(training, "list")

    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert any(
        line.startswith("line 3: node line2: ") and "plant9" in line for line in lines
    ), done.stderr
    assert any(line.startswith("line 7: node press7: ") for line in lines)
    assert "nothing was written" in lines[-1]
    assert listed.stdout == ""  # none of them


def test_a_file_of_another_kind_is_refused_before_sending(
    training: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "plant.json").write_text("{}")

    done = assets(training, "import", str(tmp_path / "plant.json"))

    assert done.returncode == 1
    assert "an asset file is .csv, .yaml or .yml" in done.stderr
