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
  `ReadingStore.append_many`, ten times (a transaction each): readings/s of
  the fastest;
- `window_hot` / `window_cold`: a random series' one-day window, in the hot
  days / anywhere in the cold history (`ReadingStore.window`), ms;
- `quality`: a random series' data-quality report over 3 days anywhere in
  the cold history (`services.data_quality.series_quality`; the same mix of
  files at every size: 10 M holds 4 cold days), ms;
- `training_read`: the last 7 days of 100 random series as training reads
  them (`ReadingStore.last_windows`: the hot days and the cold ones), ms.

Each size is measured once the database has settled (VACUUM ANALYZE,
CHECKPOINT): a maintenance that the growth set off would otherwise fall on
some sizes' timings. Each read is timed three times and the fastest counts
(another process on the machine adds to some runs, never takes away); the
figure is the median over the picks. Before the timings, every segment's
footer is read once (`footers_s`), as a serving process keeps them after a
while; the first read of a day in a process costs that file's footer more.
The bar: each figure within 10 % of its figure at the first size. The first
size is kept as a reference in a database and folder of its own, measured in
turns with the grown history, read by read (the machine's speed drifts by a
third within minutes here): each ratio is the grown history's figure over the
reference's of the same moment.
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
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.db.migrate import upgrade_database
from atalaia.adapters.db.repositories import ReadingStore
from atalaia.adapters.db.repositories.segments import SegmentStore
from atalaia.adapters.db.tables import SeriesRow
from atalaia.adapters.history.parquet_segments import read_series, write_segments
from atalaia.core.history import DAY_S, ColdPolicy
from atalaia.core.series import Readings
from atalaia.services.cold_history import archive
from atalaia.services.data_quality import QualityQuery, series_quality
from bench._fleet import fresh_database
from bench.predict_bench import Figures, judge

Sessions = sessionmaker[Session]
END = 1_764_547_200.0  # 2025-12-01T00:00:00Z: the hot days end here
METRICS = ("ingest", "window_hot", "window_cold", "quality", "training_read")
INGEST_BATCHES = 10
REPEATS = 3  # each pick is timed this many times; the fastest counts
QUALITY_DAYS = 3  # the quality report's window, in the cold history at every size
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
        stem = f"readings-{start:.0f}-{start + DAY_S:.0f}-bench"
        rows = (np.repeat(self.keys, self.per_day), ts.ravel(), values.ravel())
        written = write_segments(self.folder, stem, [rows])
        with self.sessions() as session:
            for part in written:
                SegmentStore(session).add(start, start + DAY_S, part)
            session.commit()
        self.first_day = start
        self.readings += sum(part.rows for part in written)

    def settle(self, engine: Engine) -> None:
        """The series' first readings are the history's (as ingest keeps them),
        and the database done with what the growth left it (vacuumed,
        analysed, checkpointed): every size is measured in the same state,
        not during a maintenance the one before set off."""
        with self.sessions() as session:
            session.execute(update(SeriesRow).values(first_ts=self.first_day))
            session.commit()
        with engine.connect().execution_options(
            isolation_level="AUTOCOMMIT"
        ) as connection:
            for statement in (
                "VACUUM ANALYZE readings",
                "VACUUM ANALYZE series",
                "VACUUM ANALYZE reading_segments",
                "CHECKPOINT",
            ):
                connection.execute(text(statement))


def _median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


def _timed(call: Callable[[], object]) -> float:
    began = time.perf_counter()
    call()
    return time.perf_counter() - began


def _best(call: Callable[[], object]) -> float:
    """The fastest of `REPEATS` runs: what the work costs, without the
    moments another process held the machine."""
    return min(_timed(call) for _ in range(REPEATS))


def warm_footers(sessions: Sessions) -> float:
    """Read every segment's footer once, as a serving process has after a
    while (it keeps them); the seconds it took."""
    with sessions() as session:
        paths = [s.path for s in SegmentStore(session).overlapping(-math.inf, math.inf)]
    nothing = np.array([-1], np.int64)
    return _timed(lambda: [read_series(path, nothing) for path in paths])


Reads = dict[str, list[Callable[[], object]]]  # by metric, one a pick


