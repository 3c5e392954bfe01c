"""The console's series chart: `GET /series/{id}/chart` beside `GET /plot` JSON.

A database (PostgreSQL at `url`, else a fresh SQLite file) gets one series per
size in `sizes`, each holding that many readings over the 7 days the chart
shows by default: a daily cycle with noise, a spike every thousand readings
and a two-hour level shift, logged on ingest as change anomalies, and two
incidents. Each series has a seasonal model (version 1, trained on at most
100,000 of its readings). A series already holding its readings (a second
run on the same `url`) is used as it is.

The training and plot services as deployed (`atalaia serve --role training`,
`--role plot`) answer one request at a time: per series, `requests` charts of
the default window (`points` buckets, gzip accepted as a browser does) and of
a zoom to a hundredth of it (full detail), after WARMUP untimed ones; then the
reference, GET /plot?format=json of the same window, PLOT_REQUESTS times.
Figures: p50/p99 ms, the chart's body plain and gzipped (as sent), the plot's
plain and gzipped at the same level, and the chart / plot ratios.
"""

from __future__ import annotations

import gzip
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.db.repositories import AnomalyLog, IncidentStore, ReadingStore
from atalaia.adapters.storage import LocalArtifactStore
from atalaia.api.common.compression import GZIP_LEVEL
from atalaia.core.incidents import Anomaly, Grouper, IncidentPolicy
from atalaia.core.series import Readings
from atalaia.core.serving import ScoredAnomaly
from atalaia.services.training import TrainingRequest, run_training_job, submit_training
from bench._fleet import database
from bench._report import p50_p99
from bench._servers import (
    Server,
    atalaia_serve,
    free_port,
    get_ok,
    serve,
    service_env,
    timed_gets,
)
from bench.predict_bench import Figures, Target, judge

WEEK = 7 * 86_400.0
END = 1_767_225_600.0  # 2026-01-01T00:00:00Z: the newest reading
MAX_TRAINING = 100_000
CHUNK = 200_000  # readings stored a transaction
WARMUP = 3
PLOT_REQUESTS = 3
ZOOM = 0.01  # of the window
TARGETS: list[Target] = [("chart_100000_p99_ms", "≤", 500)]


def series_id(size: int) -> str:
    return f"bench_chart_{size}_radial"


def chart(
    sizes: list[int], requests: int, points: int, url: str | None
) -> tuple[Figures, str]:
    """Fill a database, then time the routes over HTTP (see the module)."""
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        url = database(home, url)
        engine = make_engine(url)
        figures: Figures = {"points": points, "requests": requests}
        for size in sizes:
            figures[f"fill_{size}_s"] = fill_series(engine, home, size)
        engine.dispose()
        figures |= _time_routes(home, url, sizes, requests, points)
    verdicts = judge(figures, [t for t in TARGETS if t[0] in figures])
    lines = [
        f"{n:>9,} readings: chart p50 {figures[f'chart_{n}_p50_ms']} ms, "
        f"p99 {figures[f'chart_{n}_p99_ms']} ms, "
        f"{figures[f'chart_{n}_gzip_bytes']:,} B gzipped "
        f"({figures[f'chart_{n}_plain_bytes']:,} plain); "
        f"/plot json p50 {figures[f'plot_{n}_p50_ms']} ms, "
        f"{figures[f'plot_{n}_plain_bytes']:,} B plain"
        for n in sizes
    ]
    return figures, "\n".join([*lines, *verdicts])


def fill_series(engine: Engine, home: Path, size: int) -> float:
    """Store the series of `size` readings, its log, incidents and model;
    seconds taken (0 when it was there already)."""
    sessions = make_session_factory(engine)
    sid = series_id(size)
    with sessions() as session:
        summary = ReadingStore(session).get_series(sid)
    if summary is not None and summary.n_points == size:
        return 0.0
    if summary is not None:
        raise RuntimeError(f"{sid} holds other readings: give the bench a new database")
    started = time.perf_counter()
    readings, shift = _readings(size)
    for first in range(0, size, CHUNK):
        part = Readings(
            readings.timestamps[first : first + CHUNK],
            readings.values[first : first + CHUNK],
        )
        with sessions() as session:
            ReadingStore(session).append(sid, part)
            session.commit()
    _log_and_incidents(sessions, sid, readings, shift)
    _train(sessions, home, sid, readings)
    _analyze(engine)
    return round(time.perf_counter() - started, 1)


