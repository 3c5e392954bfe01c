"""Benchmarks of the data layer: warm loading the model table, running jobs."""

from __future__ import annotations

import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.db.repositories import ReadingStore
from atalaia.adapters.db.serving import DatabaseServingStore
from atalaia.adapters.db.tables import VersionRow
from atalaia.adapters.storage import LocalArtifactStore
from atalaia.core.detectors.catalog import SEASONAL
from atalaia.core.series import Readings
from atalaia.services import training
from atalaia.services.inference import Predictor
from bench._fleet import DEFAULT_PARAMS, database, fill_registry, series_ids, week_bands
from bench._servers import atalaia_serve, free_port, serve

SPAWNS = 3  # inference processes started by warm-load
IMPORTS = [sys.executable, "-c", "import atalaia.cli, atalaia.api.inference"]
# What a warm load reads, as plain SQL for the driver.
BARE_QUERIES = (
    "SELECT series_id, version, algorithm, center, scale, threshold, band "
    "FROM model_versions WHERE stage = 'production'",
    "SELECT series_id, mean, m2, n_points FROM series",
)


def warm_load(models: int, url: str | None, algorithm: str) -> dict[str, float | int]:
    """Start the inference service on `models` production versions of
    `algorithm` until ready (seasonal: hour-of-week bands, `week_bands`).

    Each of SPAWNS processes is timed from spawn to GET /ready answering 200
    with every model loaded (median and max), then to its snapshot written; its
    RSS is read then. In-process: Predictor.reload_all and the table's size.
    References: the interpreter importing the service, and the same rows read
    by the bare database driver. On a given `url`, the registry is filled once.
    """
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        url = database(home, url)
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        _fill_once(sessions, models, algorithm)
        predictor = Predictor(
            DatabaseServingStore(sessions), snapshot_path=home / "snapshot.npz"
        )
        started = time.perf_counter()
        predictor.reload_all()
        reload_s = time.perf_counter() - started
        query_s = _bare_query_s(engine)
        engine.dispose()
        spawns = [_spawn(home / f"spawn{i}", url, models) for i in range(SPAWNS)]
        imports_s = [_run_s(IMPORTS) for _ in range(SPAWNS)]
    ready_s, snapshot_s, rss_mb = zip(*spawns, strict=True)
    return {
        "models": len(predictor.table),
        "ready_s": statistics.median(ready_s),
        "ready_max_s": max(ready_s),
        "snapshot_s": statistics.median(snapshot_s),
        "rss_mb": statistics.median(rss_mb),
        "table_mb": predictor.table.nbytes() / 1e6,
        "reload_s": reload_s,
        "ref_imports_s": statistics.median(imports_s),
        "ref_query_s": query_s,
    }


def _fill_once(sessions: sessionmaker[Session], models: int, algorithm: str) -> None:
    with sessions() as session:
        present = session.scalar(select(func.count()).select_from(VersionRow))
        others = session.scalar(
            select(func.count()).where(VersionRow.algorithm != algorithm)
        )
    if not present:
        bands = None
        if algorithm == SEASONAL.name:
            p = DEFAULT_PARAMS
            base = np.full(models, p["center"])
            width = np.full(models, p["scale"] * p["threshold"])
            bands = week_bands(np.random.default_rng(0), base, width)
        fill_registry(sessions, series_ids(models), None, algorithm, bands)
    elif present != models or others:
        raise RuntimeError(
            f"the database holds {present} model versions ({others} not "
            f"{algorithm}), not {models}: give warm-load an empty database (or "
            "the --models and --algorithm it was filled with)"
        )


def _bare_query_s(engine: Engine) -> float:
    """Seconds for the driver alone to return the rows a warm load reads."""
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        started = time.perf_counter()
        for sql in BARE_QUERIES:
            cursor.execute(sql)
            cursor.fetchall()
        return time.perf_counter() - started
    finally:
        connection.close()


def _spawn(home: Path, url: str, models: int) -> tuple[float, float, float]:
    """(seconds to ready, seconds to the snapshot written, RSS MB) of one process."""
    port = free_port()
    argv = atalaia_serve(port, "inference")
    env = {
        "ATALAIA_HOME": str(home),
        "ATALAIA_DATABASE_URL": url,
        "ATALAIA_JWT_SECRET": secrets.token_urlsafe(48),
        "ATALAIA_LOG_LEVEL": "WARNING",
    }
    home.mkdir()
    started = time.perf_counter()
    with serve(
        argv, port=port, ready_path="/ready", env=env, log_path=home / "serve.log"
    ) as server:
        ready_s = time.perf_counter() - started
        body = httpx.get(f"{server.base_url}/ready").json()
        detail = body["checks"]["models"]["detail"]
        if detail != f"{models} models from database":
            raise RuntimeError(f"ready with {detail}, not {models} models")
        snapshot = home / "inference-snapshot.npz"
        while not snapshot.exists():
            if time.perf_counter() - started > 60:
                raise RuntimeError("no snapshot written within 60 s")
            time.sleep(0.01)
        return ready_s, time.perf_counter() - started, server.rss_mb()


def _run_s(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True)
    return time.perf_counter() - started


def train_jobs(series: int, url: str | None) -> dict[str, float | int]:
    """Train each series from its stored week (10,080 readings): job by job, then
    every series again as one chunk fitted in one pass."""
    with tempfile.TemporaryDirectory() as home:
        engine = make_engine(database(Path(home), url))
        sessions = make_session_factory(engine)
        artifacts = LocalArtifactStore(Path(home) / "artifacts")
        rng = np.random.default_rng(0)
        timestamps = 1_733_011_200.0 + 60.0 * np.arange(10_080, dtype=np.float64)
        ids = [f"bench_{i}" for i in range(series)]
        with sessions() as session:
            ReadingStore(session).append_many(
                {
                    sid: Readings(timestamps, rng.normal(0.3, 0.05, 10_080))
                    for sid in ids
                }
            )
            session.commit()
        started = time.perf_counter()
        for job_id in _submit_weeks(sessions, ids):
            training.run_training_job(job_id, sessions=sessions, artifacts=artifacts)
        one_by_one = time.perf_counter() - started
        job_ids = _submit_weeks(sessions, ids)
        started = time.perf_counter()
        training.run_training_chunk(job_ids, sessions=sessions, artifacts=artifacts)
        chunk = time.perf_counter() - started
        engine.dispose()
    return {
        "series": series,
        "total_s": one_by_one,
        "per_job_ms": one_by_one / series * 1000,
        "chunk_s": chunk,
        "chunk_per_job_ms": chunk / series * 1000,
    }


def _submit_weeks(sessions: sessionmaker[Session], ids: list[str]) -> list[str]:
    with sessions() as session:
        submission = training.submit_batch(
            session=session, series_ids=ids, algorithm="robust", hyperparameters={},
            window_hours=168, actor="bench", min_interval_s=0,
        )  # fmt: skip
        session.commit()
    return [job.job_id for job in submission.accepted]
