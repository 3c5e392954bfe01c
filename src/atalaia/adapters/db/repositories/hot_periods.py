"""The hot history's periods on their way out to the cold history: the oldest
reading, a period's readings in (series key, ts) order, and their removal."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from sqlalchemy import delete, false, func, select
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories._pg_binary import COPY_HEADER, parse_tuples
from atalaia.adapters.db.tables import ReadingRow
from atalaia.adapters.db.translation import driver_errors_translated
from atalaia.adapters.history.parquet_segments import Rows

CHUNK_ROWS = 1_000_000  # readings held in memory at a time while a period is read
_CHUNK_BYTES = CHUNK_ROWS * 38  # a binary COPY tuple of a reading: 38 bytes
_TRAILER_SIZE = 2


class HotPeriods:
    """What `rows` reads is exactly what `drop` removes: readings stored
    meanwhile stay, for a later run."""

    def __init__(self, session: Session) -> None:
        """Over a session that has run nothing yet: PostgreSQL reads one
        snapshot (REPEATABLE READ), SQLite takes the write lock first."""
        self.session = session
        self.dialect = session.get_bind().dialect.name
        if self.dialect == "postgresql":
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        else:  # a write statement begins the transaction and locks out writers
            session.execute(delete(ReadingRow).where(false()))

    def oldest_before(self, limit: float) -> float | None:
        """The oldest reading's timestamp, if it is before `limit`."""
        oldest = self.session.scalar(
            select(func.min(ReadingRow.ts)).where(ReadingRow.ts < limit)
        )
        return None if oldest is None else float(oldest)

    def rows(self, start: float, end: float) -> Iterator[Rows]:
        """The readings with start ≤ ts < end by (series key, ts), a chunk at a time."""
        if self.dialect == "postgresql":
            yield from self._copied(start, end)
            return
        stmt = (
            select(ReadingRow.series_key, ReadingRow.ts, ReadingRow.value)
            .where(ReadingRow.ts >= start, ReadingRow.ts < end)
            .order_by(ReadingRow.series_key, ReadingRow.ts)
        )
        result = self.session.execute(stmt.execution_options(yield_per=CHUNK_ROWS))
        for chunk in result.partitions():
            keys, ts, values = zip(*chunk, strict=True)
            yield (
                np.fromiter(keys, np.int64, len(keys)),
                np.fromiter(ts, np.float64, len(ts)),
                np.fromiter(values, np.float64, len(values)),
            )

    def _copied(self, start: float, end: float) -> Iterator[Rows]:
        """`rows` as a binary COPY out, parsed by numpy a buffer at a time."""
        connection = self.session.connection()
        raw = connection.connection.driver_connection
        query = (
            "COPY (SELECT series_key, ts, value FROM readings"
            f" WHERE ts >= {float(start)!r} AND ts < {float(end)!r}"
            " ORDER BY series_key, ts) TO STDOUT (FORMAT BINARY)"
        )
        pending = bytearray()
        with (
            driver_errors_translated(connection),
            raw.cursor() as cursor,  # type: ignore[union-attr]
            cursor.copy(query) as copy,
        ):
            for block in copy:
                pending += block
                if len(pending) >= _CHUNK_BYTES:
                    yield self._parsed(pending)
        del pending[-_TRAILER_SIZE:]
        if len(pending) > len(COPY_HEADER):
            yield self._parsed(pending)

    @staticmethod
    def _parsed(pending: bytearray) -> Rows:
        """The whole tuples buffered (after the header), taken off the buffer."""
        body = memoryview(pending)[len(COPY_HEADER) :]
        keys, ts, values, used = parse_tuples(body)
        body.release()
        del pending[len(COPY_HEADER) : len(COPY_HEADER) + used]
        return keys, ts, values

    def drop(self, start: float, end: float) -> int:
        """Remove the readings with start ≤ ts < end that this snapshot sees."""
        removed = self.session.execute(
            delete(ReadingRow).where(ReadingRow.ts >= start, ReadingRow.ts < end)
        )
        return int(removed.rowcount)  # type: ignore[attr-defined]
