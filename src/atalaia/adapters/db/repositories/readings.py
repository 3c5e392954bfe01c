"""Readings and series: bulk, idempotent ingest and windowed queries."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain, repeat

import numpy as np
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from atalaia.adapters.db.tables import ReadingRow, SeriesRow, utcnow
from atalaia.core.series import Readings, sensor_of


@dataclass(frozen=True, slots=True)
class IngestResult:
    received: int
    inserted: int

    @property
    def ignored(self) -> int:
        return self.received - self.inserted


@dataclass(frozen=True, slots=True)
class SeriesSummary:
    series_id: str
    sensor_id: str
    axis: str | None
    n_points: int
    mean: float
    std: float
    first_ts: float | None
    last_ts: float | None


def _summary(row: SeriesRow) -> SeriesSummary:
    std = float(np.sqrt(row.m2 / row.n_points)) if row.n_points else 0.0
    return SeriesSummary(
        row.series_id, row.sensor_id, row.axis, row.n_points, row.mean, std,
        row.first_ts, row.last_ts,
    )  # fmt: skip


class ReadingStore:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name

    def append(self, series_id: str, readings: Readings) -> IngestResult:
        """Store readings keyed by (series, timestamp); known timestamps are ignored.

        One bulk statement per call (COPY on PostgreSQL). The series' running
        statistics are updated with the newly stored values only.
        """
        ts, vs = readings.timestamps, readings.values
        if ts.size == 0:  # no row for a series without data: its stats would be 0/0
            return IngestResult(0, 0)
        series = self._series_for_update(series_id)
        known = self.session.scalars(
            select(ReadingRow.ts).where(
                ReadingRow.series_id == series_id,
                ReadingRow.ts.between(float(ts.min()), float(ts.max())),
            )
        ).all()
        fresh = ~np.isin(ts, np.fromiter(known, np.float64, len(known)))
        ts, vs = ts[fresh], vs[fresh]
        if ts.size:
            self._bulk_insert(series_id, ts, vs)
            _merge_stats(series, ts, vs)
        return IngestResult(len(readings), int(ts.size))

    def _series_for_update(self, series_id: str) -> SeriesRow:
        """The series row, created if new, locked until commit (PostgreSQL)."""
        sensor, axis = sensor_of(series_id)
        insert = pg_insert if self.dialect == "postgresql" else sqlite_insert
        self.session.execute(
            insert(SeriesRow)
            .values(
                series_id=series_id,
                sensor_id=sensor,
                axis=axis,
                tags={},
                n_points=0,
                mean=0.0,
                m2=0.0,
                created_at=utcnow(),
            )  # fmt: skip
            .on_conflict_do_nothing()
        )
        stmt = select(SeriesRow).where(SeriesRow.series_id == series_id)
        return self.session.scalars(stmt.with_for_update()).one()

    def _bulk_insert(self, series_id: str, ts: np.ndarray, vs: np.ndarray) -> None:
        if self.dialect == "postgresql":
            self._copy_insert(series_id, ts, vs)
            return
        # One executemany of plain tuples: the ORM's per-row dicts cost 4× more.
        rows = zip(repeat(series_id), ts.tolist(), vs.tolist())
        self.session.connection().exec_driver_sql(
            "INSERT OR IGNORE INTO readings (series_id, ts, value) VALUES (?, ?, ?)",
            list(rows),
        )

    def _copy_insert(self, series_id: str, ts: np.ndarray, vs: np.ndarray) -> None:
        # COPY into a staging table, then one INSERT … ON CONFLICT: a concurrent
        # ingest of the same timestamps cannot fail the batch.
        buffer = io.StringIO()
        np.savetxt(buffer, np.column_stack([ts, vs]), fmt="%.17g", delimiter="\t")
        self.session.execute(
            text(
                "CREATE TEMP TABLE IF NOT EXISTS readings_staging "
                "(ts double precision, value double precision) ON COMMIT DELETE ROWS"
            )
        )
        raw = self.session.connection().connection.driver_connection
        with raw.cursor() as cursor:  # type: ignore[union-attr]
            with cursor.copy("COPY readings_staging (ts, value) FROM STDIN") as copy:
                copy.write(buffer.getvalue())
        self.session.execute(
            text(
                "INSERT INTO readings (series_id, ts, value) "
                "SELECT :sid, ts, value FROM readings_staging "
                "ON CONFLICT DO NOTHING"
            ),
            {"sid": series_id},
        )
        self.session.execute(text("TRUNCATE readings_staging"))

    def window(
        self,
        series_id: str,
        *,
        start: float | None = None,
        end: float | None = None,
        after: float | None = None,
        limit: int | None = None,
    ) -> Readings:
        """Readings with start ≤ ts < end and ts > after, oldest first, ≤ `limit`."""
        stmt = select(ReadingRow.ts, ReadingRow.value).where(
            ReadingRow.series_id == series_id
        )
        if start is not None:
            stmt = stmt.where(ReadingRow.ts >= start)
        if after is not None:
            stmt = stmt.where(ReadingRow.ts > after)
        if end is not None:
            stmt = stmt.where(ReadingRow.ts < end)
        rows = self.session.execute(stmt.order_by(ReadingRow.ts).limit(limit))
        data = _float_matrix(rows, 2)
        return Readings(data[:, 0].copy(), data[:, 1].copy())

    def last_hours(self, series_id: str, hours: float) -> Readings:
        """The readings of the `hours` before the series' newest reading."""
        newest = self.session.scalar(
            select(func.max(ReadingRow.ts)).where(ReadingRow.series_id == series_id)
        )
        if newest is None:
            return Readings.of([], [])
        return self.window(series_id, start=newest - hours * 3600.0, end=newest + 1e-6)

    def count_last_hours(self, series_id: str, hours: float) -> int:
        row = self.session.get(SeriesRow, series_id)
        if row is None or row.last_ts is None:
            return 0
        stmt = select(func.count()).where(
            ReadingRow.series_id == series_id,
            ReadingRow.ts >= row.last_ts - hours * 3600.0,
        )
        return int(self.session.scalar(stmt) or 0)

    def get_series(self, series_id: str) -> SeriesSummary | None:
        row = self.session.get(SeriesRow, series_id)
        return _summary(row) if row is not None else None

    def list_series(
        self, *, prefix: str | None = None, after: str | None = None, limit: int = 100
    ) -> list[SeriesSummary]:
        stmt = select(SeriesRow).order_by(SeriesRow.series_id).limit(limit)
        if prefix:
            stmt = stmt.where(SeriesRow.series_id.startswith(prefix, autoescape=True))
        if after:
            stmt = stmt.where(SeriesRow.series_id > after)
        return [_summary(row) for row in self.session.scalars(stmt)]

    def series_ids(self, *, prefix: str | None = None) -> list[str]:
        stmt = select(SeriesRow.series_id).order_by(SeriesRow.series_id)
        if prefix:
            stmt = stmt.where(SeriesRow.series_id.startswith(prefix, autoescape=True))
        return list(self.session.scalars(stmt))

    def all_statistics(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(series ids, means, stds) of every series, for the inference fallback."""
        rows = self.session.execute(
            select(
                SeriesRow.series_id, SeriesRow.mean, SeriesRow.m2, SeriesRow.n_points
            )
        ).all()
        ids = [r[0] for r in rows]
        data = _float_matrix((r[1:] for r in rows), 3)
        std = np.sqrt(data[:, 1] / np.maximum(data[:, 2], 1.0))
        return ids, data[:, 0].copy(), std


def _float_matrix(rows: Iterable[Sequence[float]], width: int) -> np.ndarray:
    """Rows of numbers as an (n, width) float64 array, without per-row objects.

    numpy.array() on SQLAlchemy rows probes each one as an object (slow); a flat
    iterator over their values is read at C speed.
    """
    flat = np.fromiter(chain.from_iterable(rows), np.float64)
    return flat.reshape(-1, width)


def _merge_stats(series: SeriesRow, ts: np.ndarray, vs: np.ndarray) -> None:
    """Chan's parallel update of (count, mean, M2) with a batch of new values."""
    n_a, n_b = series.n_points, int(vs.size)
    mean_b = float(vs.mean())
    m2_b = float(((vs - mean_b) ** 2).sum())
    n = n_a + n_b
    delta = mean_b - series.mean
    series.mean = series.mean + delta * n_b / n
    series.m2 = series.m2 + m2_b + delta * delta * n_a * n_b / n
    series.n_points = n
    lo, hi = float(ts.min()), float(ts.max())
    series.first_ts = lo if series.first_ts is None else min(series.first_ts, lo)
    series.last_ts = hi if series.last_ts is None else max(series.last_ts, hi)