def _readings(size: int) -> tuple[Readings, slice]:
    """`size` readings over the week before END: 10 + a daily cycle of 2 +
    noise of 0.3; +8 every thousandth reading; +3 over two hours a day before
    the end (the slice of those readings)."""
    rng = np.random.default_rng(size)
    ts = END - WEEK * (np.arange(size)[::-1] / size)
    values = 10.0 + 2.0 * np.sin(2 * np.pi * ts / 86_400.0)
    values += rng.normal(0.0, 0.3, size)
    values[rng.integers(0, size, size // 1_000)] += 8.0
    shift = slice(*np.searchsorted(ts, [END - 86_400.0, END - 79_200.0]).tolist())
    values[shift] += 3.0
    return Readings(ts, values), shift


def _log_and_incidents(
    sessions: sessionmaker[Session], sid: str, readings: Readings, shift: slice
) -> None:
    """The level shift in the anomaly log, and two incidents (the shift, and a
    spike two days before)."""
    ts, vs = readings.timestamps[shift], readings.values[shift]
    log = [
        ScoredAnomaly(
            sid,
            t,
            v,
            2.0,
            10.0,
            9.0,
            11.0,
            "above",
            "level_shift",
            1,
            "changepoint",
            False,
        )  # fmt: skip
        for t, v in zip(ts.tolist(), vs.tolist(), strict=True)
    ]
    with sessions() as session:
        AnomalyLog(session).append(log)
        session.commit()
    signals = [
        Anomaly(
            sid, t, 18.0, s, 10.0, 9.0, 11.0, "above", "outside_band", 1, "seasonal"
        )  # fmt: skip
        for t, s in ((END - 2 * 86_400.0, 1.5), (float(ts[0]), 2.5))
    ]
    changes = Grouper(IncidentPolicy(), {}).apply(signals)
    with sessions() as session:
        IncidentStore(session).save(changes)
        session.commit()


def _train(
    sessions: sessionmaker[Session], home: Path, sid: str, readings: Readings
) -> None:
    """A seasonal model of the series, trained on at most MAX_TRAINING of its
    readings evenly picked."""
    every = -(-len(readings) // MAX_TRAINING)
    picked = Readings(readings.timestamps[::every], readings.values[::every])
    artifacts = LocalArtifactStore(home / "artifacts")
    with sessions() as session:
        job = submit_training(
            session=session, artifacts=artifacts, actor="bench", min_interval_s=0,
            request=TrainingRequest(sid, "seasonal", {}, readings=picked),
        )  # fmt: skip
        session.commit()
    if not run_training_job(job.job_id, sessions=sessions, artifacts=artifacts):
        raise RuntimeError(f"training {sid} failed")


def _analyze(engine: Engine) -> None:
    """Vacuum and analyze, as autovacuum leaves a database at rest."""
    vacuum = (
        "VACUUM (ANALYZE) {}" if engine.dialect.name == "postgresql" else "ANALYZE {}"
    )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("readings", "scored_anomalies", "incidents"):
            conn.exec_driver_sql(vacuum.format(table))


def _time_routes(
    home: Path, url: str, sizes: list[int], requests: int, points: int
) -> Figures:
    env, token = service_env(home, url, rate_per_min=100 * requests)
    headers = {"Authorization": f"Bearer {token}"}
    ports = {role: free_port() for role in ("training", "plot")}
    servers = {
        role: serve(
            atalaia_serve(port, role),
            port=port,
            ready_path="/ready",
            env=env,
            log_path=home / f"{role}.log",
        )  # fmt: skip
        for role, port in ports.items()
    }
    figures: Figures = {}
    with servers["training"] as training, servers["plot"] as plot:
        for size in sizes:
            figures |= _time_series(training, plot, headers, size, requests, points)
    return figures


def _time_series(
    training: Server,
    plot: Server,
    headers: dict[str, str],
    size: int,
    requests: int,
    points: int,
) -> Figures:
    sid = series_id(size)
    path = f"{training.base_url}/api/v1/series/{sid}/chart?points={points}"
    with httpx.Client(headers=headers, timeout=600) as http:
        samples, first = timed_gets(http, path, requests, WARMUP)
        body = first.json()
        start, end = body["window"]["start"], body["window"]["end"]
        zoom = f"&start={end - (end - start) * ZOOM!r}&end={end!r}"
        zoomed, _ = timed_gets(http, path + zoom, requests, WARMUP)
        plain = get_ok(http, path, {"Accept-Encoding": "identity"}).content
        reference, plotted = timed_gets(
            http,
            f"{plot.base_url}/api/v1/plot?series_id={sid}&format=json"
            f"&start={start!r}&end={end!r}",
            PLOT_REQUESTS,
            warmup=0,
        )
    if body["readings"] != size:
        raise RuntimeError(f"{sid}: the chart's window is not the series' week")
    sent, plot_plain = first.num_bytes_downloaded, len(plotted.content)
    plot_gzip = len(gzip.compress(plotted.content, compresslevel=GZIP_LEVEL, mtime=0))
    name = f"chart_{size}"
    return {
        **p50_p99(name, samples),
        **p50_p99(f"zoom_{size}", zoomed),
        **p50_p99(f"plot_{size}", reference),
        f"{name}_points": len(body["points"]["t"]),
        f"{name}_anomalies": body["anomalies_total"],
        f"{name}_changepoints": len(body["changepoints"]),
        f"{name}_incidents": len(body["incidents"]),
        f"{name}_gzip_bytes": sent,
        f"{name}_plain_bytes": len(plain),
        f"plot_{size}_plain_bytes": plot_plain,
        f"plot_{size}_gzip_bytes": plot_gzip,
        f"{name}_gzip_vs_plot_plain": round(sent / plot_plain, 5),
        f"{name}_gzip_vs_plot_gzip": round(sent / plot_gzip, 4),
        f"{name}_p50_vs_plot_p50": round(
            float(np.median(samples)) / float(np.median(reference)), 4
        ),
    }
