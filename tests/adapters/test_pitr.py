"""The point-in-time recovery drill, for real: a throwaway PostgreSQL cluster
archives its WAL through pgBackRest (`bench/_archiving_cluster.py`); atalaia
migrates it and registers model versions, a restore point (or a time) is
noted, more versions follow; the data directory is deleted and restored to
that point from the full backup and the archive: the versions up to it are
back, the later ones are not. And the RPO gauges of the training service
(`WalArchive`) read on such a cluster, on one not archiving and on SQLite.

Needs pgBackRest and PostgreSQL's server binaries (`apt-get install
pgbackrest`): without them it skips, or fails under ATALAIA_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from bench._archiving_cluster import (
    ArchivingCluster,
    archiving_cluster,
    server_binaries,
)

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.db.migrate import upgrade_database
from atalaia.adapters.db.repositories import ModelStore
from atalaia.adapters.db.wal_archive import WalArchiveStatus, wal_archive_status
from atalaia.api.training.metrics import WAL_ARCHIVE_METRICS, WalArchive
from fixtures import require_service
from fixtures.factories import SERIES, model_version
from fixtures.registry import store_version

RESTORE_POINT = "atalaia-drill"


@pytest.fixture
def cluster() -> Iterator[ArchivingCluster]:
    require_service("pgBackRest and PostgreSQL's server", server_binaries)
    with archiving_cluster() as started:
        yield started


def register(url: str, numbers: range) -> None:
    """Register versions `numbers` of SERIES, each with the job that trained
    it, through atalaia's stores."""
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            for number in numbers:
                store_version(session, model_version(number), actor="pitr-drill")
            session.commit()
    finally:
        engine.dispose()


def registered(url: str) -> list[int]:
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            return [v.version for v in ModelStore(session).versions(SERIES)]
    finally:
        engine.dispose()


def mark(url: str, target_type: str) -> str:
    """A recovery target just after what is committed: a named restore point,
    or the server's clock."""
    with psycopg.connect(url, autocommit=True) as conn:
        if target_type == "name":
            conn.execute("SELECT pg_create_restore_point(%s)", (RESTORE_POINT,))
            return RESTORE_POINT
        row = conn.execute("SELECT clock_timestamp()::text").fetchone()
    assert row is not None
    return str(row[0])


def switch_wal(url: str) -> str:
    """Close the current WAL segment (archived next); its name."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
    assert row is not None
    return str(row[0])


@pytest.mark.postgres
@pytest.mark.parametrize("target_type", ["name", "time"])
def test_a_restore_to_a_point_brings_back_what_was_committed_before_it(
    cluster: ArchivingCluster, target_type: str
) -> None:
    upgrade_database(cluster.url)
    register(cluster.url, range(1, 4))
    target = mark(cluster.url, target_type)
    register(cluster.url, range(4, 6))
    cluster.wait_archived(switch_wal(cluster.url))
    assert registered(cluster.url) == [5, 4, 3, 2, 1]

    cluster.stop()
    cluster.restore(target_type=target_type, target=target)
    cluster.start()
    cluster.wait_promoted()

    assert registered(cluster.url) == [3, 2, 1]


def archive_status(url: str) -> WalArchiveStatus | None:
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            return wal_archive_status(session)
    finally:
        engine.dispose()


def exported(url: str) -> set[str]:
    """The names of the samples `WalArchive` exports for the database at `url`."""
    engine = make_engine(url)
    try:
        families = WalArchive(make_session_factory(engine)).collect()
        return {sample.name for family in families for sample in family.samples}
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_the_archive_gauges_show_wal_left_behind_and_failures(
    cluster: ArchivingCluster,
) -> None:
    switch_wal(cluster.url)
    # The server counts the closed segment archived (nothing written since).
    shipped = wait_for(cluster.url, lambda s: (s.unarchived_bytes or 0) < 2**20)
    upgrade_database(cluster.url)  # WAL written past the archived segment
    written = archive_status(cluster.url)
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET archive_command = 'false'")
        conn.execute("SELECT pg_reload_conf()")
    switch_wal(cluster.url)
    failing = wait_for(cluster.url, lambda s: s.failures > 0)

    assert written is not None
    assert shipped.failures == written.failures == 0
    assert shipped.age_s >= 0
    assert shipped.unarchived_bytes is not None
    assert written.unarchived_bytes is not None
    assert written.unarchived_bytes > shipped.unarchived_bytes + 100_000  # schema
    assert failing.failures > 0
    assert exported(cluster.url) == set(WAL_ARCHIVE_METRICS)


def wait_for(url: str, done: Callable[[WalArchiveStatus], bool]) -> WalArchiveStatus:
    """The archive's status once `done` holds (the archiver acts within
    seconds: it retries a failure every second)."""
    for _ in range(1200):
        status = archive_status(url)
        assert status is not None
        if done(status):
            return status
        time.sleep(0.1)
    raise AssertionError(f"the archive never got there: {status}")


@pytest.mark.postgres
def test_nothing_is_exported_without_archiving(
    postgres_admin: str, tmp_path: Path
) -> None:
    sqlite = f"sqlite:///{tmp_path / 'atalaia.db'}"
    with psycopg.connect(postgres_admin) as conn:
        mode = conn.execute("SHOW archive_mode").fetchone()

    assert mode == ("off",), "the machine's PostgreSQL archives: no case here"
    assert archive_status(postgres_admin) is None
    assert archive_status(sqlite) is None
    assert exported(postgres_admin) == exported(sqlite) == set()
