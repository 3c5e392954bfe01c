"""`atalaia quality …` against a training service process."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.db.migrate import upgrade_database
from atalaia.api.common.auth import Authenticator, Role
from atalaia.cli.demo import free_port
from atalaia.cluster import supervisor
from atalaia.cluster.supervisor import ProcessSpec
from fixtures.fleet import store
from fixtures.readings import sensor_series

ATALAIA = str(Path(sys.executable).with_name("atalaia"))
SENSOR = "sensor_077"


@pytest.fixture
def training(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A training service process on a SQLite database holding a sensor whose
    radial axis is healthy and whose axial one is stuck for a day; the
    environment pointing at it with a viewer's token."""
    url = f"sqlite:///{tmp_path / 'atalaia.db'}"
    upgrade_database(url)
    engine = make_engine(url)
    ts, vs = sensor_series()
    store(make_session_factory(engine), f"{SENSOR}_radial", ts, vs)
    vs[:1_440] = vs[0]
    store(make_session_factory(engine), f"{SENSOR}_axial", ts, vs)
    engine.dispose()
    secret = secrets.token_urlsafe(32)
    port = free_port()
    env = {
        "ATALAIA_HOME": str(tmp_path / "home"),
        "ATALAIA_DATABASE_URL": url,
        "ATALAIA_JWT_SECRET": secret,
        "ATALAIA_LOG_JSON": "false",
        "ATALAIA_TOKEN": Authenticator(secret).issue(
            subject="viewer", role=Role.VIEWER, ttl_s=600
        ),
        "ATALAIA_TRAINING_URL": f"http://127.0.0.1:{port}",
    }
    spec = ProcessSpec(
        "training", (ATALAIA, "serve", "--role", "training", "--port", str(port)),
        port=port, env=env,
    )  # fmt: skip
    started = supervisor.spawn(spec, tmp_path / "logs")
    try:
        supervisor.wait_ready([started], timeout_s=60)
        yield env
    finally:
        supervisor.stop([started])


def quality(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ATALAIA, "quality", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_prints_a_series_report_its_sensors_and_its_json(
    training: dict[str, str],
) -> None:
    healthy = quality(training, f"{SENSOR}_radial")
    stuck = quality(training, f"{SENSOR}_axial", "--start", "2024-11-30T20:00:00")
    sensor = quality(training, SENSOR, "--sensor")
    raw = quality(training, f"{SENSOR}_axial", "--json")

    assert healthy.returncode == 0, healthy.stderr
    lines = healthy.stdout.splitlines()
    assert lines[0].startswith(f"{SENSOR}_radial  2024-11-30T20:53:20+00:00 … ")
    assert lines[1] == "fit to train: yes"
    assert "interval 60 s (100% regular, cv 0.00), missing 0.0%" in lines
    assert stuck.returncode == 0, stuck.stderr
    assert stuck.stdout.splitlines()[1:3] == [
        "fit to train: no",
        "  ✗ stuck: 14% of the readings hold one value for 30 min or more "
        "(stuck runs: 1); at most 5% allowed",
    ]
    assert sensor.stdout.splitlines()[0] == f"sensor {SENSOR}: no"
    assert json.loads(raw.stdout)["report"]["stuck"]["count"] == 1


def test_an_unknown_series_fails_in_one_line(training: dict[str, str]) -> None:
    done = quality(training, "sensor_404_radial")

    assert done.returncode == 1
    assert done.stderr.strip() == (
        "atalaia: HTTP 404 series_exists: series 'sensor_404_radial' has no data"
    )
