"""`atalaia report …` against a training service process."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.db.migrate import upgrade_database
from atalaia.api.common.auth import Authenticator, Role
from atalaia.cli.demo import free_port
from atalaia.cluster import supervisor
from atalaia.cluster.supervisor import ProcessSpec
from fixtures.reports import CRITICAL_SENSOR, fill_week, pdf_text, workbook

ATALAIA = str(Path(sys.executable).with_name("atalaia"))


@pytest.fixture
def training(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A training service process on a database holding a week to report on;
    the environment of a viewer calling it."""
    url = f"sqlite:///{tmp_path / 'atalaia.db'}"
    upgrade_database(url)
    engine = make_engine(url)
    fill_week(make_session_factory(engine), time.time())
    engine.dispose()
    secret = secrets.token_urlsafe(32)
    env = {
        "ATALAIA_HOME": str(tmp_path / "home"),
        "ATALAIA_DATABASE_URL": url,
        "ATALAIA_JWT_SECRET": secret,
        "ATALAIA_LOG_JSON": "false",
    }
    port = free_port()
    spec = ProcessSpec(
        "training", (ATALAIA, "serve", "--role", "training", "--port", str(port)),
        port=port, env=env,
    )  # fmt: skip
    started = supervisor.spawn(spec, tmp_path / "logs")
    try:
        supervisor.wait_ready([started], timeout_s=60)
        viewer = Authenticator(secret).issue(
            subject="viewer", role=Role.VIEWER, ttl_s=600
        )
        yield env | {
            "ATALAIA_TRAINING_URL": f"http://127.0.0.1:{port}",
            "ATALAIA_TOKEN": viewer,
        }
    finally:
        supervisor.stop([started])


def report(
    env: dict[str, str], cwd: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ATALAIA, "report", *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_saves_the_fleet_report_in_either_format(
    training: dict[str, str], tmp_path: Path
) -> None:
    pdf = report(training, tmp_path, "fleet")
    xlsx = report(training, tmp_path, "fleet", "--format", "xlsx", "-o", "week.xlsx")

    assert pdf.returncode == 0, pdf.stderr
    (saved,) = tmp_path.glob("atalaia-fleet-fleet-*.pdf")  # the service's name
    assert pdf.stdout.startswith(f"{saved.name} (")
    assert CRITICAL_SENSOR in pdf_text(saved.read_bytes(), tmp_path)
    assert xlsx.returncode == 0, xlsx.stderr
    book = workbook((tmp_path / "week.xlsx").read_bytes())
    assert book["Incidents"].max_row == 1 + 3


def test_an_unknown_sensor_fails_in_one_line(
    training: dict[str, str], tmp_path: Path
) -> None:
    done = report(training, tmp_path, "sensor", "sensor_999999")

    assert done.returncode == 1
    assert "HTTP 404 sensor_exists" in done.stderr
    assert not list(tmp_path.glob("*.pdf"))
