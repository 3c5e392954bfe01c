"""Readings at scale: a fleet's history from 10 M to 1 B readings.

`series` series send a reading each every `step_s`. The database keeps the
last `hot_days` (PostgreSQL, as `ATALAIA_HOT_DAYS` does); older days are
Parquet segments of the cold history (`core.history`). The first cold day is
moved out by the archive task itself (`services.cold_history.archive`: its
rate is measured); the history then grows backward, a day at a time, written
by the same segment writer and recorded as the archive task records them,
until it holds each size (hot and cold readings together). At each size, with
the same random choices:

- `ingest`: the next `ingest_minutes` of every series stored by
  `ReadingStore.append_many`, five times (a transaction each), readings/s;
- `window_hot` / `window_cold`: a random series' one-day window, in the hot
  days / anywhere in the cold history (`ReadingStore.window`), ms;
- `quality`: a random series' data-quality report over 7 days anywhere in the
  history (`services.data_quality.series_quality`), ms;
- `training_read`: the last 7 days of 100 random series as training reads
  them (`ReadingStore.last_windows`: the hot days and the cold ones), ms.

The bar: each figure within 10 % of its figure at the first size.
"""

from __future__ import annotations

import math
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.db.migrate import upgrade_database
from atalaia.adapters.db.repositories import ReadingStore
from atalaia.adapters.db.repositories.segments import SegmentStore
from atalaia.adapters.db.tables import SeriesRow
from atalaia.adapters.history.parquet_segments import write_segment
from atalaia.core.history import DAY_S, ColdPolicy
from atalaia.core.series import Readings
from atalaia.services.cold_history import archive
from atalaia.services.data_quality import QualityQuery, series_quality
from bench._fleet import fresh_database
from bench.predict_bench import Figures, judge

Sessions = sessionmaker[Session]
END = 1_764_547_200.0  # 2025-12-01T00:00:00Z: the hot days end here
METRICS = ("ingest", "window_hot", "window_cold", "quality", "training_read")
INGEST_BATCHES = 5
TRAINING_SERIES = 100
TRAINING_HOURS = 168.0


def parse_size(text: str) -> int:
    """`10M`, `1B`, `250k` or a plain number of readings.

    >>> parse_size("1B"), parse_size("10M"), parse_size("250k")
    (1000000000, 10000000, 250000)
    """
    units = {"k": 1_000, "M": 1_000_000, "B": 1_000_000_000}
    if text[-1:] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


