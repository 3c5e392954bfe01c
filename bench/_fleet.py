"""A registry of production models for benchmarks, written in bulk: flat
(z-score) models, or seasonal ones with hour-of-week bands."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg import sql
from sqlalchemy import insert
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.migrate import upgrade_database
from atalaia.adapters.db.tables import JobRow, SeriesRow, VersionRow
from atalaia.core.detectors.period import DAY, WEEK
from atalaia.core.detectors.phases import PhaseBand

AXES = ("radial", "axial", "tangential")
DEFAULT_PARAMS = {"center": 0.3, "scale": 0.05, "threshold": 3.0}
WEEK_PHASES = 168  # an hour of the week each
Floats = npt.NDArray[np.float64]


def series_ids(n: int) -> list[str]:
    """`n` series ids, three axes per sensor."""
    return [f"sensor_{i // 3:06d}_{AXES[i % 3]}" for i in range(n)]


def week_bands(
    rng: np.random.Generator, base: Floats, width: Floats
) -> list[PhaseBand]:
    """One hour-of-week band per series around its `base`, as a seasonal fit of
    a working machine would find: a daily cycle (its own amplitude, 1 to 5 ×
    its `width`, and hour of peak) damped to a fifth on weekends, with noise of
    a tenth of it; half-widths from 0.6 to 1.44 × `width`, wider at the busy
    hours.

    >>> [b] = week_bands(np.random.default_rng(0), np.ones(1), np.ones(1))
    >>> b.period, b.phases, bool(b.width.min() > 0)
    (604800.0, 168, True)
    """
    n, f4 = base.size, np.float32  # the phases are float32: so is their making
    hours = (np.arange(WEEK_PHASES, dtype=f4) + 0.5) * 3600  # the phases' centres
    # Day 0 of the epoch is a Thursday: days 2 and 3 of each week are weekends.
    damping = np.where(np.isin(hours // DAY, (2, 3)), 0.2, 1.0).astype(f4)
    peak = rng.uniform(0.0, DAY, (n, 1)).astype(f4)
    daily = np.sin((hours - peak) * f4(2 * np.pi / DAY)) * damping
    amplitude = (rng.uniform(1.0, 5.0, n) * width).astype(f4)[:, None]
    noise = rng.standard_normal((n, WEEK_PHASES), f4) * f4(0.1)
    departure = amplitude * (daily + noise)
    spread = rng.random((n, WEEK_PHASES), f4) * f4(0.6) + f4(0.6)
    half = width.astype(f4)[:, None] * spread * (1 + f4(0.2) * np.abs(daily))
    return [
        PhaseBand(WEEK, b, d, w)
        for b, d, w in zip(base.tolist(), departure, half, strict=True)
    ]


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
    algorithm: str = "zscore",
    bands: Sequence[PhaseBand] | None = None,
    artifacts: Sequence[str | None] | None = None,
    streams: Sequence[bytes | None] | None = None,
) -> None:
    """Version 1 of each series in production: `algorithm` with `params` (default:
    the same for all) and, for a seasonal model, a forest or a streaming model,
    its band (`params`' centre being its base, as training registers it); a
    forest's `artifacts`: its key in the artifact store; a streaming model's
    `streams`: its packed params and state (`StreamFamily.pack`)."""
    now = datetime.now(UTC)
    every = params or [DEFAULT_PARAMS] * len(ids)
    stored = [b.to_bytes() for b in bands] if bands else [None] * len(ids)
    keys = artifacts or [None] * len(ids)
    packed = streams or [None] * len(ids)
    with sessions() as session:
        session.execute(insert(JobRow), [
            {"job_id": f"job-{i}", "series_id": s, "status": "succeeded",
             "algorithm": algorithm, "hyperparameters": {}, "submitted_by": "bench",
             "created_at": now, "attempts": 1}
            for i, s in enumerate(ids)
        ])  # fmt: skip
        session.execute(insert(VersionRow), [
            {"series_id": s, "version": 1, "stage": "production",
             "algorithm": algorithm, **p, "band": band, "metrics": {},
             "reference": {}, "lineage": {}, "job_id": f"job-{i}",
             "created_at": now, "artifact": key, "stream": stream}
            for i, (s, p, band, key, stream) in enumerate(
                zip(ids, every, stored, keys, packed, strict=True)
            )
        ])  # fmt: skip
        session.execute(insert(SeriesRow), [
            {"series_id": s, "sensor_id": s.rsplit("_", 1)[0], "tags": {},
             "n_points": 10_080, "mean": 0.3, "m2": 25.2, "created_at": now}
            for s in ids
        ])  # fmt: skip
        session.commit()


ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def fresh_database(url: str | None, name: str) -> Iterator[str]:
    """`url` (PostgreSQL), or a fresh database `name` on the local PostgreSQL,
    dropped afterwards."""
    if url is not None:
        if make_url(url).get_backend_name() != "postgresql":
            raise ValueError("this benchmark runs on PostgreSQL")
        yield url
        return
    _drop(name)
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(False)
    finally:
        _drop(name)


def _drop(name: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
