"""The console's training and registry views over a fleet-sized PostgreSQL:
`GET /training/batches` (a page, and one batch) and `GET /models/overview`.

A fresh database on the local PostgreSQL (created and dropped here, unless
`--url` names an empty one, left in place) gets, by COPY:

- a retraining batch of `jobs` jobs accepted an hour ago, in OUTCOMES' mixed
  statuses (most succeeded, a few failed or cancelled, some running, the rest
  queued), and `older` finished batches as large before it;
- `versions` model versions, three per series, each with its training job,
  in the stages of RECORDS, and the ledger that left them there in time
  order: the registrations of a version of every series, then its moves. The
  newest entries are a third of the series' latest registrations, so the
  ledger's promotions and rollbacks (`kind=`) have them to skip.

The tables are vacuumed and analyzed, as autovacuum leaves a database at rest.

The training service as deployed (`atalaia serve --role training`, no broker
reachable: the jobs stay as filled) answers one request at a time, `requests`
times each after WARMUP untimed ones: the page of batches, the batch alone,
the overview, and the overview with the ledger's promotions and rollbacks
only. Then a tenth of the batch moves on (queued jobs start, running ones
end) without a vacuum, as in the middle of a retraining, and the batch is
timed again (`*_running`). Targets, at rest: p99 ≤ 100 ms for the page of
batches, the batch and the overview.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from sqlalchemy.engine import make_url

from atalaia.adapters.db.migrate import upgrade_database
from atalaia.core.jobs import JobStatus
from atalaia.services.training import new_job_id
from bench._fleet import fresh_database, series_ids
from bench._report import p50_p99
from bench._servers import (
    atalaia_serve,
    free_port,
    get_ok,
    serve,
    service_env,
    timed_gets,
)
from bench.predict_bench import Figures, Target, judge

DATABASE = "atalaia_bench_ops"
WARMUP = 10
BATCH_AGE_S = 3_600.0
ALGORITHMS = ("zscore", "seasonal", "robust", "forecast")
# The batch's jobs by status: shares of the batch, the rest queued.
OUTCOMES = {
    JobStatus.SUCCEEDED: 0.60,
    JobStatus.FAILED: 0.01,
    JobStatus.CANCELLED: 0.005,
    JobStatus.RUNNING: 0.005,
}
MOVED = 0.1  # share of the batch that moves on between the two timings
JOB_COLUMNS = (
    "job_id", "series_id", "status", "algorithm", "hyperparameters",
    "window_hours", "submitted_by", "batch_id", "created_at", "started_at",
    "finished_at", "attempts", "version", "error",
)  # fmt: skip
VERSION_COLUMNS = (
    "series_id", "version", "stage", "algorithm", "center", "scale", "threshold",
    "metrics", "reference", "lineage", "job_id", "created_at",
)  # fmt: skip
EVENT_COLUMNS = (
    "series_id", "version", "from_stage", "to_stage", "actor", "reason", "at",
)  # fmt: skip
# Each third of the series: its versions' stages, and its ledger entries as
# (phase, version, from, to); a registration comes from None.
Move = tuple[int, int, str | None, str]
RECORDS: list[tuple[tuple[str, str, str], list[Move]]] = [
    (  # v1 then v2 promoted; v3 just trained, waiting
        ("archived", "production", "staging"),
        [
            (0, 1, None, "staging"),
            (1, 1, "staging", "production"),
            (2, 2, None, "staging"),
            (3, 1, "production", "archived"),
            (3, 2, "staging", "production"),
            (6, 3, None, "staging"),
        ],
    ),  # fmt: skip
    (  # v1 kept in staging when v2 came; v3 promoted, then rolled back
        ("staging", "production", "archived"),
        [
            (0, 1, None, "staging"),
            (1, 1, "staging", "production"),
            (2, 2, None, "staging"),
            (3, 1, "production", "staging"),
            (3, 2, "staging", "production"),
            (4, 3, None, "staging"),
            (5, 2, "production", "archived"),
            (5, 3, "staging", "production"),
            (5, 3, "production", "archived"),
            (5, 2, "archived", "production"),
        ],
    ),  # fmt: skip
    (  # promoted in turn
        ("archived", "archived", "production"),
        [
            (0, 1, None, "staging"),
            (1, 1, "staging", "production"),
            (2, 2, None, "staging"),
            (3, 1, "production", "archived"),
            (3, 2, "staging", "production"),
            (4, 3, None, "staging"),
            (5, 2, "production", "archived"),
            (5, 3, "staging", "production"),
        ],
    ),  # fmt: skip
]
TARGETS: list[Target] = [
    ("batches_page_p99_ms", "≤", 100),
    ("batch_p99_ms", "≤", 100),
    ("overview_p99_ms", "≤", 100),
]


def ops_views(
    jobs: int, older: int, versions: int, requests: int, url: str | None
) -> tuple[Figures, str]:
    """Fill a database, then time the routes over HTTP (see the module)."""
    with (
        fresh_database(url, DATABASE) as db_url,
        tempfile.TemporaryDirectory() as folder,
    ):
        upgrade_database(db_url)
        started = time.perf_counter()
        now = time.time()
        with psycopg.connect(_libpq(db_url)) as conn:
            for age in range(older, 0, -1):  # a week apart, oldest first
                _fill_batch(conn, jobs, now - age * 7 * 86_400, finished=True)
            batch_id = _fill_batch(conn, jobs, now, finished=False)
            _fill_registry(conn, versions, now)
            conn.commit()
        fill_s = time.perf_counter() - started
        _vacuum(db_url)
        timed = _time_routes(Path(folder), db_url, requests, batch_id)
    figures: Figures = {
        "jobs": jobs,
        "older_batches": older,
        "versions": versions,
        "requests": requests,
        "fill_s": round(fill_s, 1),
        **timed,
    }
    verdicts = judge(figures, TARGETS)
    names = [
        "batches_page", "batch", "overview", "overview_moves",
        "batches_page_running", "batch_running",
    ]  # fmt: skip
    lines = [
        f"{n}: p50 {figures[f'{n}_p50_ms']} ms, p99 {figures[f'{n}_p99_ms']} ms"
        for n in names
    ]
    return figures, "\n".join([*lines, *verdicts])


def _libpq(url: str) -> str:
    """A SQLAlchemy URL (`postgresql+psycopg://`) as psycopg takes it."""
    return make_url(url).set(drivername="postgresql").render_as_string(False)


def _copy(
    conn: psycopg.Connection[Any],
    table: str,
    columns: Sequence[str],
    rows: Iterator[Sequence[Any]],
) -> None:
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row([Jsonb(v) if isinstance(v, dict) else v for v in row])


def _statuses(n: int, rng: np.random.Generator) -> list[JobStatus]:
    """`n` statuses in OUTCOMES' shares (the rest queued), shuffled."""
    counts = {status: int(n * share) for status, share in OUTCOMES.items()}
    counts[JobStatus.QUEUED] = n - sum(counts.values())
    statuses = [s for s, k in counts.items() for _ in range(k)]
    return [statuses[i] for i in rng.permutation(n)]


