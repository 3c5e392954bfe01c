"""Rate limit rules: hits counted per subject (a token's principal) in fixed windows.

A subject's window opens at its first hit and lasts `window_s` seconds; a rule
allows at most `limit` hits in it. `Windows` keeps the counts of one process;
a shared store (Redis) keeps them for every process with the same semantics.

>>> windows = Windows(RateRule("per_minute", limit=2))
>>> [windows.hit("alice", now=0.0).hits for _ in range(3)]
[1, 2, 3]
>>> windows.hit("alice", now=60.0).hits  # a new window
1
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from atalaia.errors import RateLimited

# Ended windows are dropped once this many subjects have one.
MAX_OPEN_WINDOWS = 10_000


@dataclass(frozen=True, slots=True)
class RateRule:
    """At most `limit` hits per subject per `window_s` seconds; 0 turns it off."""

    name: str
    limit: int
    window_s: int = 60

    @property
    def on(self) -> bool:
        return self.limit > 0

    def refuse(self, subject: str, seconds_left: float) -> RateLimited:
        """The error for `subject`, whose window ends in `seconds_left` s."""
        return RateLimited(
            f"{subject!r} made more than {self.limit} requests in {self.window_s} s "
            f"({self.name}); retry in {retry_after_s(seconds_left)} s",
            rule=self.name,
            retry_after=retry_after_s(seconds_left),
        )


def retry_after_s(seconds_left: float) -> int:
    """Whole seconds to wait (at least 1), as a Retry-After header says it."""
    return max(1, math.ceil(seconds_left))


@dataclass(slots=True)
class Window:
    """A subject's hits in its current window."""

    ends_at: float  # on the monotonic clock
    hits: int = 0
    unsynced: int = 0  # hits not yet added to a shared store


class Windows:
    """Each subject's current window under one rule, in this process."""

    def __init__(self, rule: RateRule) -> None:
        self.rule = rule
        self.open: dict[str, Window] = {}

    def current(self, subject: str, now: float) -> Window:
        """The subject's window at `now`, opening a new one if the last has ended."""
        window = self.open.get(subject)
        if window is None or window.ends_at <= now:
            if len(self.open) >= MAX_OPEN_WINDOWS:
                self.sweep(now)
            window = self.open[subject] = Window(now + self.rule.window_s)
        return window

    def hit(self, subject: str, now: float) -> Window:
        """Count one hit of `subject` at `now`; returns its window."""
        window = self.current(subject, now)
        window.hits += 1
        return window

    def sweep(self, now: float) -> None:
        """Forget the windows that have ended (in place: other threads may hold
        `open` while this runs)."""
        for subject, window in list(self.open.items()):
            if window.ends_at <= now and self.open.get(subject) is window:
                del self.open[subject]
