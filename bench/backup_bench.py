"""Backup and restore of a fleet on PostgreSQL: RPO and RTO.

`models` production versions (z-score, one per series) and `readings` hot
readings (one a minute per series, written by the server itself) in one
database; `heavy` of the models name an artifact of `artifact_kb` in the store
(a forest's size). Timed once each, the database settled first (VACUUM ANALYZE,
CHECKPOINT):

- `backup_s`, `backup_mb`: `services.backup.create_backup` (pg_dump -Fc of an
  exported snapshot, then the artifacts), and its folder's size;
- `restore_s`: `restore_backup` into a new database and artifact folder
  (checksums verified, pg_restore in one transaction, migrations checked);
- `reload_s`: the inference service's reload of every production model from
  the restored database (what `POST /admin/reload` or a restart does);
- `rto_s` = restore + reload; `rpo_h` = the backup interval + the backup's
  duration: the most a failure just before a backup completes loses.

Readings dominate both dump and restore and grow linearly with them: the
`*_at` figures scale the readings' share to `target_readings` (the models'
share measured without readings: `base_*`).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from atalaia.adapters.backup import PostgresBackup
from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.db.migrate import upgrade_database
from atalaia.adapters.db.serving import DatabaseServingStore
from atalaia.adapters.storage import LocalArtifactStore
from atalaia.services.backup import Platform, create_backup, restore_backup
from atalaia.services.inference import Predictor
from bench._fleet import fill_registry, fresh_database, series_ids

START = 1_764_547_200.0  # the first reading's time


def backup(
    models: int,
    readings: int,
    *,
    heavy: int = 1_000,
    artifact_kb: int = 256,
    every_hours: float = 6.0,
    target_readings: int = 100_000_000,
    url: str | None = None,
) -> dict[str, float | int]:
    """Back up a fleet of `models` with `readings`, restore it, reload it."""
    with (
        tempfile.TemporaryDirectory() as folder,
        fresh_database(url, "atalaia_bench_backup") as source,
        fresh_database(None, f"{make_url(source).database}_restored") as target,
    ):
        home = Path(folder)
        upgrade_database(source)
        live = Platform(PostgresBackup(source), LocalArtifactStore(home / "live"))
        _fill(source, live, models, heavy, artifact_kb * 1024)
        base = _round_trip(live, home / "base", target)
        add_readings(source, models, readings)
        figures = _round_trip(live, home / "full", target)
    share = readings / target_readings
    backup_at = base["backup_s"] + (figures["backup_s"] - base["backup_s"]) / share
    restore_at = base["restore_s"] + (figures["restore_s"] - base["restore_s"]) / share
    return {
        "models": models,
        "readings": readings,
        **figures,
        "base_backup_s": base["backup_s"],
        "base_restore_s": base["restore_s"],
        "target_readings": target_readings,
        "backup_s_at": round(backup_at, 1),
        "backup_mb_at": round(
            base["backup_mb"] + (figures["backup_mb"] - base["backup_mb"]) / share
        ),
        "rto_s_at": round(restore_at + figures["reload_s"], 1),
        "rpo_h": round(every_hours + figures["backup_s"] / 3600, 2),
        "rpo_h_at": round(every_hours + backup_at / 3600, 2),
    }


def _round_trip(live: Platform, folder: Path, target: str) -> dict[str, float]:
    """Back `live` up into `folder`, restore into `target` (wiped), reload."""
    _settle(live.database.url_text)
    began = time.perf_counter()
    made = create_backup(live, folder, datetime.now(UTC))
    backup_s = time.perf_counter() - began
    size = sum(p.stat().st_size for p in made.rglob("*") if p.is_file())
    restored = Platform(PostgresBackup(target), LocalArtifactStore(folder / "restored"))
    began = time.perf_counter()
    restore_backup(restored, made, force=True)
    restore_s = time.perf_counter() - began
    reload_s = _reload_s(target)
    shutil.rmtree(folder)
    return {
        "backup_s": round(backup_s, 2),
        "backup_mb": round(size / 1e6, 1),
        "restore_s": round(restore_s, 2),
        "reload_s": round(reload_s, 2),
        "rto_s": round(restore_s + reload_s, 2),
    }


def _reload_s(url: str) -> float:
    engine = make_engine(url)
    try:
        predictor = Predictor(
            DatabaseServingStore(make_session_factory(engine)),
            snapshot_path=Path(tempfile.gettempdir()) / "bench-backup-snapshot.npz",
        )
        began = time.perf_counter()
        predictor.reload_all()
        return time.perf_counter() - began
    finally:
        engine.dispose()


def _fill(url: str, live: Platform, models: int, heavy: int, size: int) -> None:
    """`models` production versions, the first `heavy` forests with an artifact."""
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    ids = series_ids(models)
    keys = [f"models/{sid}/{i:032x}.npz" for i, sid in enumerate(ids[:heavy])]
    blob = bytes(size)
    for key in keys:
        live.artifacts.put(key, blob)
    try:
        fill_registry(sessions, ids, artifacts=keys + [None] * (models - heavy))
    finally:
        engine.dispose()


def add_readings(url: str, series: int, readings: int) -> None:
    """`readings` readings, one a minute per series' key, made by the server."""
    with _connect(url) as conn:
        conn.execute(  # the series' keys are 1 to `series` (a sequence's)
            "INSERT INTO readings (series_key, ts, value) "
            "SELECT 1 + g %% %s, %s + 60 * (g / %s), random() "
            "FROM generate_series(0, %s - 1) g",
            (series, START, series, readings),
        )


def _settle(url: str) -> None:
    with _connect(url) as conn:
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")


def _connect(url: str) -> psycopg.Connection[tuple[object, ...]]:
    libpq = make_url(url).set(drivername="postgresql").render_as_string(False)
    return psycopg.connect(libpq, autocommit=True)