def _fill_batch(
    conn: psycopg.Connection[Any], n: int, now: float, *, finished: bool
) -> str:
    """A batch of `n` jobs accepted BATCH_AGE_S before `now`, whose jobs
    started and ended since (all succeeded when `finished`)."""
    rng = np.random.default_rng(int(now))
    batch_id = new_job_id()
    created = datetime.fromtimestamp(now - BATCH_AGE_S, UTC)
    offsets = np.sort(rng.uniform(1, BATCH_AGE_S * 0.95, n)).tolist()
    statuses = (
        [JobStatus.SUCCEEDED] * n if finished else _statuses(n, rng)
    )  # fmt: skip

    def rows() -> Iterator[tuple[Any, ...]]:
        for i, (series_id, status) in enumerate(
            zip(series_ids(n), statuses, strict=True)
        ):
            started = created + timedelta(seconds=offsets[i])
            begun = status is not JobStatus.QUEUED
            yield (
                f"{batch_id[:24]}{i:012d}", series_id, status.value, "zscore",
                {"threshold_sigma": 3.0}, 168.0, "scheduler", batch_id, created,
                started if begun else None,
                started + timedelta(seconds=0.05) if status.terminal else None,
                int(begun), None,
                {"error": "InvalidSeries", "detail": "constant values"}
                if status is JobStatus.FAILED else None,
            )  # fmt: skip

    _copy(conn, "training_jobs", JOB_COLUMNS, rows())
    return batch_id


