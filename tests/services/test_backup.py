"""Backups: whole or absent (a dump cut short leaves none), checked before a
restore, refused when newer than the code or into a target holding data,
complete (every blob the database names), and kept by retention."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from bench._fleet import fill_registry
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.backup import PostgresBackup, SqliteBackup
from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.db.migrate import upgrade_database
from atalaia.adapters.db.repositories import AuditLog
from atalaia.adapters.storage import LocalArtifactStore
from atalaia.core.backup import (
    MANIFEST,
    BackupIncomplete,
    BackupInvalid,
    BackupTooNew,
    RestoreTargetNotEmpty,
)
from atalaia.core.schedule import Task
from atalaia.errors import DependencyUnavailable
from atalaia.services.backup import (
    Platform,
    create_backup,
    list_backups,
    restore_backup,
    scheduled_backup,
    verify_backup,
)
from fixtures.db import create_database, drop_database, worker_database_name
from fixtures.tcp_proxy import TcpProxy

NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)
KEY = "models/s1/abc.npz"


def sqlite_platform(folder: Path) -> Platform:
    url = f"sqlite:///{folder / 'atalaia.db'}"
    return Platform(SqliteBackup(url), LocalArtifactStore(folder / "artifacts"))


@pytest.fixture
def platform(tmp_path: Path) -> Platform:
    """A migrated SQLite platform with a forest model and its artifact."""
    made = sqlite_platform(tmp_path / "live")
    upgrade_database(made.database.url_text)
    made.artifacts.put(KEY, b"trees")
    return made


def add_forest(sessions: sessionmaker[Session]) -> None:
    fill_registry(sessions, ["s1"], algorithm="isolation_forest", artifacts=[KEY])


def test_a_backup_holds_every_artifact_with_its_checksum(
    platform: Platform, tmp_path: Path
) -> None:
    backup = create_backup(platform, tmp_path / "backups", NOW)

    manifest = verify_backup(backup)
    assert (backup / "artifacts" / KEY).read_bytes() == b"trees"
    assert {p.name for p in manifest.parts} == {"database.sqlite", f"artifacts/{KEY}"}
    assert manifest.database_kind == "sqlite"
    assert manifest.schema_revision is not None
    assert [path for path, _ in list_backups(tmp_path / "backups")] == [backup]


def test_a_referenced_artifact_missing_fails_the_backup_and_leaves_nothing(
    platform: Platform, tmp_path: Path
) -> None:
    engine = make_engine(platform.database.url_text)
    add_forest(make_session_factory(engine))
    engine.dispose()
    platform.artifacts.delete(KEY)

    with pytest.raises(BackupIncomplete, match=KEY):
        create_backup(platform, tmp_path / "backups", NOW)
    assert list((tmp_path / "backups").iterdir()) == []


def test_a_training_data_snapshot_a_lineage_names_is_required_too(
    platform: Platform, tmp_path: Path
) -> None:
    engine = make_engine(platform.database.url_text)
    add_forest(make_session_factory(engine))
    engine.dispose()
    db = platform.database.url_text.removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute(
            "UPDATE model_versions SET "
            "lineage = json_object('data_snapshot', 'training-data/gone.parquet')"
        )

    with pytest.raises(BackupIncomplete, match="training-data/gone.parquet"):
        create_backup(platform, tmp_path / "backups", NOW)


class TestRestoreRefuses:
    def test_a_part_that_changed(self, platform: Platform, tmp_path: Path) -> None:
        backup = create_backup(platform, tmp_path / "backups", NOW)
        (backup / "artifacts" / KEY).write_bytes(b"other")

        with pytest.raises(BackupInvalid, match="does not match its checksum"):
            restore_backup(sqlite_platform(tmp_path / "new"), backup, force=False)

    def test_a_schema_newer_than_the_code(
        self, platform: Platform, tmp_path: Path
    ) -> None:
        backup = create_backup(platform, tmp_path / "backups", NOW)
        manifest = json.loads((backup / MANIFEST).read_text())
        manifest["schema_revision"] = "9999_from_the_future"
        (backup / MANIFEST).write_text(json.dumps(manifest))

        with pytest.raises(BackupTooNew, match="9999_from_the_future") as refused:
            restore_backup(sqlite_platform(tmp_path / "new"), backup, force=False)
        assert refused.value.rule == "backup_schema_known"

    def test_a_target_holding_data_unless_forced(
        self, platform: Platform, tmp_path: Path
    ) -> None:
        backup = create_backup(platform, tmp_path / "backups", NOW)
        platform.artifacts.put("models/s2/new.npz", b"newer")

        with pytest.raises(RestoreTargetNotEmpty, match="--force"):
            restore_backup(platform, backup, force=False)
        restore_backup(platform, backup, force=True)
        assert platform.artifacts.get(KEY) == b"trees"

    def test_another_kind_of_database(self, platform: Platform, tmp_path: Path) -> None:
        backup = create_backup(platform, tmp_path / "backups", NOW)
        target = Platform(
            PostgresBackup("postgresql://postgres@127.0.0.1/none"), platform.artifacts
        )
        with pytest.raises(BackupInvalid, match="a sqlite backup restores into"):
            restore_backup(target, backup, force=True)


def test_a_folder_without_manifest_is_not_listed_nor_restorable(
    platform: Platform, tmp_path: Path
) -> None:
    backup = create_backup(platform, tmp_path / "backups", NOW)
    (backup / MANIFEST).unlink()  # as if the process died before writing it

    assert list_backups(tmp_path / "backups") == []
    with pytest.raises(BackupInvalid, match="never finished"):
        restore_backup(sqlite_platform(tmp_path / "new"), backup, force=False)


def test_scheduled_backups_keep_the_newest_and_audit_each_run(
    platform: Platform, tmp_path: Path
) -> None:
    folder = tmp_path / "backups"
    dead = create_backup(platform, folder, NOW - timedelta(hours=1))
    (dead / MANIFEST).unlink()
    engine = make_engine(platform.database.url_text)
    sessions = make_session_factory(engine)
    try:
        reports = [
            scheduled_backup(
                platform,
                sessions=sessions,
                folder=folder,
                keep=2,
                now=NOW + timedelta(hours=6 * i),
            )  # fmt: skip
            for i in range(3)
        ]
        with sessions() as session:
            audited = AuditLog(session).last_times([Task.BACKUP.audit_action])
    finally:
        engine.dispose()

    assert [r.error for r in reports] == [None, None, None]
    assert reports[0].pruned == [dead.name]
    assert reports[2].pruned == [Path(reports[0].path).name]
    kept = [path for path, _ in list_backups(folder)]
    assert kept == [Path(r.path) for r in reports[1:]]
    assert sorted(p.name for p in folder.iterdir()) == [p.name for p in kept]
    assert Task.BACKUP.audit_action in audited


def _fill_readings(url: str, rows: int) -> None:
    libpq = make_url(url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO readings (series_key, ts, value) "
            "SELECT g %% 1000, g, random() FROM generate_series(1, %s) g",
            (rows,),
        )


def test_a_dump_cut_short_leaves_no_backup(postgres_admin: str, tmp_path: Path) -> None:
    name = worker_database_name("_cut")
    url = create_database(postgres_admin, name)
    try:
        upgrade_database(url)
        _fill_readings(url, 500_000)  # pg_dump copies them for a while
        target = make_url(url)
        with TcpProxy(str(target.host), target.port or 5432) as proxy:
            proxied = target.set(host="127.0.0.1", port=proxy.port)
            live = Platform(
                PostgresBackup(proxied.render_as_string(False)),
                LocalArtifactStore(tmp_path / "artifacts"),
            )
            failures: list[BaseException] = []
            run = threading.Thread(target=_backup, args=(live, tmp_path, failures))
            run.start()
            _cut_once_dumping(proxy, tmp_path / "backups")
            run.join(30)
    finally:
        drop_database(postgres_admin, name)

    assert [type(f) for f in failures] == [DependencyUnavailable]
    assert "pg_dump failed" in str(failures[0])
    assert list_backups(tmp_path / "backups") == []
    assert list((tmp_path / "backups").iterdir()) == []


def _backup(live: Platform, tmp_path: Path, failures: list[BaseException]) -> None:
    try:
        create_backup(live, tmp_path / "backups", NOW)
    except BaseException as exc:  # the test asserts on it
        failures.append(exc)


def _cut_once_dumping(proxy: TcpProxy, folder: Path) -> None:
    """Cut the connections once pg_dump has begun writing its file."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(p.stat().st_size for p in folder.glob("*/database.dump")):
            proxy.cut()
            return
        time.sleep(0.001)
    pytest.fail("pg_dump never began")
