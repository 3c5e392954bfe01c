"""A registry of production models for benchmarks, written in bulk: flat
(z-score) models, or seasonal ones with hour-of-week bands."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from sqlalchemy import insert
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.migrate import upgrade_database
from atalaia.adapters.db.tables import JobRow, RegistryEventRow, SeriesRow, VersionRow
from atalaia.core.detectors.period import DAY, WEEK
from atalaia.core.detectors.phases import PhaseBand

AXES = ("radial", "axial", "tangential")
DEFAULT_PARAMS = {"center": 0.3, "scale": 0.05, "threshold": 3.0}
STAGES = ("production", "staging")  # of versions 1 and 2 (`fill_promotable`)
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


def holdout_metrics(rate: float) -> dict[str, float | str]:
    """The metrics of an `auto` version whose chosen family flagged `rate` of
    its holdout's readings."""
    return {
        "auto_chosen": "zscore",
        "auto_zscore_false_alarm_rate": rate,
        "auto_zscore_found": 1.0,
        "training_anomaly_rate": rate,
    }


def fill_promotable(
    sessions: sessionmaker[Session],
    ids: Sequence[str],
    rates: Sequence[tuple[float, float]] | None = None,
) -> None:
    """Each series with version 1 in Production and version 2 in Staging, both
    z-score models trained by `auto` (holdout false alarm rates of v1 and v2:
    `rates`, default 0.001 each), and the ledger's lines of how they got there;
    by COPY on PostgreSQL."""
    now = datetime.now(UTC)
    every = rates or [(0.001, 0.001)] * len(ids)
    params = tuple(DEFAULT_PARAMS.values())
    jobs: list[tuple[Any, ...]] = []
    versions: list[tuple[Any, ...]] = []
    ledger: list[tuple[Any, ...]] = []
    for i, (s, pair) in enumerate(zip(ids, every, strict=True)):
        for version, (stage, rate) in enumerate(zip(STAGES, pair, strict=True), 1):
            job = f"job-{i}-{version}"
            jobs.append((job, s, "succeeded", "auto", {}, "bench", now, 1))
            versions.append(
                (s, version, stage, "zscore", *params, holdout_metrics(rate), {}, {},
                 job, now)
            )  # fmt: skip
        ledger += [
            (s, 1, None, "staging", "bench", "", now),
            (s, 1, "staging", "production", "bench", "", now),
            (s, 2, None, "staging", "bench", "", now),
        ]  # fmt: skip
    with sessions() as session:
        _write(session, JobRow, JOB_COLUMNS, jobs)
        _write(session, VersionRow, VERSION_COLUMNS, versions)
        _write(session, RegistryEventRow, LEDGER_COLUMNS, ledger)
        session.commit()


JOB_COLUMNS = (
    "job_id", "series_id", "status", "algorithm", "hyperparameters", "submitted_by",
    "created_at", "attempts",
)  # fmt: skip
VERSION_COLUMNS = (
    "series_id", "version", "stage", "algorithm", *DEFAULT_PARAMS, "metrics",
    "reference", "lineage", "job_id", "created_at",
)  # fmt: skip
LEDGER_COLUMNS = (
    "series_id", "version", "from_stage", "to_stage", "actor", "reason", "at"
)  # fmt: skip


def _write(
    session: Session,
    table: type[Any],
    columns: Sequence[str],
    rows: list[tuple[Any, ...]],
) -> None:
    """Insert `rows` (values of `columns`) into `table`: by COPY on PostgreSQL."""
    if session.get_bind().dialect.name != "postgresql":
        session.execute(
            insert(table), [dict(zip(columns, r, strict=True)) for r in rows]
        )
        return
    name = table.__tablename__
    copy = f"COPY {name} ({', '.join(columns)}) FROM STDIN"
    raw = session.connection().connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(copy) as out:  # type: ignore[union-attr]
        for row in rows:
            out.write_row([Jsonb(v) if isinstance(v, dict) else v for v in row])
