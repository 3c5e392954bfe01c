"""The incidents API over a large fleet: `GET /fleet/status` and list pages.

A fresh database (PostgreSQL at `url`, else SQLite) gets `incidents` live
incidents over `sensors` sensors (and half as many resolved ones), grouped
from anomalies by the alerter's own `Grouper` and written by
`IncidentStore.save` (`_signals` says which). Sensors are named
`site<s>.line<ll>.m<nnnnn>` (100 groups `site<s>.line<ll>`), three axes each,
and every series has prediction rollups (one reading a minute, about 1 %
anomalous) for the last ROLLUP_HOURS hours. The tables are then vacuumed and
analyzed, as autovacuum would leave them.

The training service as deployed (`atalaia serve --role training`) answers one
request at a time, `requests` times each after WARMUP untimed ones: the fleet's
status, the first page of incidents (100), a filtered page (live, major and
critical, of one group) and a page DEEP incidents deep (at most half of them;
its cursor found by paging there). Targets: fleet status p99 ≤ 100 ms, every
list page p99 ≤ 50 ms.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.db.repositories import IncidentStore, RollupStore
from atalaia.adapters.db.tables import IncidentRow
from atalaia.core.incidents import Anomaly, Grouper, IncidentPolicy
from atalaia.core.serving import Rollups
from atalaia.services.fleet import SeriesGroups, read_rates
from bench._fleet import AXES, database
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

SITES, LINES = 4, 25  # 100 sensor groups
RESOLVED_SHARE = 0.5  # resolved incidents, for every live one
ROLLUP_HOURS = 24
CHUNK = 5_000  # changes saved a transaction
WARMUP = 10
DEEP = 100_000  # incidents before the deep page
TARGETS: list[Target] = [
    ("fleet_status_p99_ms", "≤", 100),
    ("first_page_p99_ms", "≤", 50),
    ("filtered_page_p99_ms", "≤", 50),
    ("deep_page_p99_ms", "≤", 50),
]


def sensor_ids(n: int) -> list[str]:
    return [f"site{i % SITES}.line{i // SITES % LINES:02d}.m{i:05d}" for i in range(n)]


def incidents_api(
    incidents: int, sensors: int, requests: int, url: str | None
) -> tuple[Figures, str]:
    """Fill a database, then time the routes over HTTP (see the module)."""
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        url = database(home, url)
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        filled = _fill(sessions, incidents, sensors, time.time())
        _vacuum(engine)
        filled |= _rates_read_ms(sessions)
        engine.dispose()
        depth = min(DEEP, int(filled["incidents_total"]) // 2)
        timed = _time_routes(home, url, requests, depth)
    figures: Figures = {**filled, "requests": requests, **timed}
    verdicts = judge(figures, TARGETS)
    names = ("fleet_status", "first_page", "filtered_page", "deep_page")
    lines = [
        f"{n}: p50 {figures[f'{n}_p50_ms']} ms, p99 {figures[f'{n}_p99_ms']} ms"
        for n in names
    ]
    return figures, "\n".join([*lines, *verdicts])


def _vacuum(engine: Engine) -> None:
    """Vacuum and analyze the filled tables, as autovacuum leaves a database at
    rest (it is off on some test servers): the planner's statistics, and the
    visibility map that index-only scans read."""
    vacuum = (
        "VACUUM (ANALYZE) {}" if engine.dialect.name == "postgresql" else "ANALYZE {}"
    )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("incidents", "incident_history", "prediction_rollups"):
            conn.exec_driver_sql(vacuum.format(table))


def _rates_read_ms(sessions: sessionmaker[Session]) -> Figures:
    """Reading the groups' rates the first time (every series' group worked
    out) and again (the series unchanged), as the service does."""
    groups, figures = SeriesGroups(), {}
    for name in ("rates_read_first_ms", "rates_read_ms"):
        started = time.perf_counter()
        with sessions() as session:
            rates = read_rates(session, time.time(), groups)
        figures[name] = round((time.perf_counter() - started) * 1000, 1)
    return {"groups": len(rates.by_group), **figures}


def _fill(
    sessions: sessionmaker[Session], incidents: int, sensors: int, now: float
) -> Figures:
    with sessions() as session:
        if session.scalar(select(func.count()).select_from(IncidentRow)):
            raise RuntimeError("give the incidents benchmark an empty database")
    started = time.perf_counter()
    grouper = Grouper(IncidentPolicy(), {})
    store_s = 0.0
    for chunk in _chunks(_signals(incidents, sensors, now), CHUNK):
        changes = grouper.apply(chunk)
        began = time.perf_counter()
        with sessions() as session:
            IncidentStore(session).save(changes)
            session.commit()
        store_s += time.perf_counter() - began
        grouper.changes.clear()
    with sessions() as session:
        live = session.scalar(
            select(func.count()).where(IncidentRow.live_key.is_not(None))
        )
        total = session.scalar(select(func.count()).select_from(IncidentRow))
    series = _fill_rollups(sessions, sensor_ids(sensors), now)
    return {
        "incidents_live": int(live or 0),
        "incidents_total": int(total or 0),
        "sensors": sensors,
        "rollup_series": series,
        "fill_s": round(time.perf_counter() - started, 1),
        "save_s": round(store_s, 1),
    }


def _signals(incidents: int, sensors: int, now: float) -> Iterator[Anomaly]:
    """Anomalies, oldest first, that make `incidents` live incidents: one of
    kind anomaly on each of the first `incidents - data_quality` sensors and
    one of kind data quality (stuck) on each of the first `data_quality`
    (a twentieth), each of one to three anomalies over its sensor's axes; and
    for half as many sensors an incident resolved a day before. Peak scores
    make about 70 % minor, 25 % major and 5 % critical; a fifth of the
    incidents had their last anomaly in the last five minutes."""
    rng = np.random.default_rng(0)
    ids = sensor_ids(sensors)
    data_quality = incidents // 20
    anomaly_kind = incidents - data_quality
    if anomaly_kind > sensors:
        raise ValueError(f"{incidents} live incidents need more than {sensors} sensors")
    planned: list[tuple[float, str, float, str]] = []
    for n, reason, age in (
        (int(anomaly_kind * RESOLVED_SHARE), "outside_band", 86_400.0),
        (anomaly_kind, "outside_band", 0.0),
        (data_quality, "stuck", 0.0),
    ):
        last = (
            np.where(
                rng.random(n) < 0.2,
                now - rng.uniform(0, 300, n),
                now - rng.uniform(900, 86_000, n),
            )
            - age
        )
        scores = rng.choice([1.2, 2.5, 4.5], n, p=[0.7, 0.25, 0.05])
        readings = rng.integers(1, 4, n)
        for i in range(n):
            for k in range(int(readings[i])):
                at = float(last[i]) - 60.0 * (int(readings[i]) - 1 - k)
                series = f"{ids[i]}_{AXES[k % 3]}"
                planned.append((at, series, float(scores[i]) - 0.1 * k, reason))
    planned.sort()
    for at, series, score, reason in planned:
        yield Anomaly(
            series, at, 0.3 + 0.05 * score, score, 0.3, 0.15, 0.45, "above",
            reason, 1, "zscore",
        )  # fmt: skip


def _chunks(signals: Iterator[Anomaly], size: int) -> Iterator[list[Anomaly]]:
    chunk: list[Anomaly] = []
    for signal in signals:
        chunk.append(signal)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _fill_rollups(
    sessions: sessionmaker[Session], sensors: list[str], now: float
) -> int:
    """ROLLUP_HOURS hours of every series' rollups, up to the current one."""
    series = [f"{s}_{axis}" for s in sensors for axis in AXES]
    rng = np.random.default_rng(1)
    n = len(series)
    for hours_ago in range(ROLLUP_HOURS):
        bucket = datetime.fromtimestamp((now // 3600 - hours_ago) * 3600, UTC)
        predictions = np.full(n, 60)
        with sessions() as session:
            RollupStore(session).add(
                Rollups(
                    bucket,
                    series,
                    predictions.tolist(),
                    rng.binomial(60, 0.01, n).tolist(),
                    predictions.tolist(),
                    rng.uniform(10, 30, n).tolist(),
                    rng.uniform(1, 5, n).tolist(),
                )  # fmt: skip
            )
            session.commit()
    return n


def _time_routes(home: Path, url: str, requests: int, depth: int) -> Figures:
    env, token = service_env(home, url, rate_per_min=100 * requests)
    port = free_port()
    argv = atalaia_serve(port, "training")
    headers = {"Authorization": f"Bearer {token}"}
    log = home / "training.log"
    figures: Figures = {}
    with (
        serve(argv, port=port, ready_path="/ready", env=env, log_path=log) as server,
        httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as http,
    ):
        paths = {
            "fleet_status": "/api/v1/fleet/status",
            "first_page": "/api/v1/incidents",
            "filtered_page": "/api/v1/incidents?state=open&state=acknowledged"
            "&severity=major&severity=critical&sensor_group=site1.line07",
            "deep_page": f"/api/v1/incidents?after={_deep_cursor(http, depth)}",
        }
        for name, path in paths.items():
            samples, _ = timed_gets(http, path, requests, WARMUP)
            figures |= p50_p99(name, samples)
    return figures


def _deep_cursor(http: httpx.Client, depth: int) -> str:
    """The cursor after the `depth` newest incidents, paged there as a client
    would (1,000 a page)."""
    cursor: object = ""
    for start in range(0, depth, 1_000):
        after = f"&after={cursor}" if cursor else ""
        limit = min(1_000, depth - start)
        cursor = get_ok(http, f"/api/v1/incidents?limit={limit}{after}").json()[
            "next_cursor"
        ]
        if cursor is None:
            raise RuntimeError(f"fewer than {depth} incidents to page through")
    return str(cursor)
