"""The engine raises the domain's errors: a lost race or a refused write is a
conflict, an unreachable or failing database is unavailable, a bug passes."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import ProgrammingError

from atalaia.adapters.db.conflicts import conflicts_translated, lost_race
from atalaia.adapters.db.engine import PoolOptions, Timeouts, make_engine
from atalaia.adapters.db.translation import driver_errors_translated
from atalaia.errors import ConcurrentChange, DependencyUnavailable

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_engine(postgres_database: str) -> Iterator[Engine]:
    engine = make_engine(postgres_database)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS race"))
        conn.execute(text("CREATE TABLE race (id int PRIMARY KEY)"))
        conn.execute(text("INSERT INTO race VALUES (1), (2)"))
    try:
        yield engine
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE race"))
        engine.dispose()


def _lock(conn: Connection, row: int) -> None:
    conn.execute(text("SELECT id FROM race WHERE id = :id FOR UPDATE"), {"id": row})


def _deadlocked(engine: Engine) -> ConcurrentChange:
    """What the loser of a deadlock raised (inside `conflicts_translated`)."""
    victim, other = engine.connect(), engine.connect()
    # The victim looks for the deadlock first: it is the one rolled back.
    victim.execute(text("SET deadlock_timeout = '10ms'"))
    other.execute(text("SET deadlock_timeout = '10s'"))
    _lock(victim, 1)
    _lock(other, 2)
    other_waits = threading.Thread(target=_lock, args=(other, 1))
    other_waits.start()
    try:
        with pytest.raises(ConcurrentChange) as raised:
            with conflicts_translated("test"):
                _lock(victim, 2)  # waits for `other`, which waits for it
    finally:
        victim.close()
        other_waits.join()
        other.close()
    return raised.value


class TestConflicts:
    def test_a_deadlock_is_a_lost_race_named_by_what_it_did(
        self, pg_engine: Engine
    ) -> None:
        raised = _deadlocked(pg_engine)

        assert isinstance(raised.__cause__, psycopg.errors.DeadlockDetected)
        assert lost_race(raised)
        assert raised.rule == "concurrent_change"
        assert raised.detail == "a concurrent change conflicted with the test; retry it"

    def test_a_refused_write_is_a_conflict_but_no_lost_race(
        self, pg_engine: Engine
    ) -> None:
        with pg_engine.connect() as conn, pytest.raises(ConcurrentChange) as raised:
            with conflicts_translated("test"):
                conn.execute(text("INSERT INTO race VALUES (1)"))

        assert isinstance(raised.value.__cause__, psycopg.errors.UniqueViolation)
        assert not lost_race(raised.value)
        assert raised.value.detail == (
            "a concurrent change conflicts with this request; retry it"
        )

    def test_a_bug_passes_untranslated(self, pg_engine: Engine) -> None:
        with pg_engine.connect() as conn, pytest.raises(ProgrammingError):
            with conflicts_translated("test"):
                conn.execute(text("SELECT * FROM no_such_table"))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestUnavailable:
    def test_a_server_that_refuses_connections_is_unavailable(self) -> None:
        engine = make_engine(f"postgresql://atalaia@127.0.0.1:{_closed_port()}/x")
        try:
            with pytest.raises(DependencyUnavailable) as raised, engine.connect():
                pass
        finally:
            engine.dispose()

        assert raised.value.name == "database"
        assert isinstance(raised.value.__cause__, psycopg.OperationalError)

    def test_no_free_connection_in_time_is_unavailable(
        self, postgres_database: str
    ) -> None:
        engine = make_engine(
            postgres_database,
            pool=PoolOptions(size=1, max_overflow=0),
            timeouts=Timeouts(connect_s=0.1),
        )
        try:
            with engine.connect(), pytest.raises(DependencyUnavailable):
                engine.connect()
        finally:
            engine.dispose()

    def test_a_connection_the_server_dropped_is_replaced_unseen(
        self, postgres_database: str
    ) -> None:
        engine = make_engine(postgres_database, pool=PoolOptions(size=1))
        other = make_engine(postgres_database)
        try:
            with engine.connect() as conn:
                pid = conn.scalar(text("SELECT pg_backend_pid()"))
            with other.connect() as killer:
                killer.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            with engine.connect() as conn:  # the pool's ping finds it dead
                assert conn.scalar(text("SELECT 1")) == 1
        finally:
            engine.dispose()
            other.dispose()

    def test_driver_calls_beside_sqlalchemy_are_translated_alike(
        self, pg_engine: Engine
    ) -> None:
        with pg_engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            with pytest.raises(ConcurrentChange), driver_errors_translated(conn):
                raw.cursor().execute("INSERT INTO race VALUES (2)")
