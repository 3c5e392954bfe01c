"""What the data-quality report costs.

`quality-report`: `assess_quality` over 10 k, 100 k and 1 M readings of a
1 Hz sensor (a daily sine, noise, a few spikes), best of `runs`; over a 7-day
window at 1 Hz (604,800 readings, more than training takes: such a window is
refused by `max_points` before its report); and its share of a training job:
`run_training_job` on a stored 7-day window of the most readings training
takes (100,000, one per 6.048 s) with the check, and with every rule ignored
(no report made), the two interleaved, medians.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.db.repositories import ReadingStore
from atalaia.adapters.storage import LocalArtifactStore
from atalaia.core.quality import QualityRule, assess_quality
from atalaia.core.series import MAX_TRAINING_POINTS, FloatArray, Readings
from atalaia.services.training import TrainingRequest, run_training_job, submit_training
from bench._fleet import database

SIZES = (10_000, 100_000, 1_000_000)
WEEK_S = 7 * 86_400
START = 1_733_000_000.0


def sensor_readings(n: int, step_s: float) -> tuple[FloatArray, FloatArray]:
    """`n` readings `step_s` apart: a daily sine, noise and a spike per 10,000."""
    rng = np.random.default_rng(n)
    ts = START + step_s * np.arange(n, dtype=np.float64)
    vs = 0.3 + 0.1 * np.sin(2 * np.pi * ts / 86_400) + rng.normal(0, 0.01, n)
    vs[::10_000] += 0.5
    return ts, vs


def best_of(runs: int, work: Callable[[], object]) -> float:
    """The shortest of `runs` timings of `work`, in ms."""
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        timings.append(time.perf_counter() - started)
    return 1000 * min(timings)


def quality_report(runs: int, url: str | None, jobs: int) -> dict[str, float | int]:
    """The report's time per size, on a 7-day 1 Hz window, and in a job."""
    figures: dict[str, float | int] = {}
    for n in SIZES:
        ts, vs = sensor_readings(n, 1.0)
        figures[f"report_{n // 1000}k_ms"] = round(
            best_of(runs, partial(assess_quality, ts, vs)), 1
        )
    week = sensor_readings(WEEK_S, 1.0)
    figures["report_7d_1hz_ms"] = round(
        best_of(runs, partial(assess_quality, *week)), 1
    )
    return figures | _job_share(url, jobs, runs)


def _job_share(url: str | None, jobs: int, runs: int) -> dict[str, float | int]:
    """Training jobs on a stored 7-day window of MAX_TRAINING_POINTS readings,
    checked and unchecked alternately; medians and the report's share."""
    ts, vs = sensor_readings(MAX_TRAINING_POINTS, WEEK_S / MAX_TRAINING_POINTS)
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        engine = make_engine(database(home, url))
        sessions = make_session_factory(engine)
        artifacts = LocalArtifactStore(home / "artifacts")
        with sessions() as session:
            ReadingStore(session).append("bench_quality", Readings(ts, vs))
            session.commit()
        timed: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(jobs):
            for checked in (True, False):
                ignored = frozenset() if checked else frozenset(QualityRule)
                request = TrainingRequest(
                    "bench_quality", "auto", {}, window_hours=168,
                    quality_ignored=ignored,
                )  # fmt: skip
                with sessions() as session:
                    job = submit_training(
                        session=session, artifacts=artifacts, request=request,
                        actor="bench", min_interval_s=0,
                    )  # fmt: skip
                    session.commit()
                started = time.perf_counter()
                if run_training_job(job.job_id, sessions=sessions, artifacts=artifacts):
                    timed[checked].append(time.perf_counter() - started)
        engine.dispose()
    checked_ms = 1000 * statistics.median(timed[True])
    unchecked_ms = 1000 * statistics.median(timed[False])
    report_ms = best_of(runs, partial(assess_quality, ts, vs))
    return {
        "job_100k_checked_ms": round(checked_ms, 1),
        "job_100k_unchecked_ms": round(unchecked_ms, 1),
        "report_100k_in_job_ms": round(report_ms, 1),
        "report_share_of_job": round(report_ms / checked_ms, 3),
    }
