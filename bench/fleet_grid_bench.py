"""The fleet's grid (`GET /fleet/sensors`) over a fleet on PostgreSQL.

A fresh database on the local PostgreSQL, created and dropped here, unless
`--url` names one (an empty one: it is left in place). It gets `sensors`
sensors × 3 axes (`bench._fleet.series_ids`): a readings summary row per
series, the newest reading a minute old but for a fiftieth of the sensors
(two hours: stale); a production version for every series of all but a
twentieth of the sensors (no model); this hour's prediction rollups of every
fresh series; `incidents` live incidents (`Grouper` + `IncidentStore.save`),
some anomalies of the last minutes without one, and a month of older
anomalies in the log (LOG_ROWS_A_SENSOR a sensor); a drift check naming
DRIFTED series (ANOMALOUS and DRIFTED: at most a tenth of the sensors). The
tables are then vacuumed and analyzed, as autovacuum leaves them.

In process: `read_grid` the first time (the grid's order and the modelled
sensors worked out) and again (kept), and each of its reads. Over HTTP,
`atalaia serve --role training` answers one request at a time: the first
(the grid read before answering), then `requests` (after WARMUP) of the
whole grid gzipped, then filtered ones (`prefix`); p50/p99 of each, and the
body's bytes gzipped and plain. Targets: the kept answer's p99 ≤ 200 ms, the
gzipped body ≤ 600 KB.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import Engine, insert, update
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.db.migrate import upgrade_database
from atalaia.adapters.db.repositories import AuditLog, IncidentStore, RollupStore
from atalaia.adapters.db.repositories.fleet_grid import FleetGridReads
from atalaia.adapters.db.tables import SeriesRow
from atalaia.core.incidents import Anomaly, Grouper, IncidentPolicy
from atalaia.core.schedule import Task
from atalaia.core.series import sensor_of
from atalaia.core.serving import Rollups
from atalaia.services import platform_events
from atalaia.services.fleet_grid import GridMemo, drifted_series, read_grid
from atalaia.services.scheduler import ACTOR, RunReport
from bench._fleet import AXES, fill_registry, fresh_database, series_ids
from bench._report import p50_p99
from bench._servers import atalaia_serve, free_port, serve, service_env, timed_gets
from bench.predict_bench import Figures, Target, judge

DATABASE = "atalaia_bench_grid"
NO_MODEL_EVERY = 20  # sensors: one in this many has no production version
STALE_EVERY = 50  # one in this many last read two hours ago
ANOMALOUS = 300  # sensors with an anomaly in the last minutes, no incident
DRIFTED = 300  # series the drift check names
LOG_ROWS_A_SENSOR = 3  # older anomalies in the log, over LOG_DAYS
LOG_DAYS = 30
WARMUP = 5
PREFIX = "sensor_0001"  # a thousand sensors
ANOMALY_WINDOW_S = 600.0
STALE_AFTER_S = 3600.0
TARGETS: list[Target] = [
    ("kept_p99_ms", "≤", 200),
    ("body_gzip_kb", "≤", 600),
]


def fleet_grid(
    sensors: int, incidents: int, requests: int, url: str | None
) -> tuple[Figures, str]:
    """Fill a database, then time the grid in process and over HTTP."""
    with (
        fresh_database(url, DATABASE) as db_url,
        tempfile.TemporaryDirectory() as folder,
    ):
        upgrade_database(db_url)
        engine = make_engine(db_url)
        try:
            sessions = make_session_factory(engine)
            figures = fill_fleet(sessions, sensors, incidents, time.time())
            vacuum(engine)
            figures |= _in_process(sessions)
        finally:
            engine.dispose()
        figures |= _over_http(Path(folder), db_url, requests)
    verdicts = judge(figures, TARGETS)
    line = (
        f"first answer {figures['first_answer_ms']} ms, kept p50 "
        f"{figures['kept_p50_ms']} ms p99 {figures['kept_p99_ms']} ms, "
        f"{figures['body_gzip_kb']} KB gzipped"
    )
    return figures, "\n".join([line, *verdicts])


def fill_fleet(
    sessions: sessionmaker[Session], sensors: int, incidents: int, now: float
) -> Figures:
    started = time.perf_counter()
    ids = series_ids(sensors * len(AXES))
    sensor_ids = [f"sensor_{i:06d}" for i in range(sensors)]
    unmodelled = set(sensor_ids[::NO_MODEL_EVERY])
    stale = set(sensor_ids[1::STALE_EVERY])
    modelled = [s for s in ids if sensor_of(s)[0] not in unmodelled]
    fill_registry(sessions, modelled)
    with sessions() as session:
        session.execute(insert(SeriesRow), [
            {"series_id": s, "sensor_id": sensor_of(s)[0], "tags": {},
             "n_points": 10_080, "mean": 0.3, "m2": 25.2}
            for s in ids if sensor_of(s)[0] in unmodelled
        ])  # fmt: skip
        session.execute(update(SeriesRow).values(last_ts=now - 60.0))
        old = [s for s in ids if sensor_of(s)[0] in stale]
        session.execute(
            update(SeriesRow)
            .where(SeriesRow.series_id.in_(old))
            .values(last_ts=now - 7_200.0)
        )
        session.commit()
    fresh = [s for s in ids if sensor_of(s)[0] not in stale]
    _fill_rollups(sessions, fresh, now)
    rng = np.random.default_rng(0)
    few = sensors // 10
    logged = _fill_log(sessions, ids, now, rng, min(ANOMALOUS, few))
    live = _fill_incidents(sessions, sensor_ids, incidents, now, rng)
    drifted = rng.choice(modelled, min(DRIFTED, few), replace=False).tolist()
    _record_drift(sessions, drifted)
    return {
        "sensors": sensors,
        "series": len(ids),
        "production_versions": len(modelled),
        "incidents_live": live,
        "log_rows": logged,
        "fill_s": round(time.perf_counter() - started, 1),
    }


def _fill_rollups(
    sessions: sessionmaker[Session], series: list[str], now: float
) -> None:
    bucket = datetime.fromtimestamp(now // 3600 * 3600, UTC)
    n = len(series)
    ones = [1] * n
    with sessions() as session:
        RollupStore(session).add(
            Rollups(bucket, series, [60] * n, ones, [60] * n, [20.0] * n, [2.0] * n)
        )
        session.commit()


def _fill_log(
    sessions: sessionmaker[Session],
    ids: list[str],
    now: float,
    rng: np.random.Generator,
    anomalous: int,
) -> int:
    """LOG_ROWS_A_SENSOR anomalies a sensor over the last LOG_DAYS days (an
    hour old at least), then one of each of `anomalous` sensors' first axis in
    the last minutes; in the order they were logged, by COPY. How many."""
    n = LOG_ROWS_A_SENSOR * len(ids) // len(AXES)
    logged = np.sort(rng.uniform(now - LOG_DAYS * 86_400.0, now - 3_600.0, n))
    old = rng.choice(ids, n).tolist()
    recent = rng.choice(len(ids) // len(AXES), anomalous, replace=False) * len(AXES)
    rows = [(sid, at - 1.0, at) for sid, at in zip(old, logged.tolist(), strict=True)]
    rows += [(ids[i], now - 120.0, now - 119.0) for i in recent.tolist()]
    copy = (
        "COPY scored_anomalies (series_id, ts, value, score, direction, reason, "
        "version, algorithm, stale, scored_at) FROM STDIN"
    )
    with sessions() as session:
        raw = session.connection().connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(copy) as out:  # type: ignore[union-attr]
            for sid, ts, at in rows:
                out.write_row(
                    (sid, ts, 1.0, 3.0, "above", "outside_band", 1, "zscore", False,
                     datetime.fromtimestamp(at, UTC))
                )  # fmt: skip
        session.commit()
    return len(rows)


def _fill_incidents(
    sessions: sessionmaker[Session],
    sensor_ids: list[str],
    incidents: int,
    now: float,
    rng: np.random.Generator,
) -> int:
    """One live incident on each of `incidents` sensors: about 70 % minor,
    25 % major, 5 % critical."""
    chosen = rng.choice(sensor_ids, incidents, replace=False).tolist()
    scores = rng.choice([1.2, 2.5, 4.5], incidents, p=[0.7, 0.25, 0.05]).tolist()
    signals = [
        Anomaly(f"{s}_radial", now - 300.0, 0.9, score, 0.3, 0.15, 0.45, "above",
                "outside_band", 1, "zscore")
        for s, score in zip(chosen, scores, strict=True)
    ]  # fmt: skip
    changes = Grouper(IncidentPolicy(), {}).apply(signals)
    with sessions() as session:
        IncidentStore(session).save(changes)
        session.commit()
    return len(chosen)


def _record_drift(sessions: sessionmaker[Session], drifted: list[str]) -> None:
    """A drift check's run, written as `services.scheduler` writes it."""
    report = RunReport(
        Task.DRIFT.value, considered=0, selected=sorted(drifted),
        retrain_window_hours=168.0, drift_window_hours=24.0,
    )  # fmt: skip
    with sessions() as session:
        AuditLog(session).record(
            actor=ACTOR, action=Task.DRIFT.audit_action, target="fleet",
            **report.detail(),
        )  # fmt: skip
        platform_events.drift_detected(
            session, report.selected, datetime.now(UTC).isoformat()
        )
        session.commit()


