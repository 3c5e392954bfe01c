"""Hot and cold history: which readings leave the database, and where a
window's readings are.

The readings of the last `hot_days` stay in the database (the hot history);
older ones move, a whole period (`period_s`, aligned to the epoch) at a time,
into Parquet segments (the cold history), each of a range of series. A period
leaves only once it ends before the cutoff. A period's readings that arrive
after it left (a late file) stay hot until the next run moves them into more
segments of that period; segments never hold the same reading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DAY_S = 86_400.0
PERIOD_S = DAY_S  # every segment's period: a day


@dataclass(frozen=True, slots=True)
class Segment:
    """A Parquet file of a period's readings (start ≤ ts < end) of the series
    with keys from `first_key` to `last_key`."""

    id: int
    start: float
    end: float
    path: str
    rows: int
    first_key: int
    last_key: int


@dataclass(frozen=True, slots=True)
class ColdPolicy:
    """Readings older than `hot_days` move out a period of `period_s` at a time."""

    hot_days: float
    period_s: float = PERIOD_S

    def __post_init__(self) -> None:
        if not 0 < self.period_s <= PERIOD_S:  # readers look back PERIOD_S at most
            raise ValueError(f"a period is at most {PERIOD_S:g} s, not {self.period_s}")

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
