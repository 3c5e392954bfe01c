"""Engines and sessions for SQLite (embedded) and PostgreSQL (distributed)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.translation import TranslatingQueuePool, translate_error
from atalaia.files import touch_private
from atalaia.tracing import trace_queries

if TYPE_CHECKING:
    from atalaia.settings import Settings

SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalize_url(url: str) -> str:
    """Use psycopg 3 for `postgresql://` URLs, the driver atalaia ships with."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


@dataclass(frozen=True, slots=True)
class PoolOptions:
    """A PostgreSQL engine's connection pool (the `ATALAIA_DB_POOL_*` settings).

    Up to `size + max_overflow` connections per process; `pre_ping` tests a
    connection before handing it out (a restarted server or a dropped idle
    connection costs a retry, not an error); `recycle_s` replaces connections
    older than that (-1: never), before a proxy or firewall drops them.
    """

    size: int = 10
    max_overflow: int = 10
    pre_ping: bool = True
    recycle_s: int = 1800


@dataclass(frozen=True, slots=True)
class Timeouts:
    """How long a PostgreSQL engine waits (the `ATALAIA_DB_*_TIMEOUT_S` settings).

    `connect_s` bounds opening a connection and waiting for a pooled one;
    `statement_s` is the server's `statement_timeout`; `socket_s` bounds, on the
    client, the wait for the server's answer to any one call, which a server
    that never receives the call cannot bound: past it the connection is closed
    and the call fails (DependencyUnavailable). 0: no bound.
    """

    connect_s: float = 3.0
    statement_s: float = 0.0
    socket_s: float = 0.0


def make_engine(
    url: str, *, timeouts: Timeouts = Timeouts(), pool: PoolOptions = PoolOptions()
) -> Engine:
    """An engine tuned per backend, raising the domain's errors (see
    `translation`); creates the SQLite file's folder if needed."""
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        options: dict[str, Any] = {}
        if parsed.database and parsed.database != ":memory:":
            touch_private(Path(parsed.database))  # its -wal and -shm copy the mode
            options["poolclass"] = TranslatingQueuePool  # SQLite's own choice, too
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **options
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "handle_error", translate_error)
        trace_queries(engine)
        return engine
    try:
        import psycopg  # noqa: F401  (the driver of postgresql+psycopg URLs)
    except ModuleNotFoundError:
        raise RuntimeError(
            "PostgreSQL needs its driver: pip install 'atalaia[postgres]'"
        ) from None
    connect_args: dict[str, Any] = {
        "connect_timeout": max(1, round(timeouts.connect_s))
    }
    if timeouts.statement_s > 0:
        statement_ms = round(timeouts.statement_s * 1000)
        connect_args["options"] = f"-c statement_timeout={statement_ms}"
    engine = create_engine(
        url,
        poolclass=TranslatingQueuePool,
        pool_size=pool.size,
        max_overflow=pool.max_overflow,
        pool_pre_ping=pool.pre_ping,
        pool_recycle=pool.recycle_s,
        pool_timeout=timeouts.connect_s,
        connect_args=connect_args,
    )
    if timeouts.socket_s > 0:
        event.listen(engine, "do_connect", partial(_bounded, timeouts.socket_s))
    event.listen(engine, "handle_error", translate_error)
    trace_queries(engine)
    return engine


def _bounded(
    socket_s: float, _dialect: Any, _record: Any, cargs: Any, cparams: Any
) -> Any:
    """Open a connection that gives up on a server silent for `socket_s`."""
    from atalaia.adapters.db.bounded import BoundedConnection

    connection = BoundedConnection.connect(*cargs, **cparams)
    connection.answer_timeout_s = socket_s
    return connection


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def engine_for(settings: Settings, *, serving: bool = True) -> Engine:
    """The engine of a process: `settings`' database, pool and timeouts.

    Processes that answer requests (`serving`) bound every statement, so that a
    request fails fast; workers and the scheduler run fleet-wide queries that
    may take minutes, and keep only the connect bound.
    """
    timeouts = Timeouts(connect_s=settings.db_connect_timeout_s)
    if serving:
        timeouts = Timeouts(
            connect_s=settings.db_connect_timeout_s,
            statement_s=settings.db_statement_timeout_s,
            socket_s=settings.db_socket_timeout_s,
        )
    return make_engine(
        settings.database_url, timeouts=timeouts, pool=pool_options(settings)
    )


def pool_options(settings: Settings) -> PoolOptions:
    """The database connection pool `settings` ask for."""
    return PoolOptions(
        size=settings.db_pool_size,
        max_overflow=settings.db_pool_max_overflow,
        pre_ping=settings.db_pool_pre_ping,
        recycle_s=settings.db_pool_recycle_s,
    )