def vacuum(engine: Engine) -> None:
    tables = (
        "series", "model_versions", "training_jobs", "prediction_rollups",
        "scored_anomalies", "incidents", "registry_events", "audit_log",
        "platform_events",
    )  # fmt: skip
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in tables:
            conn.exec_driver_sql(f"VACUUM (ANALYZE) {table}")


def _in_process(sessions: sessionmaker[Session]) -> Figures:
    """`read_grid` the first time and again, and each of its reads."""
    figures: Figures = {}
    memo = GridMemo()
    for name in ("read_grid_first_ms", "read_grid_ms"):
        started = time.perf_counter()
        with sessions() as session:
            grid = read_grid(
                session, at=time.time(), anomaly_window_s=ANOMALY_WINDOW_S,
                stale_after_s=STALE_AFTER_S, memo=memo,
            )  # fmt: skip
        figures[name] = _ms(started)
    now = time.time()
    with sessions() as session:
        reads = FleetGridReads(session)
        before = now - STALE_AFTER_S
        for name, read in (
            ("newest_readings", reads.newest_readings),
            ("production_series", reads.production_series),
            (
                "predicted_sensors",
                lambda: reads.predicted_sensors(read_before=before, since=before),
            ),
            ("live_severities", reads.live_severities),
            (
                "anomalous_series",
                lambda: reads.anomalous_series(since=now - ANOMALY_WINDOW_S),
            ),
            ("drifted_series", lambda: drifted_series(reads)),
        ):
            started = time.perf_counter()
            read()
            figures[f"{name}_ms"] = _ms(started)
    counts = grid.counts()
    return figures | {f"state_{name}": n for name, n in counts.items()}


