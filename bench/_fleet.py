"""A registry of production z-score models for benchmarks, written in bulk."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy import insert
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.migrate import upgrade_database
from atalaia.adapters.db.tables import JobRow, SeriesRow, VersionRow

AXES = ("radial", "axial", "tangential")
DEFAULT_PARAMS = {"center": 0.3, "scale": 0.05, "threshold": 3.0}


def series_ids(n: int) -> list[str]:
    """`n` series ids, three axes per sensor."""
    return [f"sensor_{i // 3:06d}_{AXES[i % 3]}" for i in range(n)]


def database(home: Path, url: str | None) -> str:
    """`url` (default: a fresh SQLite file in `home`), created on PostgreSQL when
    missing, migrated to the schema."""
    url = url or f"sqlite:///{home / 'bench.db'}"
    if make_url(url).get_backend_name() == "postgresql":
        _create_if_missing(url)
    upgrade_database(url)
    return url


def _create_if_missing(url: str) -> None:
    target = make_url(url)
    admin = target.set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(False), autocommit=True) as conn:
        found = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (target.database,)
        ).fetchone()
        if found is None:
            conn.execute(
                sql.SQL("CREATE DATABASE {}").format(
                    sql.Identifier(str(target.database))
                )
            )


def fill_registry(
    sessions: sessionmaker[Session],
    ids: Sequence[str],
    params: Sequence[Mapping[str, float]] | None = None,
) -> None:
    """Version 1 of each series in production, with `params` (default: the same)."""
    now = datetime.now(UTC)
    every = params or [DEFAULT_PARAMS] * len(ids)
    with sessions() as session:
        session.execute(insert(JobRow), [
            {"job_id": f"job-{i}", "series_id": s, "status": "succeeded",
             "algorithm": "zscore", "hyperparameters": {}, "submitted_by": "bench",
             "created_at": now, "attempts": 1}
            for i, s in enumerate(ids)
        ])  # fmt: skip
        session.execute(insert(VersionRow), [
            {"series_id": s, "version": 1, "stage": "production", "algorithm": "zscore",
             **p, "metrics": {}, "reference": {}, "lineage": {},
             "job_id": f"job-{i}", "created_at": now}
            for i, (s, p) in enumerate(zip(ids, every, strict=True))
        ])  # fmt: skip
        session.execute(insert(SeriesRow), [
            {"series_id": s, "sensor_id": s.rsplit("_", 1)[0], "tags": {},
             "n_points": 10_080, "mean": 0.3, "m2": 25.2, "created_at": now}
            for s in ids
        ])  # fmt: skip
        session.commit()
