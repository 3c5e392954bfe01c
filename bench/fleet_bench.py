"""Weekly retraining of a fleet on PostgreSQL: ingest a week of every series, then
retrain them all in one batch (with `algorithm`: zscore by default, or any
family a series is fitted with alone, e.g. seasonal).

The database is a fresh one on the local PostgreSQL, created and dropped here,
unless `--url` names one (left in place). Readings go in through the ingest
service (`append_many_points`: one binary COPY per batch of series); the
reference is a bare COPY of the same rows by psycopg into a twin of the readings
table (with the series keys the ingest gave, read before the clock starts).
Retraining is `POST /training/batch` on the training service (`atalaia serve
--role training`), whose in-process executor trains chunks of jobs, timed until
every job has ended; the CPU time is the service process's.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.db.migrate import upgrade_database
from atalaia.adapters.db.repositories._pg_binary import (
    COPY_HEADER,
    COPY_TRAILER,
    copy_tuples,
)
from atalaia.adapters.db.tables import JobRow, VersionRow
from atalaia.api.common.auth import Role
from atalaia.api.common.resources import authenticator_for
from atalaia.core.jobs import JobStatus
from atalaia.core.series import Readings, TimeRange
from atalaia.services.ingest import append_many_points
from atalaia.settings import Settings
from bench._fleet import fresh_database, series_ids
from bench._servers import atalaia_serve, free_port, serve

DATABASE = "atalaia_bench_fleet"
START = 1_733_011_200.0
STEP_S = 60.0
INGEST_BATCH = 250  # series per ingest transaction
FLEET = 285_000
RETRAIN_TIMEOUT_S = 1_800.0
COPY_REFERENCE = "COPY readings_copy (series_key, ts, value) FROM STDIN (FORMAT BINARY)"


def fleet_retrain(
    series: int, points: int, url: str | None, threads: int, algorithm: str
) -> dict[str, float | int]:
    """Ingest `points` readings of `series` series, then retrain every series
    with `algorithm`."""
    ids = sorted(series_ids(series))
    with fresh_database(url, DATABASE) as db_url, tempfile.TemporaryDirectory() as home:
        upgrade_database(db_url)
        engine = make_engine(db_url)
        try:
            ingest_s, copy_s = _ingest_s(engine, ids, points)
            accept_s, retrain_s, cpu_s = _retrain(
                db_url, Path(home), threads, algorithm
            )
            registered, succeeded = _outcome(make_session_factory(engine))
        finally:
            engine.dispose()
    if registered != series:
        raise RuntimeError(f"{registered} versions registered for {series} series")
    readings = series * points
    return {
        "series": series,
        "points": points,
        "ingest_s": ingest_s,
        "ingest_readings_per_s": readings / ingest_s,
        "copy_ref_readings_per_s": readings / copy_s,
        "ingest_vs_copy": copy_s / ingest_s,
        "retrain_s": retrain_s,
        "batch_accept_s": accept_s,
        "registered": registered,
        "jobs_succeeded": succeeded,
        "per_series_ms": retrain_s / series * 1000,
        "worker_cpu_ms_per_series": cpu_s / series * 1000,
        "fleet_285k_min_per_core_extrapolated": cpu_s / series * FLEET / 60,
        "fleet_285k_min_wall_extrapolated": retrain_s / series * FLEET / 60,
    }


def _week(ids: list[str], points: int, seed: int) -> dict[str, Readings]:
    """A daily sine and noise per series, one reading every `STEP_S`."""
    rng = np.random.default_rng(seed)
    timestamps = START + STEP_S * np.arange(points, dtype=np.float64)
    daily = 0.05 * np.sin(2 * np.pi * (timestamps - START) / 86_400.0)
    values = 0.3 + daily + rng.normal(0.0, 0.01, (len(ids), points))
    return {sid: Readings(timestamps, values[i]) for i, sid in enumerate(ids)}


def _batches(ids: list[str], points: int) -> Iterator[dict[str, Readings]]:
    for start in range(0, len(ids), INGEST_BATCH):
        yield _week(ids[start : start + INGEST_BATCH], points, seed=start)


def _ingest_s(engine: Engine, ids: list[str], points: int) -> tuple[float, float]:
    """(seconds through the ingest service, seconds of the bare COPY reference).

    Batch by batch, the same rows go to the readings table through the service
    and to a twin table by a bare psycopg COPY, so that both meet the same table
    sizes and the same machine load.
    """
    sessions = make_session_factory(engine)
    raw = engine.raw_connection()
    ingest_s = copy_s = 0.0
    try:
        twin = raw.driver_connection
        assert isinstance(twin, psycopg.Connection)
        twin.execute("CREATE TABLE readings_copy (LIKE readings INCLUDING ALL)")
        twin.commit()
        for batch in _batches(ids, points):
            started = time.perf_counter()
            with sessions() as session:
                append_many_points(session=session, batch=batch, span=TimeRange())
                session.commit()
            ingest_s += time.perf_counter() - started
            keys = _keys(twin, list(batch))  # given by the ingest just timed
            started = time.perf_counter()
            _copy(twin, batch, keys)
            copy_s += time.perf_counter() - started
        twin.execute("DROP TABLE readings_copy")
        twin.commit()
    finally:
        raw.close()
    return ingest_s, copy_s


def _keys(connection: psycopg.Connection[Any], ids: list[str]) -> dict[str, int]:
    rows = connection.execute(
        "SELECT series_id, key FROM series WHERE series_id = ANY(%s)", (ids,)
    )
    keys = {str(series_id): int(key) for series_id, key in rows}
    connection.commit()
    return keys


def _copy(
    connection: psycopg.Connection[Any],
    batch: dict[str, Readings],
    keys: dict[str, int],
) -> None:
    with connection.cursor() as cursor, cursor.copy(COPY_REFERENCE) as copy:
        copy.write(COPY_HEADER)
        for sid, readings in batch.items():
            copy.write(copy_tuples(keys[sid], readings.timestamps, readings.values))
        copy.write(COPY_TRAILER)
    connection.commit()


def _retrain(
    url: str, home: Path, threads: int, algorithm: str
) -> tuple[float, float, float]:
    """(seconds to the 202, to every job ended, the service's CPU seconds)."""
    secret = secrets.token_urlsafe(48)
    settings = Settings(home=home, database_url=url, jwt_secret=secret)
    token = authenticator_for(settings).issue(subject="b", role=Role.ADMIN, ttl_s=3600)
    port = free_port()
    argv = atalaia_serve(port, "training")
    env = {
        "ATALAIA_HOME": str(home),
        "ATALAIA_DATABASE_URL": url,
        "ATALAIA_JWT_SECRET": secret,
        "ATALAIA_LOG_LEVEL": "WARNING",
        "ATALAIA_TRAINING_MIN_INTERVAL_S": "0",
        "ATALAIA_TRAINING_THREADS": str(threads),
    }
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    log = home / "serve.log"
    with serve(argv, port=port, ready_path="/ready", env=env, log_path=log) as server:
        cpu, started = server.cpu_seconds(), time.perf_counter()
        response = httpx.post(
            f"{server.base_url}/api/v1/training/batch",
            json={
                "all_series": True,
                "window_hours": 168,
                "config": {"algorithm": algorithm},
            },
            headers={"Authorization": f"Bearer {token}"},
            timeout=RETRAIN_TIMEOUT_S,
        )
        assert response.status_code == 202, response.text
        accepted = time.perf_counter() - started
        while _unfinished(sessions):
            if time.perf_counter() - started > RETRAIN_TIMEOUT_S:
                raise RuntimeError("the batch did not finish in time")
            time.sleep(0.05)
        seconds, cpu_s = time.perf_counter() - started, server.cpu_seconds() - cpu
    engine.dispose()
    return accepted, seconds, cpu_s


def _unfinished(sessions: sessionmaker[Session]) -> int:
    unfinished = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)
    with sessions() as session:
        stmt = select(func.count()).where(JobRow.status.in_(unfinished))
        return int(session.scalar(stmt) or 0)


def _outcome(sessions: sessionmaker[Session]) -> tuple[int, int]:
    """(versions registered, jobs succeeded)."""
    succeeded = JobRow.status == JobStatus.SUCCEEDED.value
    with sessions() as session:
        versions = session.scalar(select(func.count()).select_from(VersionRow))
        jobs = session.scalar(select(func.count()).where(succeeded))
    return int(versions or 0), int(jobs or 0)
