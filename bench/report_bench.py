"""How long the fleet's report of a week takes over a large fleet on PostgreSQL.

A fresh database on the local PostgreSQL (created and dropped here, unless
`--url` names an empty one, left in place) gets `series` series (three axes a
sensor), each with a Production version, the week's hourly rollups of every
series (by COPY, as inference writes them) and `incidents` incidents on as
many sensors, opened across the week (grouped by `core.incidents.Grouper`, as
the alerter does). The tables are analyzed, as autovacuum leaves them.

Timed, `runs` times each (the median kept): gathering the report
(`fleet_report`: its queries), laying it out as a PDF and writing it as a
workbook; and as a reference, one scan summing the week's rollups (what the
anomaly rates cannot do without). Then once, the scheduler's path
(`send_scheduled_reports`: gathered, laid out, stored, recorded, queued) on an
engine bounded as a service's is (`ATALAIA_DB_*_TIMEOUT_S` defaults). The week
is the last whole one (Monday to Monday), which the scheduled report covers.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.engine import Timeouts, make_engine, make_session_factory
from atalaia.adapters.db.migrate import upgrade_database
from atalaia.adapters.db.repositories import IncidentStore, RollupStore
from atalaia.adapters.db.tables import PredictionRollupRow
from atalaia.adapters.storage import LocalArtifactStore
from atalaia.core.incidents import Anomaly, Grouper, IncidentPolicy
from atalaia.core.schedule import last_week
from atalaia.core.serving import Rollups
from atalaia.services import reports
from atalaia.settings import ReportSubscription, Settings
from bench._fleet import fill_registry, fresh_database, series_ids
from bench.predict_bench import Figures

DATABASE = "atalaia_bench_report"
HOURS = 168
PREDICTIONS_AN_HOUR = 60


def report_week(series: int, incidents: int, runs: int, url: str | None) -> Figures:
    """The figures of the module's runs."""
    now = last_week(datetime.now(UTC))[1].timestamp()
    with fresh_database(url, DATABASE) as target:
        upgrade_database(target)
        engine = make_engine(target)
        try:
            sessions = make_session_factory(engine)
            ids = series_ids(series)
            fill_registry(sessions, ids)
            _fill_rollups(sessions, ids, now)
            _fill_incidents(sessions, ids, incidents, now)
            _analyze(target)
            scheduled = _scheduled(target)
            return _timed(sessions, now, runs) | scheduled | {
                "series": series, "incidents": incidents, "runs": runs,
            }  # fmt: skip
        finally:
            engine.dispose()


def _fill_rollups(sessions: sessionmaker[Session], ids: list[str], now: float) -> None:
    """Every series' predictions of each hour of the week, 1 % of them anomalous
    on one series in a hundred."""
    n = len(ids)
    rng = np.random.default_rng(7)
    start = datetime.fromtimestamp(now, UTC) - timedelta(hours=HOURS)
    for hour in range(HOURS):
        anomalies = np.where(rng.random(n) < 0.01, PREDICTIONS_AN_HOUR // 100 + 1, 0)
        rollups = Rollups(
            start + timedelta(hours=hour), ids, [PREDICTIONS_AN_HOUR] * n,
            anomalies.tolist(), [PREDICTIONS_AN_HOUR] * n, [30.0] * n, [1.0] * n,
        )  # fmt: skip
        with sessions() as session:  # a transaction each: PostgreSQL's staging
            RollupStore(session).add(rollups)
            session.commit()


def _fill_incidents(
    sessions: sessionmaker[Session], ids: list[str], count: int, now: float
) -> None:
    """An anomaly on the radial axis of each of the first `count` sensors, at a
    random time of the week: an incident each."""
    rng = np.random.default_rng(8)
    at = now - rng.random(count) * (HOURS - 1) * 3600
    scores = 1.0 + rng.exponential(2.0, count)
    anomalies = [
        Anomaly(ids[3 * i], float(t), 0.3 + 0.05 * s, float(s), 0.3, 0.15, 0.45,
                "above", "outside_band", 1, "zscore")
        for i, (t, s) in enumerate(zip(at, scores, strict=True))
    ]  # fmt: skip
    changes = Grouper(IncidentPolicy(), {}).apply(
        sorted(anomalies, key=lambda a: a.timestamp)
    )
    with sessions() as session:
        IncidentStore(session).save(changes)
        session.commit()


def _analyze(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")


def _timed(sessions: sessionmaker[Session], now: float, runs: int) -> Figures:
    period = reports.Period.of(None, now + 3600, now=now)
    with sessions() as session:
        report = reports.fleet_report(session, period)
        pdf, xlsx = reports.render_pdf(report), reports.render_xlsx(report)

        def build() -> object:
            return reports.fleet_report(session, period)

        def scan() -> object:
            row = PredictionRollupRow
            return session.scalar(
                select(func.sum(row.anomalies)).where(row.bucket >= period.start_at)
            )

        figures = {
            "build_s": _median(build, runs),
            "pdf_s": _median(lambda: reports.render_pdf(report), runs),
            "xlsx_s": _median(lambda: reports.render_xlsx(report), runs),
            "rollup_scan_s": _median(scan, runs),
        }
    return figures | {
        "build_over_scan": round(figures["build_s"] / figures["rollup_scan_s"], 2),
        "pdf_kb": len(pdf) // 1024,
        "xlsx_kb": len(xlsx) // 1024,
    }


def _scheduled(url: str) -> Figures:
    """One run of the weekly report task, on an engine bounded as a service's."""
    defaults = Settings()
    timeouts = Timeouts(
        statement_s=defaults.db_statement_timeout_s,
        socket_s=defaults.db_socket_timeout_s,
    )
    engine = make_engine(url, timeouts=timeouts)
    with tempfile.TemporaryDirectory(prefix="atalaia-bench-") as folder:
        delivery = reports.Delivery(
            LocalArtifactStore(Path(folder)), None, "http://127.0.0.1:8000"
        )
        weekly = ReportSubscription(name="bench", channels=["ops"])
        began = time.perf_counter()
        try:
            run = reports.send_scheduled_reports(
                sessions=make_session_factory(engine), subscriptions=[weekly],
                delivery=delivery, now=datetime.now(UTC),
            )  # fmt: skip
        finally:
            engine.dispose()
    took = round(time.perf_counter() - began, 3)
    if run.error is not None:
        raise RuntimeError(f"the scheduled report failed: {run.error}")
    return {"scheduled_s": took}


def _median(work: Callable[[], object], runs: int) -> float:
    took = []
    for _ in range(runs):
        began = time.perf_counter()
        work()
        took.append(time.perf_counter() - began)
    return round(statistics.median(took), 3)
