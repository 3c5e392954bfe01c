"""One holder at a time: PostgreSQL advisory locks and SQLite file locks, each
instance with its own engine, as separate processes would have."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, text

from atalaia.adapters.db.engine import make_engine
from atalaia.adapters.db.lock import (
    AdvisoryLock,
    FileLock,
    InstanceLock,
    UnsharedLock,
    instance_lock,
    lock_key,
)

NAME = "atalaia.test-lock"


@pytest.fixture
def engines(database_url: str) -> Iterator[Callable[[], Engine]]:
    """New engines on `database_url`, each disposed after the test."""
    made: list[Engine] = []

    def make() -> Engine:
        made.append(make_engine(database_url))
        return made[-1]

    try:
        yield make
    finally:
        for engine in made:
            engine.dispose()


def test_picks_the_lock_of_the_backend(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        lock = instance_lock(engine, NAME)
    finally:
        engine.dispose()
    kind = AdvisoryLock if database_url.startswith("postgresql") else FileLock
    assert isinstance(lock, kind)


class TestInstanceLock:
    def test_a_second_instance_cannot_take_it_until_the_first_lets_go(
        self, engines: Callable[[], Engine]
    ) -> None:
        first, second = (instance_lock(engines(), NAME) for _ in range(2))

        assert first.acquire()
        assert first.acquire()  # held: still ours
        assert not second.acquire()
        first.release()
        assert second.acquire()
        assert not first.acquire()
        second.release()

    def test_locks_of_other_names_are_independent(
        self, engines: Callable[[], Engine]
    ) -> None:
        mine, other = instance_lock(engines(), NAME), instance_lock(engines(), "x")

        assert mine.acquire()
        assert other.acquire()
        mine.release()
        other.release()


@pytest.mark.parametrize(
    "database_url",
    [pytest.param("postgresql", marks=pytest.mark.postgres)],
    indirect=True,
)
def test_an_advisory_lock_is_freed_when_its_session_dies(
    engines: Callable[[], Engine],
) -> None:
    first, second = engines(), engines()
    holder, waiter = instance_lock(first, NAME), instance_lock(second, NAME)
    assert holder.acquire()

    # The server ends the holder's session, and (its timeout, in ms) waits until
    # the backend has exited and so released the lock: terminating only signals.
    with second.connect() as connection:
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid, 10000) FROM pg_locks"
                " WHERE locktype = 'advisory' AND objid = :low AND classid = :high"
            ),
            {
                "low": lock_key(NAME) & 0xFFFFFFFF,
                "high": lock_key(NAME) >> 32 & 0xFFFFFFFF,
            },
        )

    assert waiter.acquire()
    assert not holder.acquire()  # it sees its session gone, and the lock taken
    waiter.release()
    holder.release()


def test_a_database_in_memory_has_no_other_instance() -> None:
    engine = make_engine("sqlite:///:memory:")
    try:
        lock: InstanceLock = instance_lock(engine, NAME)
    finally:
        engine.dispose()

    assert isinstance(lock, UnsharedLock)
    assert lock.acquire()
    lock.release()
