"""A transaction that loses a race is a conflict in domain words, not an outage."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from atalaia.adapters.db.conflicts import conflicts_translated, is_conflict
from atalaia.adapters.db.engine import make_engine
from atalaia.errors import ConcurrentChange

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


def test_a_deadlock_becomes_a_concurrent_change(pg_engine: Engine) -> None:
    victim, other = pg_engine.connect(), pg_engine.connect()
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

    assert isinstance(raised.value.__cause__, DBAPIError)
    assert is_conflict(raised.value.__cause__)
    assert raised.value.rule == "concurrent_change"


def test_other_database_errors_pass_through(pg_engine: Engine) -> None:
    with pg_engine.connect() as conn, pytest.raises(DBAPIError) as raised:
        with conflicts_translated("test"):
            conn.execute(text("SELECT * FROM no_such_table"))

    assert not is_conflict(raised.value)
