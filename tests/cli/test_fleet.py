"""`atalaia fleet …` against a training service process."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench._fleet import series_ids
from typer.testing import CliRunner

from atalaia.adapters.db.migrate import upgrade_database
from atalaia.api.common.auth import Authenticator, Role
from atalaia.cli import app
from atalaia.cli.demo import free_port
from atalaia.cluster import supervisor
from atalaia.cluster.supervisor import ProcessSpec
from fixtures.operations import AFTER, BEFORE, promotable_at, stages_at

ATALAIA = str(Path(sys.executable).with_name("atalaia"))
FLEET = series_ids(60)  # 20 sensors


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A migrated SQLite database holding a fleet, and an engineer's token."""
    url = f"sqlite:///{tmp_path / 'atalaia.db'}"
    upgrade_database(url)
    promotable_at(url, FLEET)
    secret = secrets.token_urlsafe(32)
    token = Authenticator(secret).issue(
        subject="engineer", role=Role.ML_ENGINEER, ttl_s=600
    )
    return {
        "ATALAIA_HOME": str(tmp_path / "home"),
        "ATALAIA_DATABASE_URL": url,
        "ATALAIA_JWT_SECRET": secret,
        "ATALAIA_LOG_JSON": "false",
        "ATALAIA_TOKEN": token,
    }


@pytest.fixture
def training(env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, str]]:
    """A training service process on that database; `env` pointing at it."""
    port = free_port()
    spec = ProcessSpec(
        "training", (ATALAIA, "serve", "--role", "training", "--port", str(port)),
        port=port, env=env,
    )  # fmt: skip
    started = supervisor.spawn(spec, tmp_path / "logs")
    try:
        supervisor.wait_ready([started], timeout_s=60)
        yield env | {"ATALAIA_TRAINING_URL": f"http://127.0.0.1:{port}"}
    finally:
        supervisor.stop([started])


def fleet(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ATALAIA, "fleet", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_promotes_follows_and_reports_an_operation(
    training: dict[str, str], tmp_path: Path
) -> None:
    chosen = tmp_path / "series.txt"
    chosen.write_text("\n".join(FLEET[:6]) + "\n")

    dry = fleet(training, "promote", "--series-file", str(chosen), "--dry-run")
    promoted = fleet(training, "promote", "--sensor", "sensor_000001", "--wait")
    operation_id = promoted.stdout.split()[1]
    status = fleet(training, "status", operation_id)
    cancel = fleet(training, "cancel", operation_id)

    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout) | {"errors": []} == {
        "dry_run": True, "action": "promote", "selected": 6, "eligible": 6,
        "skipped": 0, "skipped_by_reason": {}, "failed": 0, "errors": [],
    }  # fmt: skip
    assert promoted.returncode == 0, promoted.stderr
    assert promoted.stdout.splitlines() == [
        f"operation {operation_id} queued: 3 series",
        f"operation {operation_id}: done (3 done, 0 skipped, 0 failed, 0 remaining)",
    ]
    assert "3/3" in promoted.stderr  # the progress bar
    assert json.loads(status.stdout)["done"] == 3
    assert cancel.returncode == 1
    assert "HTTP 409 operation_cancellable" in cancel.stderr
    found = stages_at(training["ATALAIA_DATABASE_URL"])
    assert {s for s, kept in found.items() if kept == AFTER} == {
        "sensor_000001_radial", "sensor_000001_axial", "sensor_000001_tangential"
    }  # fmt: skip
    assert sum(kept == BEFORE for kept in found.values()) == len(FLEET) - 3


def test_a_rollback_with_nothing_before_is_skipped(training: dict[str, str]) -> None:
    done = fleet(training, "rollback", "--prefix", "sensor_000000", "--wait")

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].endswith(
        "done (0 done, 3 skipped [3 no_earlier_production_version], 0 failed, "
        "0 remaining)"
    )


def test_starts_canaries_whose_holdout_is_better(training: dict[str, str]) -> None:
    started = fleet(
        training, "canary", "--sensor", "sensor_000002", "--better-than-production",
        "--initial-percentage", "20", "--wait",
    )  # fmt: skip
    operation_id = started.stdout.split()[1]
    status = json.loads(fleet(training, "status", operation_id).stdout)

    assert started.returncode == 0, started.stderr
    # v2 holds as good a holdout as v1 (the same figures): better enough.
    assert started.stdout.splitlines()[-1].endswith(
        "done (3 done, 0 skipped, 0 failed, 0 remaining)"
    )
    assert status["action"] == "canary"
    assert status["condition"] == {"better_than_production": True}
    assert status["canary"]["plan"]["initial"] == 20
    assert set(stages_at(training["ATALAIA_DATABASE_URL"]).values()) == {BEFORE}


class TestRefused:
    def test_exactly_one_selector(self) -> None:
        result = CliRunner().invoke(
            app, ["fleet", "promote", "--prefix", "a", "--all", "--token", "t"]
        )

        assert result.exit_code == 2
        assert "choose exactly one of --prefix" in result.output

    def test_says_when_the_service_cannot_be_reached(self) -> None:
        url = "http://127.0.0.1:9"

        result = CliRunner().invoke(
            app, ["fleet", "status", "op-1", "--url", url, "--token", "t"]
        )

        assert result.exit_code == 1
        assert result.output.startswith(
            f"atalaia: cannot reach the training service at {url}"
        )
