"""Long reads of background work on PostgreSQL: a transaction whose
statements may run longer than the engine's bounds (`Timeouts`: the server's
`statement_timeout`, the client's wait for an answer), which requests keep."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.orm import Session

from atalaia.adapters.db.bounded import BoundedConnection


@contextmanager
def patient(session: Session, seconds: float) -> Iterator[None]:
    """Within `session`'s transaction, let each statement run `seconds`; the
    server's bound ends with the transaction, the client's with the block.
    Nothing to do on SQLite."""
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    millis = max(1, round(seconds * 1000))
    session.execute(text(f"SET LOCAL statement_timeout = {millis}"))
    driver = session.connection().connection.dbapi_connection
    bounded = driver if isinstance(driver, BoundedConnection) else None
    before = bounded.answer_timeout_s if bounded else None
    if bounded:
        bounded.answer_timeout_s = seconds
    try:
        yield
    finally:
        if bounded:
            bounded.answer_timeout_s = before