def _over_http(home: Path, url: str, requests: int) -> Figures:
    env, token = service_env(home, url, rate_per_min=100 * requests)
    port = free_port()
    headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"}
    figures: Figures = {}
    with (
        serve(atalaia_serve(port, "training"), port=port, ready_path="/ready",
              env=env, log_path=home / "training.log") as server,
        httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as http,
    ):  # fmt: skip
        started = time.perf_counter()
        wire = _wire(http, "/api/v1/fleet/sensors")
        figures["first_answer_ms"] = _ms(started)
        plain = http.get(
            "/api/v1/fleet/sensors", headers={"Accept-Encoding": "identity"}
        ).content
        figures["body_gzip_kb"] = round(len(wire) / 1000, 1)
        figures["body_plain_kb"] = round(len(plain) / 1000, 1)
        for name, path in (
            ("kept", "/api/v1/fleet/sensors"),
            ("prefix", f"/api/v1/fleet/sensors?prefix={PREFIX}"),
        ):
            samples, _ = timed_gets(http, path, requests, WARMUP)
            figures |= p50_p99(name, samples)
    return figures


def _wire(http: httpx.Client, path: str) -> bytes:
    """The body as sent (gzipped when the server gzipped it)."""
    with http.stream("GET", path) as answer:
        body = b"".join(answer.iter_raw())
    if answer.status_code != 200:
        raise RuntimeError(f"GET {path} answered {answer.status_code}: {body[:500]!r}")
    return body


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
