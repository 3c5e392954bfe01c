"""Database errors in the domain's words, translated at one point: the engine.

Every engine of `make_engine` hands each database error to `domain_error`
(SQLAlchemy's `handle_error` event, which also sees a failed connect), and its
pool says the same of a wait for a free connection that timed out:

- a value the database cannot hold (DataError, text it cannot encode): InvalidInput
- a transaction that lost a race (deadlock, serialization failure), or a write
  refused by a constraint a concurrent one satisfied first (IntegrityError):
  ConcurrentChange
- the database unreachable, failing or too slow (OperationalError,
  InterfaceError, a pool timeout): DependencyUnavailable("database")

Other errors (a ProgrammingError is a bug) pass through untranslated. The
driver's error stays the `__cause__`. Driver calls made beside SQLAlchemy (COPY)
are translated alike by `driver_errors_translated`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    StatementError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import PoolProxiedConnection, QueuePool

from atalaia.adapters.db.conflicts import lost_race
from atalaia.errors import (
    AtalaiaError,
    ConcurrentChange,
    DependencyUnavailable,
    InvalidInput,
)

DATABASE = "database"  # the dependency's name in DependencyUnavailable


def domain_error(
    error: BaseException, wrapped: StatementError | None
) -> AtalaiaError | None:
    """The domain's error for a database error (the driver's `error`, and
    SQLAlchemy's `wrapped` class of it), or None to let it pass."""
    if isinstance(wrapped, DataError) or isinstance(error, UnicodeEncodeError):
        # The edge refuses such values first (`api.common.params`); this keeps
        # one that slips past from becoming a 500 (PostgreSQL text cannot hold
        # U+0000, psycopg refuses it before sending; no driver encodes half a
        # surrogate pair).
        reason = str(error).splitlines()[0]
        return InvalidInput(
            f"the database cannot store a value of this request: {reason}",
            rule="storable_value",
        )
    if lost_race(error):
        return ConcurrentChange(
            "a concurrent change conflicted with this request; retry it"
        )
    if isinstance(wrapped, IntegrityError):
        return ConcurrentChange(
            "a concurrent change conflicts with this request; retry it"
        )
    if isinstance(wrapped, OperationalError | InterfaceError):
        return DependencyUnavailable(DATABASE)
    return None


def translate_error(context: ExceptionContext) -> None:
    """The engine's `handle_error` listener: raise the domain's error instead."""
    if context.is_pre_ping:  # the pool replaces a connection that failed its ping
        return
    error = context.original_exception
    translated = domain_error(error, context.sqlalchemy_exception)
    if translated is not None:
        raise translated from error


@contextmanager
def driver_errors_translated(connection: Connection) -> Iterator[None]:
    """Translate the errors of driver calls made on `connection`'s DBAPI
    connection directly, as the engine translates its own."""
    driver_error = connection.dialect.loaded_dbapi.Error
    try:
        yield
    except driver_error as exc:
        wrapped = DBAPIError.instance(None, None, exc, driver_error)
        translated = domain_error(exc, wrapped)
        if translated is None:
            raise
        raise translated from exc


class TranslatingQueuePool(QueuePool):
    """A QueuePool whose wait for a free connection, when it times out, raises
    DependencyUnavailable (a failed connect goes through `translate_error`)."""

    def connect(self) -> PoolProxiedConnection:
        try:
            return super().connect()
        except PoolTimeout as exc:
            raise DependencyUnavailable(DATABASE) from exc
