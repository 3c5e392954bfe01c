"""Hot and cold history: which readings leave the database, and where a
window's readings are.

The readings of the last `hot_days` stay in the database (the hot history);
older ones move, a whole period (`period_s`, aligned to the epoch) at a time,
into a Parquet segment (the cold history). A period leaves only once it ends
before the cutoff. A period's readings that arrive after it left (a late file)
stay hot until the next run moves them into another segment of that period:
a period may have several segments, which never hold the same reading.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class Segment:
    """A Parquet file of a period's readings: start ≤ ts < end."""

    id: int
    start: float
    end: float
    path: str
    rows: int

    def overlaps(self, start: float, end: float) -> bool:
        """Whether it may hold readings with start ≤ ts < end.

        >>> Segment(1, 0.0, 10.0, "s", 5).overlaps(10.0, 20.0)
        False
        """
        return self.start < end and start < self.end


@dataclass(frozen=True, slots=True)
class ColdPolicy:
    """Readings older than `hot_days` move out a period of `period_s` at a time."""

    hot_days: float
    period_s: float = DAY_S

    def limit(self, now: float) -> float:
        """Readings before this instant are due to move out: the end of the last
        whole period before `hot_days` ago.

        >>> ColdPolicy(hot_days=1, period_s=10).limit(now=86_425)
        20.0
        """
        cutoff = now - self.hot_days * DAY_S
        return float(math.floor(cutoff / self.period_s) * self.period_s)

    def period_of(self, ts: float) -> tuple[float, float]:
        """The period holding `ts`: start ≤ ts < end.

        >>> ColdPolicy(hot_days=1, period_s=10).period_of(-5)
        (-10.0, 0.0)
        """
        start = math.floor(ts / self.period_s) * self.period_s
        return float(start), float(start + self.period_s)


def overlapping(segments: Iterable[Segment], start: float, end: float) -> list[Segment]:
    """The segments that may hold readings with start ≤ ts < end, oldest first."""
    return sorted(
        (s for s in segments if s.overlaps(start, end)), key=lambda s: (s.start, s.id)
    )


def cold_span(segments: Sequence[Segment]) -> float:
    """The end of the newest period with a segment (-inf: nothing is cold).

    >>> cold_span([Segment(1, 0.0, 10.0, "a", 3), Segment(2, 10.0, 20.0, "b", 1)])
    20.0
    """
    return max((s.end for s in segments), default=-math.inf)
