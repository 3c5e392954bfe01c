"""`atalaia upload FILE` against the embedded server on a thread."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from atalaia.api.common.auth import Role
from atalaia.cli import app
from atalaia.cli.demo import app_server
from atalaia.embedded import create_embedded_app
from atalaia.settings import Settings
from fixtures.api import bearer

T0 = 1_733_011_200


@pytest.fixture
def served(settings: Settings) -> Iterator[str]:
    with app_server(create_embedded_app(settings)) as base_url:
        yield base_url


def run(settings: Settings, url: str, *args: str) -> tuple[int, str, str]:
    token = bearer(settings, Role.DATA_SCIENTIST)["Authorization"].split()[1]
    result = CliRunner().invoke(app, ["upload", *args, "--url", url, "--token", token])
    return result.exit_code, result.stdout, result.stderr


def test_uploads_a_file_and_reports_what_was_stored_and_refused(
    settings: Settings, served: str, tmp_path: Path
) -> None:
    source = tmp_path / "readings.csv"
    source.write_text(
        f"timestamp,radial,axial\n{T0 * 1000},1.0,2.0\n{(T0 + 1) * 1000},x,3.0\n"
    )

    code, out, err = run(settings, served, str(source), "--sensor", "pump7")

    assert code == 0, err
    assert "csv, wide form" in out
    assert "3 readings stored, 0 already stored, 1 invalid" in out
    assert "epoch ms (detected by magnitude)" in out
    assert "line 3, radial: value_unparseable" in err


def test_a_refused_file_exits_with_the_rule(
    settings: Settings, served: str, tmp_path: Path
) -> None:
    source = tmp_path / "readings.csv"
    source.write_text("when,value\n1,2\n")

    code, _, err = run(settings, served, str(source))

    assert code == 1
    assert "HTTP 422 timestamp_column" in err
