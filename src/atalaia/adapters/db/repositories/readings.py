"""Readings and series: bulk, idempotent ingest and windowed queries."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import cast

import numpy as np
import numpy.typing as npt
import orjson
from sqlalchemy import (
    ScalarSelect,
    Table,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories._columns import fetch_columns
from atalaia.adapters.db.repositories._pg_binary import (
    COPY_HEADER,
    COPY_TRAILER,
    Float8Array,
    Int8Array,
    copy_tuples,
    float8_array,
    use_arrays,
)
from atalaia.adapters.db.repositories.segments import SegmentStore, merged
from atalaia.adapters.db.tables import ReadingRow, SeriesRow, utcnow
from atalaia.adapters.db.translation import driver_errors_translated
from atalaia.core.series import FloatArray, Readings, sensor_of

IntArray = npt.NDArray[np.int64]


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

        The series' running statistics are updated with the newly stored values.
        """
        return self.append_many({series_id: readings})[series_id]

    def append_many(self, batch: Mapping[str, Readings]) -> dict[str, IngestResult]:
        """`append` for many series in one bulk write (one binary COPY on PostgreSQL).

        Every series row is locked (PostgreSQL) before its stored timestamps are
        read, so writers of one series take turns and the new readings go straight
        into the table. Series are written in id order: the order of the readings
        index, and one lock order for every writer.
        """
        results = {sid: IngestResult(len(r), 0) for sid, r in batch.items()}
        present = sorted(sid for sid, r in batch.items() if len(r))
        if not present:  # no row for a series without data: its stats would be 0/0
            return results
        rows = self._series_for_update(present)
        candidates = {sid: _first_of_each(batch[sid]) for sid in present}
        stored = self._stored(rows, candidates)
        fresh, merged = [], []
        for sid in present:
            ts, vs = candidates[sid]
            new = ~np.isin(ts, stored.get(rows[sid].key, ()))
            ts, vs = ts[new], vs[new]
            results[sid] = IngestResult(len(batch[sid]), int(ts.size))
            if ts.size:
                fresh.append((rows[sid].key, ts, vs))
                merged.append(_merged(rows[sid], ts, vs))
        if fresh:
            self._bulk_insert(fresh)
            self._write_stats(merged)
        return results

    def _series_for_update(self, series_ids: list[str]) -> dict[str, _Stats]:
        """The series' keys and statistics, their rows created if new and
        locked until commit (PostgreSQL)."""
        # Only the new ones: an insert that conflicts still draws a key from the
        # sequence (PostgreSQL), and series are written again and again.
        known = set(
            self.session.scalars(
                select(SeriesRow.series_id).where(SeriesRow.series_id.in_(series_ids))
            )
        )
        missing = [sid for sid in series_ids if sid not in known]
        if missing:
            self._create_series(missing)
        row = SeriesRow
        stmt = (
            select(row.series_id, row.key, row.n_points, row.mean, row.m2,
                   row.first_ts, row.last_ts)
            .where(row.series_id.in_(series_ids))
            .order_by(row.series_id)
            .with_for_update()
        )  # fmt: skip
        return {
            sid: _Stats(sid, _keyed(sid, key), n, mean, m2, first, last)
            for sid, key, n, mean, m2, first, last in self.session.execute(stmt)
        }

    def _write_stats(self, merged: list[_Stats]) -> None:
        """The series' statistics after the readings stored: one statement."""
        if self.dialect == "postgresql":
            names = ("series_id", *_STAT_FIELDS)
            columns = {n: [getattr(s, n) for s in merged] for n in names}
            self.session.execute(_WRITE_STATS, columns)
            return
        by_id = [
            {n: getattr(s, n) for n in ("series_id", *_STAT_FIELDS)} for s in merged
        ]
        self.session.execute(update(SeriesRow), by_id)  # by primary key

    def _create_series(self, series_ids: list[str]) -> None:
        """Rows for these series, unless a concurrent writer just made them."""
        upsert = pg_insert if self.dialect == "postgresql" else sqlite_insert
        now = utcnow()
        new_rows: list[dict[str, object]] = [
            {"series_id": sid, "sensor_id": sensor, "axis": axis, "tags": {},
             "n_points": 0, "mean": 0.0, "m2": 0.0, "created_at": now}
            for sid in series_ids
            for sensor, axis in [sensor_of(sid)]
        ]  # fmt: skip
        self.session.execute(upsert(SeriesRow).on_conflict_do_nothing(), new_rows)
        if self.dialect != "postgresql":
            self._number_new_series()

    def _number_new_series(self) -> None:
        """Give keys to the series just created (SQLite: this transaction writes,
        so no other writer can take the same numbers)."""
        new = self.session.scalars(
            select(SeriesRow.series_id)
            .where(SeriesRow.key.is_(None))
            .order_by(SeriesRow.series_id)
        ).all()
        if not new:
            return
        last = self.session.scalar(select(func.max(SeriesRow.key))) or 0
        self.session.execute(
            update(SeriesRow),
            [{"series_id": sid, "key": key} for key, sid in enumerate(new, last + 1)],
        )

    def _stored(
        self,
        rows: Mapping[str, _Stats],
        candidates: Mapping[str, tuple[FloatArray, FloatArray]],
    ) -> dict[int, FloatArray]:
        """Of the candidates' timestamps, those each series (by key) already
        holds. PostgreSQL: one query for every series (the index probed at each
        (key, timestamp)); SQLite: one range query a series. Only timestamps
        within a series' stored span are asked for: newer readings (most of
        them, in a stream or a time-ordered file) cost no probe."""
        asked = [
            (rows[sid].key, inside)
            for sid, (ts, _) in candidates.items()
            if rows[sid].n_points  # a new series holds nothing yet
            and (inside := _within(ts, rows[sid].first_ts, rows[sid].last_ts)).size
        ]
        if not asked:
            return {}
        if self.dialect == "postgresql":
            found = self._stored_at(asked)
        else:
            found = {key: self._stored_between(key, ts) for key, ts in asked}
        return self._stored_cold(asked, found)  # after the hot: see `window`

    def _stored_cold(
        self, asked: list[tuple[int, FloatArray]], found: dict[int, FloatArray]
    ) -> dict[int, FloatArray]:
        """`found` with the asked timestamps that the cold history holds."""
        segments = SegmentStore(self.session)
        span = segments.span()
        for key, ts in asked:
            old = ts[ts < span]
            if not old.size:
                continue
            cold = segments.window(key, float(old.min()), float(old.max()) + 1e-6)
            if cold is not None and cold.timestamps.size:
                hot = found.get(key, np.empty(0, np.float64))
                found[key] = np.concatenate([hot, cold.timestamps])
        return found

    def _stored_at(self, asked: list[tuple[int, FloatArray]]) -> dict[int, FloatArray]:
        """Of the asked (key, timestamps), those stored: one query (PostgreSQL)."""
        keys = np.concatenate([np.full(ts.size, key, np.int64) for key, ts in asked])
        times = np.concatenate([ts for _, ts in asked])
        connection = self.session.connection()
        raw = connection.connection.driver_connection
        with (
            driver_errors_translated(connection),
            raw.cursor(binary=True) as cursor,  # type: ignore[union-attr]
        ):
            use_arrays(cursor.adapters)
            found: Iterable[tuple[int, bytes]] = cursor.execute(
                _STORED_AT, (Int8Array(keys), Float8Array(times))
            )
            return {key: float8_array(ts) for key, ts in found}

    def _stored_between(self, key: int, ts: FloatArray) -> FloatArray:
        known = self.session.scalars(
            select(ReadingRow.ts).where(
                ReadingRow.series_key == key,
                ReadingRow.ts.between(float(ts.min()), float(ts.max())),
            )
        ).all()
        return np.fromiter(known, np.float64, len(known))

    def _bulk_insert(self, fresh: list[tuple[int, FloatArray, FloatArray]]) -> None:
        if self.dialect == "postgresql":
            self._copy_insert(fresh)
            return
        # One statement per series that SQLite runs in C, without holding the GIL
        # (an executemany binds each row in Python): the readings go as a JSON
        # array of [ts, value] pairs, in which floats round-trip exactly. Run by
        # the session, it is seen as a write (a background job's write turn).
        for key, ts, vs in fresh:
            pairs = orjson.dumps(
                np.column_stack([ts, vs]), option=orjson.OPT_SERIALIZE_NUMPY
            )
            self.session.execute(_SQLITE_INSERT, {"key": key, "pairs": pairs})

    def _copy_insert(self, fresh: list[tuple[int, FloatArray, FloatArray]]) -> None:
        # Binary COPY: numpy writes the tuples, the server parses no text.
        connection = self.session.connection()
        raw = connection.connection.driver_connection
        statement = "COPY readings (series_key, ts, value) FROM STDIN (FORMAT BINARY)"
        with (
            driver_errors_translated(connection),
            raw.cursor() as cursor,  # type: ignore[union-attr]
            cursor.copy(statement) as copy,
        ):
            copy.write(COPY_HEADER)
            for key, ts, vs in fresh:
                copy.write(copy_tuples(key, ts, vs))
            copy.write(COPY_TRAILER)

    def window(
        self,
        series_id: str,
        *,
        start: float | None = None,
        end: float | None = None,
        after: float | None = None,
        limit: int | None = None,
    ) -> Readings:
        """Readings with start ≤ ts < end and ts > after, oldest first, ≤ `limit`.

        PostgreSQL packs them into two float8 arrays in binary (as
        `last_windows`): 100,000 readings in a fifth of the time of rows. The
        hot readings are read before the cold ones: a period moved out between
        the two reads is read twice (and counted once), never missed.
        """
        hot = self._hot_window(
            series_id, start=start, end=end, after=after, limit=limit
        )
        lower = max(_lowest(start), _lowest(after))
        cold = self._cold_window(series_id, lower, _highest(end))
        if cold is None:
            return hot
        readings = merged([cold, hot])
        if after is not None and readings.timestamps.size:
            later = readings.timestamps > after
            readings = Readings(readings.timestamps[later], readings.values[later])
        if limit is not None:
            readings = Readings(readings.timestamps[:limit], readings.values[:limit])
        return readings

    def _cold_window(self, series_id: str, start: float, end: float) -> Readings | None:
        """A series' readings from the cold history (None: none could be there)."""
        segments = SegmentStore(self.session)
        if segments.span() <= start:  # the common case: one indexed lookup
            return None
        key = self.session.scalar(
            select(SeriesRow.key).where(SeriesRow.series_id == series_id)
        )
        return None if key is None else segments.window(key, start, end)

    def _hot_window(
        self,
        series_id: str,
        *,
        start: float | None,
        end: float | None,
        after: float | None,
        limit: int | None,
    ) -> Readings:
        if self.dialect == "postgresql":
            return self._window_arrays(series_id, (start, after, end), limit)
        stmt = select(ReadingRow.ts, ReadingRow.value).where(
            ReadingRow.series_key == _key_of(series_id)
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

    def _window_arrays(
        self,
        series_id: str,
        bounds: tuple[float | None, float | None, float | None],
        limit: int | None,
    ) -> Readings:
        start, after, end = bounds
        connection = self.session.connection()
        raw = connection.connection.driver_connection
        with (
            driver_errors_translated(connection),
            raw.cursor(binary=True) as cursor,  # type: ignore[union-attr]
        ):
            ts, vs = cursor.execute(
                _WINDOW,
                (
                    series_id,
                    -np.inf if start is None else start,
                    -np.inf if after is None else after,
                    np.inf if end is None else end,
                    limit,
                ),
            ).fetchone()
        return _ordered(float8_array(ts), float8_array(vs))

    def last_hours(self, series_id: str, hours: float) -> Readings:
        """The readings of the `hours` before the series' newest reading."""
        newest = self.session.scalar(
            select(SeriesRow.last_ts).where(SeriesRow.series_id == series_id)
        )
        if newest is None:
            return Readings.of([], [])
        return self.window(series_id, start=newest - hours * 3600.0, end=newest + 1e-6)

    def newest_after(
        self, series_ids: Sequence[str], after: FloatArray, depth: IntArray
    ) -> dict[str, Readings]:
        """Of each series, its newest `depth` readings with timestamps after
        its `after`, oldest first (by series id, those with some); one query on
        PostgreSQL."""
        if self.dialect != "postgresql":
            return {
                sid: readings
                for sid, t, n in zip(
                    series_ids, after.tolist(), depth.tolist(), strict=True
                )  # fmt: skip
                if len(readings := self._newest_after(sid, t, n))
            }
        connection = self.session.connection()
        raw = connection.connection.driver_connection
        with (
            driver_errors_translated(connection),
            raw.cursor(binary=True) as cursor,  # type: ignore[union-attr]
        ):
            rows = cursor.execute(
                _NEWEST_AFTER, (list(series_ids), after.tolist(), depth.tolist())
            )
            return {
                sid: _ordered(float8_array(ts), float8_array(vs))
                for sid, ts, vs in rows
            }

    def _newest_after(self, series_id: str, after: float, depth: int) -> Readings:
        stmt = (
            select(ReadingRow.ts, ReadingRow.value)
            .where(ReadingRow.series_key == _key_of(series_id), ReadingRow.ts > after)
            .order_by(ReadingRow.ts.desc())
            .limit(depth)
        )
        data = _float_matrix(self.session.execute(stmt), 2)
        return _ordered(data[:, 0].copy(), data[:, 1].copy())

    def last_windows(
        self, series_ids: Sequence[str], hours: float
    ) -> dict[str, Readings]:
        """`last_hours` of many series; one query on PostgreSQL.

        PostgreSQL packs each series' window into two float8 arrays in binary,
        which numpy reads whole: no Python object per reading.
        """
        if self.dialect != "postgresql":
            return {sid: self.last_hours(sid, hours) for sid in series_ids}
        connection = self.session.connection()
        raw = connection.connection.driver_connection
        with (
            driver_errors_translated(connection),
            raw.cursor(binary=True) as cursor,  # type: ignore[union-attr]
        ):
            rows = cursor.execute(_LAST_WINDOWS, (hours * 3600.0, list(series_ids)))
            windows = {
                sid: _ordered(float8_array(ts), float8_array(vs))
                for sid, ts, vs in rows
            }
        empty = Readings.of([], [])
        windows = {sid: windows.get(sid, empty) for sid in series_ids}
        return self._cold_filled(windows, hours)

    def _cold_filled(
        self, windows: dict[str, Readings], hours: float
    ) -> dict[str, Readings]:
        """`last_windows` with the readings of the cold history of the series
        whose window starts before the hot one (a series silent for long)."""
        span = SegmentStore(self.session).span()
        if span == -math.inf:
            return windows
        row = SeriesRow
        reaching = self.session.execute(
            select(row.key, row.series_id, row.last_ts).where(
                row.series_id.in_(list(windows)),
                row.last_ts.is_not(None),
                row.last_ts - hours * 3600.0 < span,
            )
        ).all()
        if not reaching:
            return windows
        lasts = {
            _keyed(sid, key): (sid, cast(float, last)) for key, sid, last in reaching
        }
        start = min(last for _, last in lasts.values()) - hours * 3600.0
        cold = SegmentStore(self.session).windows(lasts, start, span) or {}
        for key, readings in cold.items():
            sid, last = lasts[key]
            inside = readings.timestamps >= last - hours * 3600.0
            mine = Readings(readings.timestamps[inside], readings.values[inside])
            windows[sid] = merged([mine, windows[sid]])
        return windows

    def count_last_hours(self, series_id: str, hours: float) -> int:
        row = self.session.get(SeriesRow, series_id)
        if row is None or row.last_ts is None:
            return 0
        start = row.last_ts - hours * 3600.0
        stmt = select(func.count()).where(
            ReadingRow.series_key == _key(row), ReadingRow.ts >= start
        )
        hot = int(self.session.scalar(stmt) or 0)
        cold = self._cold_window(series_id, start, math.inf)
        return hot if cold is None else hot + len(cold)

    def get_series(self, series_id: str) -> SeriesSummary | None:
        row = self.session.get(SeriesRow, series_id)
        return _summary(row) if row is not None else None

    def summaries(self, series_ids: Sequence[str]) -> dict[str, SeriesSummary]:
        """The series among `series_ids` that have data, by id."""
        stmt = select(SeriesRow).where(SeriesRow.series_id.in_(series_ids))
        return {row.series_id: _summary(row) for row in self.session.scalars(stmt)}

    def list_series(
        self, *, prefix: str | None = None, after: str | None = None, limit: int = 100
    ) -> list[SeriesSummary]:
        stmt = select(SeriesRow).order_by(SeriesRow.series_id).limit(limit)
        if prefix:
            stmt = stmt.where(SeriesRow.series_id.startswith(prefix, autoescape=True))
        if after:
            stmt = stmt.where(SeriesRow.series_id > after)
        return [_summary(row) for row in self.session.scalars(stmt)]

    def axes_of(self, sensor_id: str) -> dict[str, str]:
        """A sensor's stored series by axis name (series with an axis only)."""
        stmt = select(SeriesRow.axis, SeriesRow.series_id).where(
            SeriesRow.sensor_id == sensor_id, SeriesRow.axis.is_not(None)
        )
        return {str(axis): series_id for axis, series_id in self.session.execute(stmt)}

    def series_ids(self, *, prefix: str | None = None) -> list[str]:
        stmt = select(SeriesRow.series_id).order_by(SeriesRow.series_id)
        if prefix:
            stmt = stmt.where(SeriesRow.series_id.startswith(prefix, autoescape=True))
        return list(self.session.scalars(stmt))

    def all_statistics(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(series ids, means, stds) of every series, for the inference fallback."""
        stmt = select(
            SeriesRow.series_id, SeriesRow.mean, SeriesRow.m2, SeriesRow.n_points
        )
        kinds = (str, np.float64, np.float64, np.float64)
        ids, mean, m2, n = fetch_columns(self.session, stmt, kinds)
        return ids, mean, np.sqrt(m2 / np.maximum(n, 1.0))


_PAIRS = func.json_each(bindparam("pairs")).table_valued("value")
_SQLITE_INSERT = (
    insert(cast(Table, ReadingRow.__table__))  # a Core insert: its own parameters
    .prefix_with("OR IGNORE")
    .from_select(
        ["series_key", "ts", "value"],
        select(
            bindparam("key"),
            func.json_extract(_PAIRS.c.value, "$[0]"),
            func.json_extract(_PAIRS.c.value, "$[1]"),
        ),
    )
)

# Each series' window, aggregated in the order the scan meets the readings: the
# order they were stored in, which is nearly always the timestamps' (`_ordered`).
# Which of these (series key, timestamp) pairs are stored.
# The arrays asked go and come back in binary: no Python object per reading.
_STORED_AT = """
SELECT r.series_key, array_send(array_agg(r.ts))
FROM unnest(%b::bigint[], %b::float8[]) AS asked(key, ts)
JOIN readings AS r ON r.series_key = asked.key AND r.ts = asked.ts
GROUP BY r.series_key
"""

_NEWEST_AFTER = """
SELECT a.series_id, array_send(w.ts), array_send(w.value)
FROM unnest(%s::text[], %s::float8[], %s::bigint[]) AS a(series_id, after, depth)
JOIN series AS s ON s.series_id = a.series_id
CROSS JOIN LATERAL (
    SELECT array_agg(ts) AS ts, array_agg(value) AS value FROM (
        SELECT ts, value FROM readings
        WHERE series_key = s.key AND ts > a.after
        ORDER BY ts DESC LIMIT a.depth
    ) AS newest
) AS w
WHERE w.ts IS NOT NULL
"""

_WINDOW = """
SELECT array_send(array_agg(ts)), array_send(array_agg(value)) FROM (
    SELECT ts, value FROM readings
    WHERE series_key = (SELECT key FROM series WHERE series_id = %s)
    AND ts >= %s AND ts > %s AND ts < %s
    ORDER BY ts LIMIT %s
) AS w
"""

_LAST_WINDOWS = """
SELECT s.series_id, array_send(w.ts), array_send(w.value)
FROM series AS s
CROSS JOIN LATERAL (
    SELECT array_agg(ts) AS ts, array_agg(value) AS value FROM readings
    WHERE series_key = s.key AND ts >= s.last_ts - %s
) AS w
WHERE s.series_id = ANY(%s)
"""


def _first_of_each(readings: Readings) -> tuple[FloatArray, FloatArray]:
    """The readings, the first of each timestamp given twice dropped after it."""
    ts, vs = readings.timestamps, readings.values
    if not (ts[1:] > ts[:-1]).all():
        first = np.sort(np.unique(ts, return_index=True)[1])
        ts, vs = ts[first], vs[first]
    return ts, vs


def _lowest(bound: float | None) -> float:
    return -math.inf if bound is None else bound


def _highest(bound: float | None) -> float:
    return math.inf if bound is None else bound


def _within(ts: FloatArray, first: float | None, last: float | None) -> FloatArray:
    """The timestamps in first ≤ ts ≤ last (a series' stored span)."""
    if first is None or last is None:
        return ts
    return ts[(ts >= first) & (ts <= last)]


def _keyed(series_id: str, key: int | None) -> int:
    """A series' key (given when its row is written)."""
    assert key is not None, f"series {series_id} has no key"
    return key


def _key(series: SeriesRow) -> int:
    """A series row's key."""
    return _keyed(series.series_id, series.key)


def _key_of(series_id: str) -> ScalarSelect[int | None]:
    """The key of `series_id`, as a subquery of the statement that needs it."""
    return (
        select(SeriesRow.key).where(SeriesRow.series_id == series_id).scalar_subquery()
    )


def _ordered(ts: FloatArray, values: FloatArray) -> Readings:
    """Readings sorted by timestamp; a sorted window costs one comparison pass."""
    if not (ts[1:] > ts[:-1]).all():
        order = np.argsort(ts, kind="stable")
        ts, values = ts[order], values[order]
    return Readings(ts, values)


def _float_matrix(rows: Iterable[Sequence[float]], width: int) -> np.ndarray:
    """Rows of numbers as an (n, width) float64 array, without per-row objects.

    numpy.array() on SQLAlchemy rows probes each one as an object (slow); a flat
    iterator over their values is read at C speed.
    """
    flat = np.fromiter(chain.from_iterable(rows), np.float64)
    return flat.reshape(-1, width)


@dataclass(slots=True)
class _Stats:
    """A series' key and running statistics, as its row holds them."""

    series_id: str
    key: int
    n_points: int
    mean: float
    m2: float
    first_ts: float | None
    last_ts: float | None


_STAT_FIELDS = ("n_points", "mean", "m2", "first_ts", "last_ts")
# Every series' statistics in one statement, from aligned arrays.
_WRITE_STATS = text("""
UPDATE series AS s
SET n_points = u.n_points, mean = u.mean, m2 = u.m2, first_ts = u.first_ts,
    last_ts = u.last_ts
FROM unnest(CAST(:series_id AS text[]), CAST(:n_points AS bigint[]),
            CAST(:mean AS float8[]), CAST(:m2 AS float8[]),
            CAST(:first_ts AS float8[]), CAST(:last_ts AS float8[]))
     AS u(series_id, n_points, mean, m2, first_ts, last_ts)
WHERE s.series_id = u.series_id
""")


def _merged(stats: _Stats, ts: np.ndarray, vs: np.ndarray) -> _Stats:
    """Chan's parallel update of (count, mean, M2) with a batch of new values.

    A new series takes the batch's own statistics: its cross term would be
    0 × delta², NaN when delta² overflows. Values within the value rule keep
    every term finite (`core.series.MAX_ABS_VALUE`).
    """
    n_a, n_b = stats.n_points, int(vs.size)
    mean_b = float(vs.mean())
    m2_b = float(((vs - mean_b) ** 2).sum())
    n = n_a + n_b
    if n_a == 0:
        mean, m2 = mean_b, m2_b
    else:
        delta = mean_b - stats.mean
        mean = stats.mean + delta * n_b / n
        m2 = stats.m2 + m2_b + delta * delta * (n_a * n_b / n)
    lo, hi = float(ts.min()), float(ts.max())
    first = lo if stats.first_ts is None else min(stats.first_ts, lo)
    last = hi if stats.last_ts is None else max(stats.last_ts, hi)
    return _Stats(stats.series_id, stats.key, n, mean, m2, first, last)