def _reads(fleet: Fleet, session: Session, samples: int) -> Reads:
    """The reads of one size by metric, at the same random places of every
    fleet's history (drawn as shares of its hot and cold days)."""
    rng = np.random.default_rng(11)
    store = ReadingStore(session)
    hot_days = (END - fleet.hot_start) / DAY_S
    cold_days = (fleet.hot_start - fleet.first_day) / DAY_S
    reads: Reads = {m: [] for m in METRICS if m != "ingest"}
    for _ in range(samples):
        sid = fleet.ids[int(rng.integers(len(fleet.ids)))]
        hot = fleet.hot_start + float(rng.uniform(0, hot_days - 1)) * DAY_S
        cold = fleet.first_day + float(rng.uniform(0, cold_days - 1)) * DAY_S
        start = (
            fleet.first_day + float(rng.uniform(0, cold_days - QUALITY_DAYS)) * DAY_S
        )
        query = QualityQuery(start=start, end=start + QUALITY_DAYS * DAY_S)
        reads["window_hot"].append(
            partial(store.window, sid, start=hot, end=hot + DAY_S)
        )
        reads["window_cold"].append(
            partial(store.window, sid, start=cold, end=cold + DAY_S)
        )
        reads["quality"].append(partial(series_quality, session, sid, query))
    for _ in range(max(3, samples // 5)):
        many = min(TRAINING_SERIES, len(fleet.ids))
        chosen = rng.choice(fleet.ids, many, replace=False).tolist()
        reads["training_read"].append(
            partial(store.last_windows, chosen, TRAINING_HOURS)
        )
    return reads


def measure(
    fleets: tuple[Fleet, Fleet], samples: int, ingest_minutes: float
) -> tuple[dict[str, float], dict[str, float]]:
    """The figures of a size for each of two fleets (the grown one, its
    reference), the two timed in turns, read by read and batch by batch: the
    machine's moods fall on both."""
    taken: tuple[dict[str, list[float]], dict[str, list[float]]] = ({}, {})
    with fleets[0].sessions() as first, fleets[1].sessions() as second:
        reads = (_reads(fleets[0], first, samples), _reads(fleets[1], second, samples))
        for metric in reads[0]:
            for pair in zip(reads[0][metric], reads[1][metric], strict=True):
                for times, call in zip(taken, pair, strict=True):
                    times.setdefault(metric, []).append(_best(call))
    for _ in range(INGEST_BATCHES):  # last: what it stores waits for the next settle
        for times, fleet in zip(taken, fleets, strict=True):
            end = fleet.next_ts + ingest_minutes * 60
            times.setdefault("ingest", []).append(fleet.ingest(fleet.next_ts, end))
            fleet.next_ts = end
    per_batch = len(fleets[0].ids) * int(ingest_minutes * 60 / fleets[0].step_s)
    figures: tuple[dict[str, float], dict[str, float]] = ({}, {})
    for found, times in zip(figures, taken, strict=True):
        found["ingest_readings_per_s"] = round(per_batch / min(times["ingest"]))
        for metric in reads[0]:
            found[f"{metric}_ms"] = _median_ms(times[metric])
    return figures


def _built(
    db: str, folder: Path, series: int, step_s: float, hot_days: int
) -> tuple[Fleet, Engine, float]:
    """A fleet with `hot_days` hot and its oldest day moved out by the archive
    task; the archive's readings/s."""
    upgrade_database(db)
    engine = make_engine(db)
    sessions = make_session_factory(engine)
    fleet = Fleet(sessions, folder, series, step_s)
    fleet.load_hot(hot_days + 1)
    policy = ColdPolicy(hot_days=hot_days)
    moved = archive(sessions=sessions, policy=policy, folder=folder, now=END)
    fleet.hot_start = END - hot_days * DAY_S
    return fleet, engine, moved.readings / moved.seconds


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
    """Grow a history through `sizes` beside a reference that stays at the
    first size, and measure both at each; the figures, with each size's ratio
    to the reference's, and a table."""
    root = Path(tempfile.mkdtemp(prefix="atalaia-scale-", dir=folder))
    figures: Figures = {"series": series, "step_s": step_s, "hot_days": hot_days}
    head = "| size | readings | hot GB | cold GB | footers s | "
    rows = [head + " | ".join(METRICS) + " |", "|" + "---|" * (5 + len(METRICS))]
    built = partial(_built, series=series, step_s=step_s, hot_days=hot_days)
    ratios: list[str] = []
    try:
        with (
            fresh_database(url, "atalaia_bench_scale") as db,
            fresh_database(None, "atalaia_bench_scale_reference") as reference_db,
        ):
            reference, reference_engine, _ = built(reference_db, root / "reference")
            grown, engine, rate = built(db, root / "grown")
            figures["archive_readings_per_s"] = round(rate)
            for fleet in (reference, grown):
                while fleet.readings < parse_size(sizes[0]):
                    fleet.add_cold_day()
            for label in sizes:
                while grown.readings < parse_size(label):
                    grown.add_cold_day()
                reference.settle(reference_engine)
                grown.settle(engine)
                footers_s = warm_footers(grown.sessions) + warm_footers(
                    reference.sessions
                )
                found, base = measure((grown, reference), samples, ingest_minutes)
                hot_bytes, cold_bytes = _disk(grown.sessions)
                figures[f"{label}_readings"] = grown.readings
                figures[f"{label}_footers_s"] = round(footers_s, 3)
                figures[f"{label}_cold_bytes_per_reading"] = round(
                    cold_bytes / max(1, grown.readings), 2
                )
                for key, value in found.items():
                    figures[f"{label}_{key}"] = value
                    figures[f"{label}_{key}_vs_reference"] = round(value / base[key], 3)
                    ratios.append(f"{label}_{key}_vs_reference")
                cells = [f"{v} ({v / base[k]:.2f}×)" for k, v in found.items()]
                rows.append(
                    f"| {label} | {grown.readings:,} | {hot_bytes / 1e9:.2f} "
                    f"| {cold_bytes / 1e9:.2f} | {footers_s:.2f} | "
                    + " | ".join(cells)
                    + " |"
                )
            engine.dispose()
            reference_engine.dispose()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    targets = [
        (key, "≥" if "ingest" in key else "≤", 0.9 if "ingest" in key else 1.1)
        for key in ratios
    ]
    return figures, "\n".join([*rows, *judge(figures, targets)])