class Fleet:
    """The benchmark's series and their history, hot and cold."""

    def __init__(
        self, sessions: Sessions, folder: Path, series: int, step_s: float
    ) -> None:
        self.sessions, self.folder = sessions, folder
        self.ids = [f"sensor_{i:06d}_radial" for i in range(series)]
        self.step_s = step_s
        self.per_day = int(DAY_S / step_s)
        self.first_day = END  # the oldest day's start, so far
        self.hot_start = END  # the hot days' first
        self.readings = 0  # hot and cold
        self.next_ts = END  # the newest reading's successor
        self.keys = np.empty(0, np.int64)

    def day(self, start: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Each series' readings of the day from `start`: (timestamps, values)
        as (series, per_day) arrays; a daily sine and noise."""
        ts = start + self.step_s * np.arange(self.per_day, dtype=np.float64)
        rng = np.random.default_rng(seed)
        shape = (len(self.ids), self.per_day)
        level = rng.uniform(0.2, 0.4, (len(self.ids), 1))
        wave = 0.1 * np.sin(2 * np.pi * ts / DAY_S)
        values = level + wave + rng.normal(0, 0.01, shape)
        return np.broadcast_to(ts, shape), values

    def ingest(self, start: float, end: float) -> float:
        """Store every series' readings of [start, end) from the database's
        side; returns the seconds it took."""
        ts_all, values = self.day(math.floor(start / DAY_S) * DAY_S, int(start))
        day_ts = ts_all[0]
        inside = (day_ts >= start) & (day_ts < end)
        batch = {
            sid: Readings(day_ts[inside].copy(), values[i, inside].copy())
            for i, sid in enumerate(self.ids)
        }
        began = time.perf_counter()
        with self.sessions() as session:
            ReadingStore(session).append_many(batch)
            session.commit()
        self.readings += int(inside.sum()) * len(self.ids)
        return time.perf_counter() - began

    def load_hot(self, days: int) -> None:
        """The last `days` days in the database, a quarter-day per transaction."""
        self.first_day = self.hot_start = END - days * DAY_S
        quarter = DAY_S / 4
        for i in range(days * 4):
            start = self.first_day + i * quarter
            self.ingest(start, start + quarter)
        with self.sessions() as session:
            keys = session.scalars(select(SeriesRow.key).order_by(SeriesRow.key))
            self.keys = np.fromiter(keys, np.int64)

    def add_cold_day(self) -> None:
        """One more day before the oldest, as a segment of the cold history."""
        start = self.first_day - DAY_S
        ts, values = self.day(start, int(start))
        path = self.folder / f"readings-{start:.0f}-{start + DAY_S:.0f}-bench.parquet"
        rows = (np.repeat(self.keys, self.per_day), ts.ravel(), values.ravel())
        written = write_segment(path, [rows])
        with self.sessions() as session:
            SegmentStore(session).add(start, start + DAY_S, str(path), written)
            session.commit()
        self.first_day = start
        self.readings += written.rows

    def settle(self) -> None:
        """The series' first readings are the history's (as ingest keeps them)."""
        with self.sessions() as session:
            session.execute(update(SeriesRow).values(first_ts=self.first_day))
            session.commit()


def _median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


def _timed(call: Callable[[], object]) -> float:
    began = time.perf_counter()
    call()
    return time.perf_counter() - began


def measure(fleet: Fleet, samples: int, ingest_minutes: float) -> dict[str, float]:
    """The figures of one size (the same random choices at every size)."""
    rng = np.random.default_rng(11)
    figures: dict[str, float] = {}
    seconds, readings = 0.0, 0
    for _ in range(INGEST_BATCHES):
        end = fleet.next_ts + ingest_minutes * 60
        seconds += fleet.ingest(fleet.next_ts, end)
        readings += len(fleet.ids) * int(ingest_minutes * 60 / fleet.step_s)
        fleet.next_ts = end
    figures["ingest_readings_per_s"] = round(readings / seconds)
    hot_days = (END - fleet.hot_start) / DAY_S
    cold_days = (fleet.hot_start - fleet.first_day) / DAY_S
    picks = [
        (
            fleet.ids[int(rng.integers(len(fleet.ids)))],
            float(rng.uniform(0, hot_days - 1)),
            float(rng.uniform(0, cold_days - 1)),
            float(rng.uniform(0, hot_days + cold_days - 7)),
        )
        for _ in range(samples)
    ]
    with fleet.sessions() as session:
        store = ReadingStore(session)
        hot: list[float] = []
        cold: list[float] = []
        quality: list[float] = []
        for sid, hot_at, cold_at, week_at in picks:
            for at, into in ((fleet.hot_start + hot_at * DAY_S, hot),
                             (fleet.first_day + cold_at * DAY_S, cold)):  # fmt: skip
                day = partial(store.window, sid, start=at, end=at + DAY_S)
                into.append(_timed(day))
            start = fleet.first_day + week_at * DAY_S
            query = QualityQuery(start=start, end=start + 7 * DAY_S)
            quality.append(_timed(partial(series_quality, session, sid, query)))
        training = []
        for _ in range(max(3, samples // 10)):
            chosen = rng.choice(fleet.ids, TRAINING_SERIES, replace=False).tolist()
            read = partial(store.last_windows, chosen, TRAINING_HOURS)
            training.append(_timed(read))
    figures["window_hot_ms"] = _median_ms(hot)
    figures["window_cold_ms"] = _median_ms(cold)
    figures["quality_ms"] = _median_ms(quality)
    figures["training_read_ms"] = _median_ms(training)
    return figures


def _disk(sessions: Sessions) -> tuple[int, int]:
    """(bytes of the readings table with its index, bytes of the segments)."""
    with sessions() as session:
        table = session.scalar(select(func.pg_total_relation_size("readings")))
        return int(table or 0), SegmentStore(session).totals()[2]


def scale(
    sizes: list[str],
    *,
    series: int,
    step_s: float,
    hot_days: int,
    samples: int,
    ingest_minutes: float,
    url: str | None,
    folder: Path | None,
) -> tuple[Figures, str]:
    """Grow the history through `sizes` and measure at each; the figures, with
    each size's ratio to the first size's, and a table."""
    root = Path(tempfile.mkdtemp(prefix="atalaia-scale-", dir=folder))
    figures: Figures = {"series": series, "step_s": step_s, "hot_days": hot_days}
    rows = ["| size | readings | hot GB | cold GB | " + " | ".join(METRICS) + " |"]
    rows.append("|" + "---|" * (4 + len(METRICS)))
    try:
        with fresh_database(url, "atalaia_bench_scale") as db:
            upgrade_database(db)
            engine = make_engine(db)
            sessions = make_session_factory(engine)
            fleet = Fleet(sessions, root, series, step_s)
            fleet.load_hot(hot_days + 1)
            moved = archive(
                sessions=sessions,
                policy=ColdPolicy(hot_days=hot_days),
                folder=root,
                now=END,
            )
            fleet.hot_start = END - hot_days * DAY_S
            figures["archive_readings_per_s"] = round(moved.readings / moved.seconds)
            first: dict[str, float] = {}
            for label in sizes:
                while fleet.readings < parse_size(label):
                    fleet.add_cold_day()
                fleet.settle()
                found = measure(fleet, samples, ingest_minutes)
                hot_bytes, cold_bytes = _disk(sessions)
                first = first or found
                figures[f"{label}_readings"] = fleet.readings
                figures[f"{label}_cold_bytes_per_reading"] = round(
                    cold_bytes / max(1, fleet.readings), 2
                )
                for key, value in found.items():
                    figures[f"{label}_{key}"] = value
                    figures[f"{label}_{key}_vs_first"] = round(value / first[key], 3)
                cells = [f"{v} ({v / first[k]:.2f}×)" for k, v in found.items()]
                rows.append(
                    f"| {label} | {fleet.readings:,} | {hot_bytes / 1e9:.2f} "
                    f"| {cold_bytes / 1e9:.2f} | " + " | ".join(cells) + " |"
                )
            engine.dispose()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    targets = [
        (f"{label}_{key}_vs_first", "≥" if key.startswith("ingest") else "≤",
         0.9 if key.startswith("ingest") else 1.1)
        for label in sizes[1:]
        for key in first
    ]  # fmt: skip
    return figures, "\n".join([*rows, *judge(figures, targets)])
