"""Transactions that lost a race with a concurrent one: a conflict, not an outage."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from atalaia.errors import ConcurrentChange

# PostgreSQL's serialization_failure and deadlock_detected: the transaction lost a
# race with another one and was rolled back; the database itself is fine.
_CONFLICTS = frozenset({"40001", "40P01"})


def lost_race(exc: BaseException) -> bool:
    """Whether `exc` says a transaction lost a race and was rolled back: a
    driver's error, or the ConcurrentChange the engine translated it into."""
    driver_error = exc.__cause__ if isinstance(exc, ConcurrentChange) else exc
    return getattr(driver_error, "sqlstate", None) in _CONFLICTS


@contextmanager
def conflicts_translated(what: str) -> Iterator[None]:
    """Name `what` in the ConcurrentChange of a transaction in the block that
    lost a race; other errors pass through."""
    try:
        yield
    except ConcurrentChange as exc:
        if not lost_race(exc):
            raise
        detail = f"a concurrent change conflicted with the {what}; retry it"
        raise ConcurrentChange(detail) from exc.__cause__
