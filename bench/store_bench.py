"""Benchmarks of the data layer: warm loading the model table, running jobs."""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.db.migrate import upgrade_database
from atalaia.adapters.db.repositories import ReadingStore
from atalaia.adapters.db.tables import JobRow, SeriesRow, VersionRow
from atalaia.adapters.storage import LocalArtifactStore
from atalaia.core.series import Readings
from atalaia.services import training
from atalaia.services.inference import Predictor


def _database(home: Path, url: str | None) -> str:
    url = url or f"sqlite:///{home / 'bench.db'}"
    upgrade_database(url)
    return url


def warm_load(models: int, url: str | None) -> dict[str, float | int]:
    """Load `models` production versions into a fresh inference table."""
    with tempfile.TemporaryDirectory() as home:
        engine = make_engine(_database(Path(home), url))
        sessions = make_session_factory(engine)
        ids = [f"sensor_{i // 3:06d}_{('radial', 'axial', 'tangential')[i % 3]}"
               for i in range(models)]  # fmt: skip
        _fill_registry(sessions, ids)
        predictor = Predictor(sessions, snapshot_path=Path(home) / "snapshot.npz")
        started = time.perf_counter()
        predictor.reload_all()
        seconds = time.perf_counter() - started
        loaded = len(predictor.table)
        engine.dispose()
    return {
        "models": loaded,
        "load_s": seconds,
        "table_mb": predictor.table.nbytes() / 1e6,
    }


def _fill_registry(sessions: sessionmaker[Session], ids: list[str]) -> None:
    now = datetime.now(UTC)
    with sessions() as session:
        session.execute(insert(JobRow), [
            {"job_id": f"job-{i}", "series_id": s, "status": "succeeded",
             "algorithm": "zscore", "hyperparameters": {}, "submitted_by": "bench",
             "created_at": now, "attempts": 1}
            for i, s in enumerate(ids)
        ])  # fmt: skip
        session.execute(insert(VersionRow), [
            {"series_id": s, "version": 1, "stage": "production", "algorithm": "zscore",
             "params": {"center": 0.3, "scale": 0.05, "threshold": 3.0}, "metrics": {},
             "reference": {}, "lineage": {}, "job_id": f"job-{i}", "created_at": now}
            for i, s in enumerate(ids)
        ])  # fmt: skip
        session.execute(insert(SeriesRow), [
            {"series_id": s, "sensor_id": s.rsplit("_", 1)[0], "tags": {},
             "n_points": 10_080, "mean": 0.3, "m2": 25.2, "created_at": now}
            for s in ids
        ])  # fmt: skip
        session.commit()


def train_jobs(series: int, url: str | None) -> dict[str, float | int]:
    """Run one training job per series from its stored week (10,080 readings)."""
    with tempfile.TemporaryDirectory() as home:
        engine = make_engine(_database(Path(home), url))
        sessions = make_session_factory(engine)
        artifacts = LocalArtifactStore(Path(home) / "artifacts")
        rng = np.random.default_rng(0)
        timestamps = 1_733_011_200.0 + 60.0 * np.arange(10_080, dtype=np.float64)
        with sessions() as session:
            for i in range(series):
                values = rng.normal(0.3, 0.05, timestamps.size)
                ReadingStore(session).append(f"bench_{i}", Readings(timestamps, values))
            jobs = [
                training.submit_training(
                    session=session,
                    artifacts=artifacts,
                    request=training.TrainingRequest(
                        f"bench_{i}", "robust", {}, window_hours=168
                    ),
                    actor="bench",
                    min_interval_s=0,
                )  # fmt: skip
                for i in range(series)
            ]
            session.commit()
        started = time.perf_counter()
        for job in jobs:
            training.run_training_job(
                job.job_id, sessions=sessions, artifacts=artifacts
            )
        seconds = time.perf_counter() - started
        engine.dispose()
    return {"series": series, "total_s": seconds, "per_job_ms": seconds / series * 1000}
