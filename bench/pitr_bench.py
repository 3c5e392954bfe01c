"""Point-in-time recovery through pgBackRest on a throwaway cluster
(`bench/_archiving_cluster.py`): how far the WAL archive trails a commit, and
how long the drill's restore takes.

`models` production versions and `readings` hot readings are written after
the full backup (all of it replayed from the WAL: a base backup a day old),
then a restore point is made and the WAL archived. Figures:

- `ship_s`: a segment closed by `pg_switch_wal()` → in the repository
  (archive-push, asynchronous, zstd);
- `lag_s_mean`, `lag_s_max`: a commit → its segment in the repository, the
  server writing nothing else, with `archive_timeout_s`: the RPO of a quiet
  server (a busy one fills segments, and ships them, sooner);
- `restore_s`: `pgbackrest restore --type=name` of the data directory;
- `recovery_s`: the server started → the WAL replayed to the restore point
  and the server promoted; `rto_s` = restore + recovery (the database only:
  the services' reload of their models comes on top, `python -m bench backup`);
- `database_mb`, `wal_mb`: the database's size, the WAL written since the backup.
"""

from __future__ import annotations

import statistics
import time

import psycopg

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.db.migrate import upgrade_database
from bench._archiving_cluster import ArchivingCluster, archiving_cluster
from bench._fleet import fill_registry, series_ids
from bench.backup_bench import add_readings

RESTORE_POINT = "bench-pitr"


def pitr(
    models: int, readings: int, *, archive_timeout_s: int = 30, samples: int = 3
) -> dict[str, float | int]:
    """Fill a cluster after its full backup, measure the archive's lag, restore."""
    with archiving_cluster(archive_timeout_s=archive_timeout_s) as cluster:
        start_lsn = _sql(cluster, "SELECT pg_current_wal_lsn()::text")
        _fill(cluster.url, models, readings)
        _sql(cluster, f"SELECT pg_create_restore_point('{RESTORE_POINT}')")
        wal_mb = float(
            _sql(
                cluster,
                f"SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{start_lsn}') / 2^20",
            )
        )
        database_mb = float(
            _sql(cluster, "SELECT pg_database_size(current_database()) / 2^20")
        )
        ship_s = _ship(cluster)
        lags = [_lag(cluster) for _ in range(samples)]
        restore_s, recovery_s = _restore(cluster)
        restored = int(_sql(cluster, "SELECT count(*) FROM model_versions"))
    if restored != models:
        raise RuntimeError(f"{restored} model versions restored, {models} written")
    return {
        "models": models,
        "readings": readings,
        "archive_timeout_s": archive_timeout_s,
        "ship_s": round(ship_s, 2),
        "lag_s_mean": round(statistics.fmean(lags), 1),
        "lag_s_max": round(max(lags), 1),
        "database_mb": round(database_mb, 1),
        "wal_mb": round(wal_mb, 1),
        "restore_s": round(restore_s, 1),
        "recovery_s": round(recovery_s, 1),
        "rto_s": round(restore_s + recovery_s, 1),
    }


def _fill(url: str, models: int, readings: int) -> None:
    upgrade_database(url)
    engine = make_engine(url)
    try:
        fill_registry(make_session_factory(engine), series_ids(models))
    finally:
        engine.dispose()
    add_readings(url, models, readings)


def _ship(cluster: ArchivingCluster) -> float:
    """Seconds from a segment closed to its arrival in the repository (the
    archive emptied first)."""
    cluster.wait_archived(_switch(cluster), timeout_s=600)
    _sql(cluster, "CREATE TABLE bench_pitr (at timestamptz)")  # a segment to close
    started = time.perf_counter()
    cluster.wait_archived(_switch(cluster))
    return time.perf_counter() - started


def _lag(cluster: ArchivingCluster) -> float:
    """Seconds from a commit to its segment in the repository (archive_timeout
    closes the segment)."""
    started = time.perf_counter()
    _sql(cluster, "INSERT INTO bench_pitr VALUES (now())")
    segment = _sql(cluster, "SELECT pg_walfile_name(pg_current_wal_lsn())")
    cluster.wait_archived(segment, timeout_s=3600)
    return time.perf_counter() - started


def _restore(cluster: ArchivingCluster) -> tuple[float, float]:
    """Seconds of `pgbackrest restore`, then of recovery to the promoted server."""
    cluster.stop()
    started = time.perf_counter()
    cluster.restore(target_type="name", target=RESTORE_POINT)
    restored = time.perf_counter()
    cluster.start()
    cluster.wait_promoted(timeout_s=3600)
    return restored - started, time.perf_counter() - restored


def _switch(cluster: ArchivingCluster) -> str:
    return _sql(cluster, "SELECT pg_walfile_name(pg_switch_wal())")


def _sql(cluster: ArchivingCluster, query: str) -> str:
    """The one value `query` answers, as text ("" for a statement)."""
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        cursor = conn.execute(query)
        row = cursor.fetchone() if cursor.description else None
    return "" if row is None else str(row[0])
