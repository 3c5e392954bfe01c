"""`atalaia scheduler` as its own process, beside a training service process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.db.migrate import upgrade_database
from atalaia.adapters.db.tables import AuditRow, JobRow
from atalaia.adapters.storage import LocalArtifactStore
from atalaia.cli.demo import free_port
from atalaia.cluster import supervisor
from atalaia.cluster.supervisor import ProcessSpec
from atalaia.services.scheduler import ACTOR
from fixtures.api import wait_for
from fixtures.fleet import add_day, serve_series
from fixtures.readings import DAY_S

ATALAIA = str(Path(sys.executable).with_name("atalaia"))
DRIFTED, STABLE = "sensor_001_radial", "sensor_001_axial"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A home and a migrated SQLite database holding a drifted and a stable series."""
    url = f"sqlite:///{tmp_path / 'atalaia.db'}"
    upgrade_database(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    artifacts = LocalArtifactStore(tmp_path / "home" / "artifacts")
    try:
        for seed, (series_id, drift) in enumerate([(DRIFTED, True), (STABLE, False)]):
            serve_series(sessions, artifacts, series_id, end=DAY_S * 20_000, seed=seed)
            add_day(sessions, series_id, after=DAY_S * 20_000, seed=seed, drift=drift)
    finally:
        engine.dispose()
    return {
        "ATALAIA_HOME": str(tmp_path / "home"),
        "ATALAIA_DATABASE_URL": url,
        "ATALAIA_LOG_JSON": "false",
        "ATALAIA_TRAINING_MIN_INTERVAL_S": "0",
    }


@pytest.fixture
def training_url(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """A training service process on that database."""
    port = free_port()
    spec = ProcessSpec(
        "training", (ATALAIA, "serve", "--role", "training", "--port", str(port)),
        port=port, env=env,
    )  # fmt: skip
    started = supervisor.spawn(spec, tmp_path / "logs")
    try:
        supervisor.wait_ready([started], timeout_s=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        supervisor.stop([started])


def scheduled(url: str) -> tuple[list[str], list[str]]:
    """(series of the jobs the scheduler queued, actions it wrote to the audit log)."""
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            jobs = session.scalars(
                select(JobRow.series_id).where(JobRow.submitted_by == ACTOR)
            ).all()
            actions = session.scalars(
                select(AuditRow.action).where(AuditRow.action.startswith("scheduler."))
            ).all()
    finally:
        engine.dispose()
    return list(jobs), list(actions)


def test_once_drift_queues_the_drifted_series_through_the_training_service(
    env: dict[str, str], training_url: str
) -> None:
    done = subprocess.run(
        [ATALAIA, "scheduler", "--once", "drift"],
        env={**os.environ, **env, "ATALAIA_TRAINING_URL": training_url},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["considered"], report["series"], report["accepted"]) == (
        2, [DRIFTED], 1,
    )  # fmt: skip
    assert scheduled(env["ATALAIA_DATABASE_URL"]) == ([DRIFTED], ["scheduler.drift"])


def test_once_fails_when_the_training_service_is_down(env: dict[str, str]) -> None:
    done = subprocess.run(
        [ATALAIA, "scheduler", "--once", "drift"],
        env={**os.environ, **env, "ATALAIA_TRAINING_URL": "http://127.0.0.1:9"},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 1
    assert json.loads(done.stdout)["error"].startswith(
        "training service is unavailable"
    )


WEEKLY = '[{"name": "weekly", "formats": ["xlsx"], "channels": ["mail"]}]'


@pytest.mark.parametrize(
    ("task", "variable", "value", "code", "said"),
    [
        ("wave", "ATALAIA_WEEKLY_WAVE", "never", 1,
         "the wave task is off: set ATALAIA_WEEKLY_WAVE to a policy"),
        ("wave", "ATALAIA_WEEKLY_WAVE", "canary_if_healthy", 0,
         '"policy": "canary_if_healthy"'),
        ("report", "ATALAIA_REPORT_SUBSCRIPTIONS", "[]", 1,
         "the report task is off: set ATALAIA_REPORT_SUBSCRIPTIONS"),
        ("report", "ATALAIA_REPORT_SUBSCRIPTIONS", WEEKLY, 0,
         '"stored": {"weekly": ['),
    ],
)  # fmt: skip
def test_once_runs_a_task_off_unless_configured_when_it_is(
    env: dict[str, str], task: str, variable: str, value: str, code: int, said: str
) -> None:
    done = subprocess.run(
        [ATALAIA, "scheduler", "--once", task],
        env={**os.environ, **env, variable: value},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == code, done.stderr
    assert said in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("hot_days", "code", "said"),
    [
        (None, 1, "the archive task is off: set ATALAIA_HOT_DAYS"),
        ("30", 0, '"task": "archive", "hot_days": 30.0'),
    ],
)
def test_once_archive_runs_when_hot_days_are_set(
    env: dict[str, str], tmp_path: Path, hot_days: str | None, code: int, said: str
) -> None:
    cold = {"ATALAIA_COLD_DIR": str(tmp_path / "cold")}
    if hot_days is not None:
        cold["ATALAIA_HOT_DAYS"] = hot_days
    done = subprocess.run(
        [ATALAIA, "scheduler", "--once", "archive"],
        env={**os.environ, **env, **cold},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == code, done.stderr
    assert said in done.stdout + done.stderr
    assert "Pool disposed" not in done.stderr  # the database driver's chatter


def test_runs_until_sigterm_and_exports_its_metrics(
    env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    spec = ProcessSpec(
        "scheduler", (ATALAIA, "scheduler", "--metrics-port", str(port)),
        port=port, ready_path="/metrics", env=env,
    )  # fmt: skip
    started = supervisor.spawn(spec, tmp_path / "logs")
    try:
        supervisor.wait_ready([started], timeout_s=60)

        def leading() -> bool | None:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            return True if "scheduler_leader 1.0" in text else None

        assert wait_for(leading)
    finally:
        killed = supervisor.stop([started], timeout_s=20)

    assert killed == []  # it stopped on SIGTERM
    assert "scheduler.stopped" in Path(started.log).read_text()
