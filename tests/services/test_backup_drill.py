"""The restore drill, on SQLite and PostgreSQL: models trained and promoted,
readings moved to the cold history, answers taken; backed up, the database,
artifacts and cold folder wiped, restored: the same models give the same
answers and the same readings come back, through the embedded platform."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.api.common.auth import Role
from atalaia.cli.serve import ensure_admin_token
from atalaia.core.history import ColdPolicy
from atalaia.embedded import create_embedded_app
from atalaia.scheduler import backup_platform
from atalaia.services.backup import (
    create_backup,
    forget_inference_snapshot,
    restore_backup,
)
from atalaia.services.cold_history import archive
from atalaia.settings import Settings
from fixtures.api import Headers, SettingsFactory, bearer, post_ok, serve
from fixtures.db import BACKENDS, create_database, drop_database, worker_database_name
from fixtures.readings import EPOCH, sensor_series

FOREST = {"algorithm": "isolation_forest", "hyperparameters": {"trees": 20}}
COLD_SERIES = "sensor_009_axial"
NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def drill_settings(
    request: pytest.FixtureRequest, tmp_path: Path, make_settings: SettingsFactory
) -> Iterator[Settings]:
    """Settings on a database of their own: a SQLite file, or a PostgreSQL
    database dropped afterwards."""
    options: dict[str, Any] = {
        "training_min_interval_s": 0,
        "scheduler_in_process": False,
        "cold_dir": tmp_path / "cold",
    }
    if request.param == "sqlite":
        yield make_settings(f"sqlite:///{tmp_path / 'home' / 'atalaia.db'}", **options)
        return
    admin = str(request.getfixturevalue("postgres_admin"))
    name = worker_database_name("_drill")
    try:
        yield make_settings(create_database(admin, name), **options)
    finally:
        drop_database(admin, name)


def answers(settings: Settings, headers: Headers) -> dict[str, Any]:
    """A fresh platform's answers to a day of readings of each served series,
    its registry, and the cold series' readings."""
    forget_inference_snapshot(settings.snapshot_path)  # every run starts alike
    timestamps, values = sensor_series(1_440, seed=5, start=EPOCH + 30 * 86_400)
    points = [
        {"series_id": sid, "timestamp": t, "value": v}
        for sid in ("sensor_001_radial", "sensor_002_radial")
        for t, v in zip(timestamps.tolist(), values.tolist(), strict=True)
    ]
    with TestClient(create_embedded_app(settings)) as client:
        scored = post_ok(client, headers, "/api/v1/predict/batch", {"points": points})
        models = client.get("/api/v1/models", headers=headers).json()
        stored = client.get(
            f"/api/v1/series/{COLD_SERIES}/points",
            params={"start": EPOCH, "end": NOW.timestamp(), "limit": 100_000},
            headers=headers,
        ).json()
    results = scored["results"]
    return {
        "scores": [(r["anomaly_score"], r["model_info"]["version"]) for r in results],
        "types": sorted({r["model_info"]["type"] for r in results}),
        "models": models,
        "cold": stored,
    }


def build_platform(settings: Settings, headers: Headers) -> None:
    """Two models served (the default family, a forest in the artifact store) and a
    series' old readings moved to the cold history."""
    timestamps, values = sensor_series(10_080, seed=3)
    body = {"timestamps": timestamps.tolist(), "values": values.tolist()}
    with TestClient(create_embedded_app(settings)) as client:
        serve(client, "sensor_001_radial", headers)
        serve(client, "sensor_002_radial", headers, seed=1, **FOREST)
        post_ok(client, headers, f"/api/v1/series/{COLD_SERIES}/points", body)
    engine = make_engine(settings.database_url)
    try:
        moved = archive(
            sessions=make_session_factory(engine),
            policy=ColdPolicy(hot_days=1),
            folder=settings.cold_path,
            now=NOW.timestamp(),
        )
    finally:
        engine.dispose()
    assert moved.error is None
    assert moved.readings == 3 * 10_080  # the trained series' readings too


def wipe(settings: Settings) -> None:
    """Lose the database, the artifacts and the cold history."""
    url = settings.database_url
    if url.startswith("sqlite"):
        for suffix in ("", "-wal", "-shm"):
            Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
    else:
        admin, name = url.rsplit("/", 1)
        drop_database(f"{admin}/postgres", name)
    shutil.rmtree(settings.artifacts_path)
    shutil.rmtree(settings.cold_path)


def test_a_restored_platform_serves_the_same_answers(
    drill_settings: Settings, tmp_path: Path
) -> None:
    settings = drill_settings
    ensure_admin_token(settings)
    headers = bearer(settings, Role.ADMIN)
    build_platform(settings, headers)
    before = answers(settings, headers)
    backup = create_backup(backup_platform(settings), tmp_path / "backups", NOW)

    wipe(settings)
    restored = restore_backup(backup_platform(settings), backup, force=False)
    after = answers(settings, headers)

    assert restored.counts["model_versions"] == 2
    parts = [part.name for part in restored.parts]
    assert any(name.startswith("artifacts/training-data/") for name in parts)
    assert restored.counts["cold_readings"] == 3 * 10_080
    assert before["types"] == ["isolation_forest", "seasonal"]
    assert after == before
    assert len(before["cold"]["timestamps"]) == 10_080
