"""Write turns: requests write before background jobs; job reads never wait.

Threads are ordered by what they wait for, never by sleeping: the turns' condition
tells when a thread has started waiting for its turn, and every wait of a test is
bounded, so a turn never given fails the test instead of hanging it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db import write_turns
from atalaia.adapters.db.engine import make_engine
from atalaia.adapters.db.migrate import upgrade_database
from atalaia.adapters.db.repositories import ReadingStore
from atalaia.adapters.db.tables import AuditRow
from atalaia.adapters.db.write_turns import MAX_DEFER_S, WriteTurns
from atalaia.core.series import Readings

WAIT_S = 10.0  # generous: reached only when a thread is stuck
THREADS = ("job", "request", "reader", "writer")


class WatchedCondition(threading.Condition):
    """A condition that tells when each (named) thread starts waiting on it, and
    for how long each wait was bounded."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = {name: threading.Event() for name in THREADS}
        self.bounds: dict[str, list[float | None]] = {name: [] for name in THREADS}

    def wait(self, timeout: float | None = None) -> bool:
        name = threading.current_thread().name
        if name in self.waiting:
            self.bounds[name].append(timeout)
            self.waiting[name].set()
        return super().wait(timeout)

    def await_waiting(self, name: str) -> None:
        assert self.waiting[name].wait(WAIT_S), f"{name} never waited for its turn"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'turns.db'}"
    upgrade_database(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def condition() -> WatchedCondition:
    return WatchedCondition()


@pytest.fixture
def turns(condition: WatchedCondition) -> WriteTurns:
    turns = WriteTurns()
    turns._cond = condition  # to see who waits for a turn
    return turns


def write(session: Session, target: str) -> None:
    session.add(AuditRow(actor="test", action="test", target=target, detail={}))
    session.flush()


def in_thread(work: Callable[[], None], name: str) -> Future[None]:
    """Run `work` on a daemon thread named `name`; its outcome, with its error."""
    outcome: Future[None] = Future()

    def run() -> None:
        try:
            work()
        except BaseException as exc:
            outcome.set_exception(exc)
        else:
            outcome.set_result(None)

    threading.Thread(target=run, name=name, daemon=True).start()
    return outcome


class TestWriteTurns:
    def test_a_waiting_request_writes_before_a_job_waiting_longer(
        self, turns: WriteTurns, condition: WatchedCondition, engine: Engine
    ) -> None:
        jobs: sessionmaker[Session] = turns.background_sessions(engine)
        order: list[str] = []

        def request() -> None:
            with turns.foreground():
                order.append("request")

        def job() -> None:
            with jobs() as session:
                write(session, "job")
                order.append("job")
                session.commit()

        with turns.foreground():  # a first request holds the turn
            job_done = in_thread(job, "job")
            condition.await_waiting("job")
            request_done = in_thread(request, "request")
            condition.await_waiting("request")
        request_done.result(WAIT_S)
        job_done.result(WAIT_S)

        assert order == ["request", "job"]

    def test_a_job_holds_the_turn_from_its_first_write_to_its_commit(
        self, turns: WriteTurns, condition: WatchedCondition, engine: Engine
    ) -> None:
        jobs = turns.background_sessions(engine)
        entered: list[str] = []

        def request() -> None:
            with turns.foreground():
                entered.append(threading.current_thread().name)

        with jobs() as session:
            session.scalars(select(AuditRow)).all()  # a read takes no turn
            in_thread(request, "reader").result(WAIT_S)
            assert not condition.waiting["reader"].is_set()
            write(session, "job")
            writer_done = in_thread(request, "writer")
            condition.await_waiting("writer")
            assert entered == ["reader"]
            session.commit()
        writer_done.result(WAIT_S)

        assert entered == ["reader", "writer"]

    def test_a_thread_may_take_its_own_turn_again(
        self, turns: WriteTurns, engine: Engine
    ) -> None:
        jobs = turns.background_sessions(engine)
        with turns.foreground(), jobs() as session:
            write(session, "nested")
            session.commit()
        with jobs() as session:
            assert len(session.scalars(select(AuditRow)).all()) == 1

    def test_jobs_write_once_the_requests_being_served_end(
        self,
        turns: WriteTurns,
        condition: WatchedCondition,
        engine: Engine,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        # Deferred longer than the test may wait: only the request's end lets it write.
        monkeypatch.setattr(write_turns, "MAX_DEFER_S", 10 * WAIT_S)
        jobs = turns.background_sessions(engine)
        order: list[str] = []

        def job() -> None:
            with jobs() as session:
                write(session, "job")
                order.append("job")
                session.commit()

        with turns.serving():
            job_done = in_thread(job, "job")
            condition.await_waiting("job")
            order.append("request served")
        job_done.result(WAIT_S)

        assert order == ["request served", "job"]

    def test_a_stream_of_requests_defers_jobs_by_a_bounded_time(
        self, turns: WriteTurns, condition: WatchedCondition, engine: Engine
    ) -> None:
        jobs = turns.background_sessions(engine)

        def job() -> None:
            with jobs() as session:
                write(session, "job")
                session.commit()

        with turns.serving():  # a request that never ends
            in_thread(job, "job").result(WAIT_S)

        assert condition.bounds["job"][:1] == [MAX_DEFER_S]  # its deferral's bound
        with jobs() as session:
            assert len(session.scalars(select(AuditRow)).all()) == 1

    def test_a_job_storing_readings_of_a_known_series_waits_for_its_turn(
        self, turns: WriteTurns, condition: WatchedCondition, engine: Engine
    ) -> None:
        # A job that took SQLite's write lock before its turn would hold it while
        # a request holding the turn waits for the lock: both stuck.
        jobs = turns.background_sessions(engine)
        week = Readings.of(np.arange(20.0), np.arange(20.0))
        with jobs() as session:
            ReadingStore(session).append(
                "s", Readings(week.timestamps[:10], week.values[:10])
            )
            session.commit()

        def job() -> None:
            with jobs() as session:
                ReadingStore(session).append(
                    "s", Readings(week.timestamps[10:], week.values[10:])
                )
                session.commit()

        def request_write() -> None:
            with Session(engine) as session:
                write(session, "request")
                session.commit()

        with turns.foreground():
            job_done = in_thread(job, "job")
            condition.await_waiting("job")  # the job would hold the lock by now
            in_thread(request_write, "request").result(WAIT_S)
        job_done.result(WAIT_S)
        with jobs() as session:
            assert len(ReadingStore(session).window("s")) == 20
