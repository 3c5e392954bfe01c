"""Conflicts between concurrent transactions, translated into domain words."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError

from atalaia.errors import ConcurrentChange

# PostgreSQL's serialization_failure and deadlock_detected: the transaction lost a
# race with another one and was rolled back; the database itself is fine.
_CONFLICTS = frozenset({"40001", "40P01"})


def is_conflict(exc: BaseException) -> bool:
    """Whether `exc` says a transaction lost a race, not that the database failed."""
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return isinstance(exc, DBAPIError) and sqlstate in _CONFLICTS


@contextmanager
def conflicts_translated(what: str) -> Iterator[None]:
    """Raise ConcurrentChange for a conflict with a concurrent transaction in
    the block; other database errors pass through."""
    try:
        yield
    except DBAPIError as exc:
        if not is_conflict(exc):
            raise
        detail = f"a concurrent change conflicted with the {what}; retry it"
        raise ConcurrentChange(detail) from exc
