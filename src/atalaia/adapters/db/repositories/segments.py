"""The cold history's segments (`core.history`) and the readings they hold."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from atalaia.adapters.db.tables import ReadingSegmentRow
from atalaia.adapters.history.parquet_segments import Written, read_series
from atalaia.core.history import Segment
from atalaia.core.series import Readings


def _segment(row: ReadingSegmentRow) -> Segment:
    return Segment(row.id, row.period_start, row.period_end, row.path, row.rows)


class SegmentStore:
    def __init__(self, session: Session) -> None:
        self.session = session

    def overlapping(self, start: float, end: float) -> list[Segment]:
        """The segments that may hold readings with start ≤ ts < end, oldest first."""
        seg = ReadingSegmentRow
        stmt = select(seg).order_by(seg.period_start, seg.id)
        if end < math.inf:
            stmt = stmt.where(seg.period_start < end)
        if start > -math.inf:
            stmt = stmt.where(seg.period_end > start)
        return [_segment(row) for row in self.session.scalars(stmt)]

    def span(self) -> float:
        """The end of the newest period with a segment (-inf: nothing is cold)."""
        end = self.session.scalar(select(func.max(ReadingSegmentRow.period_end)))
        return -math.inf if end is None else float(end)

    def add(self, start: float, end: float, path: str, written: Written) -> Segment:
        row = ReadingSegmentRow(
            period_start=start,
            period_end=end,
            path=path,
            rows=written.rows,
            bytes=written.bytes,
        )
        self.session.add(row)
        self.session.flush()
        return _segment(row)

    def totals(self) -> tuple[int, int, int]:
        """(segments, readings, bytes) of the cold history."""
        seg = ReadingSegmentRow
        count, rows, size = self.session.execute(
            select(func.count(), func.sum(seg.rows), func.sum(seg.bytes))
        ).one()
        return int(count), int(rows or 0), int(size or 0)

    def window(
        self, key: int, start: float = -math.inf, end: float = math.inf
    ) -> Readings | None:
        """A series' cold readings with start ≤ ts < end (None: no segment
        covers any of that span), oldest first."""
        windows = self.windows([key], start, end)
        return None if windows is None else windows.get(key, _EMPTY)

    def windows(
        self, keys: Iterable[int], start: float = -math.inf, end: float = math.inf
    ) -> dict[int, Readings] | None:
        """Of each series, its cold readings with start ≤ ts < end, by key
        (those with some; None: no segment covers any of that span); each
        segment is read once for them all."""
        segments = self.overlapping(start, end)
        if not segments:
            return None
        wanted = np.unique(np.fromiter(keys, np.int64))
        parts: dict[int, list[Readings]] = {}
        for segment in segments:
            found = read_series(segment.path, wanted, start=start, end=end)
            for key, readings in found.items():
                parts.setdefault(key, []).append(readings)
        return {key: merged(part) for key, part in parts.items()}


_EMPTY = Readings(np.empty(0, np.float64), np.empty(0, np.float64))


def merged(parts: list[Readings]) -> Readings:
    """Readings of several sources as one, by timestamp; a timestamp read from
    two (a period moved out between two reads) counts once."""
    ts = np.concatenate([p.timestamps for p in parts])
    values = np.concatenate([p.values for p in parts])
    if ts.size > 1 and not (ts[1:] > ts[:-1]).all():
        ts, first = np.unique(ts, return_index=True)
        values = values[first]
    return Readings(ts, values)