def _fill_registry(conn: psycopg.Connection[Any], n: int, now: float) -> None:
    """`n` versions, three per series (RECORDS), with their jobs and ledger."""
    ids = series_ids(n // 3)
    day = datetime.fromtimestamp(now - 86_400, UTC)

    def at(phase: int) -> datetime:
        return day + timedelta(hours=phase)

    def versions() -> Iterator[tuple[str, int, str, str]]:
        for i, series_id in enumerate(ids):
            stages, _ = RECORDS[i % len(RECORDS)]
            for number, stage in enumerate(stages, start=1):
                yield series_id, number, stage, ALGORITHMS[i % len(ALGORITHMS)]

    _copy(conn, "training_jobs", JOB_COLUMNS, (
        (f"reg-{sid}-{v}", sid, "succeeded", algorithm, {}, 168.0, "scheduler",
         None, at(2 * v - 2), at(2 * v - 2), at(2 * v - 2), 1, v, None)
        for sid, v, _, algorithm in versions()
    ))  # fmt: skip
    _copy(conn, "model_versions", VERSION_COLUMNS, (
        (sid, v, stage, algorithm, 0.3, 0.05, 3.0, {"train_anomaly_rate": 0.004},
         {}, {}, f"reg-{sid}-{v}", at(2 * v - 2))
        for sid, v, stage, algorithm in versions()
    ))  # fmt: skip
    moves = sorted(
        (phase, i, k, series_id, version, src, dst)
        for i, series_id in enumerate(ids)
        for k, (phase, version, src, dst) in enumerate(RECORDS[i % len(RECORDS)][1])
    )
    _copy(conn, "registry_events", EVENT_COLUMNS, (
        (series_id, version, src, dst, "ml-engineer" if src else "scheduler", "",
         at(phase))
        for phase, _, _, series_id, version, src, dst in moves
    ))  # fmt: skip


def _vacuum(url: str) -> None:
    """Vacuum and analyze the filled tables, as autovacuum leaves them at rest:
    the planner's statistics, and the visibility map index-only scans read."""
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        for table in ("training_jobs", "model_versions", "registry_events"):
            conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))


def _move_on(url: str, batch_id: str, n: int) -> None:
    """`n` jobs of the batch move on, half started, half ended, no vacuum after."""
    now = datetime.now(UTC)
    with psycopg.connect(_libpq(url)) as conn:
        for status, ended in (("running", False), ("succeeded", True)):
            conn.execute(
                "UPDATE training_jobs SET status = %s, started_at = %s, "
                "finished_at = %s, attempts = 1 WHERE job_id IN (SELECT job_id "
                "FROM training_jobs WHERE batch_id = %s AND status = %s LIMIT %s)",
                (status, now, now if ended else None, batch_id,
                 "queued" if not ended else "running", n // 2),
            )  # fmt: skip


def _time_routes(home: Path, url: str, requests: int, batch_id: str) -> Figures:
    env, token = service_env(home, url, rate_per_min=100 * requests)
    # No executor in the service, no broker to reach: the jobs stay put.
    env["ATALAIA_BROKER_URL"] = "amqp://guest@127.0.0.1:1//"
    port = free_port()
    batches = "/api/v1/training/batches"
    at_rest = {
        "batches_page": batches,
        "batch": f"{batches}/{batch_id}",
        "overview": "/api/v1/models/overview",
        "overview_moves": "/api/v1/models/overview?kind=promotion&kind=rollback",
    }
    with (
        serve(
            atalaia_serve(port, "training"), port=port, ready_path="/ready",
            env=env, log_path=home / "training.log",
        ) as server,
        httpx.Client(
            base_url=server.base_url, timeout=60,
            headers={"Authorization": f"Bearer {token}"},
        ) as http,
    ):  # fmt: skip
        figures = _timed_paths(http, at_rest, requests)
        total = int(get_ok(http, at_rest["batch"]).json()["total"])
        _move_on(url, batch_id, int(total * MOVED))
        running = {f"{k}_running": at_rest[k] for k in ("batches_page", "batch")}
        figures |= _timed_paths(http, running, requests)
    return figures


def _timed_paths(http: httpx.Client, paths: dict[str, str], requests: int) -> Figures:
    figures: Figures = {}
    for name, path in paths.items():
        samples, _ = timed_gets(http, path, requests, WARMUP)
        figures |= p50_p99(name, samples)
    return figures
