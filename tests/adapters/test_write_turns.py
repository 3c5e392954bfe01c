"""Write turns: requests write before background jobs; job reads never wait."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.engine import make_engine
from atalaia.adapters.db.migrate import upgrade_database
from atalaia.adapters.db.repositories import ReadingStore
from atalaia.adapters.db.tables import AuditRow
from atalaia.adapters.db.write_turns import MAX_DEFER_S, WriteTurns
from atalaia.core.series import Readings

WAIT_S = 5.0
SETTLE_S = 0.1


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'turns.db'}"
    upgrade_database(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def turns() -> WriteTurns:
    return WriteTurns()


def write(session: Session, target: str) -> None:
    session.add(AuditRow(actor="test", action="test", target=target, detail={}))
    session.flush()


def in_thread(work: object) -> threading.Thread:
    thread = threading.Thread(target=work)  # type: ignore[arg-type]
    thread.start()
    return thread


class TestWriteTurns:
    def test_a_waiting_request_writes_before_a_job_waiting_longer(
        self, turns: WriteTurns, engine: Engine
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
            job_thread = in_thread(job)
            time.sleep(SETTLE_S)  # the job waits first
            request_thread = in_thread(request)
            time.sleep(SETTLE_S)
        request_thread.join(WAIT_S)
        job_thread.join(WAIT_S)

        assert order == ["request", "job"]

    def test_a_job_holds_the_turn_from_its_first_write_to_its_commit(
        self, turns: WriteTurns, engine: Engine
    ) -> None:
        jobs = turns.background_sessions(engine)
        entered = threading.Event()

        def request() -> None:
            with turns.foreground():
                entered.set()

        with jobs() as session:
            session.scalars(select(AuditRow)).all()  # a read takes no turn
            reader = in_thread(request)
            assert entered.wait(WAIT_S)
            reader.join(WAIT_S)
            entered.clear()
            write(session, "job")
            writer = in_thread(request)
            assert not entered.wait(0.2)
            session.commit()
            assert entered.wait(WAIT_S)
            writer.join(WAIT_S)

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
        self, turns: WriteTurns, engine: Engine
    ) -> None:
        jobs = turns.background_sessions(engine)
        written = threading.Event()

        def job() -> None:
            with jobs() as session:
                write(session, "job")
                written.set()
                session.commit()

        with turns.serving():
            job_thread = in_thread(job)
            assert not written.wait(MAX_DEFER_S / 2)
        assert written.wait(WAIT_S)
        job_thread.join(WAIT_S)

    def test_a_stream_of_requests_defers_jobs_by_a_bounded_time(
        self, turns: WriteTurns, engine: Engine
    ) -> None:
        jobs = turns.background_sessions(engine)
        with turns.serving(), jobs() as session:  # a request that never ends
            write(session, "job")
            session.commit()
        with jobs() as session:
            assert len(session.scalars(select(AuditRow)).all()) == 1

    def test_a_job_storing_readings_of_a_known_series_waits_for_its_turn(
        self, turns: WriteTurns, engine: Engine
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
        stored = threading.Event()

        def job() -> None:
            with jobs() as session:
                ReadingStore(session).append(
                    "s", Readings(week.timestamps[10:], week.values[10:])
                )
                session.commit()
            stored.set()

        with turns.foreground():
            job_thread = in_thread(job)
            time.sleep(SETTLE_S)  # the job would take the lock now
            with Session(engine) as session:
                write(session, "request")
                session.commit()
        assert stored.wait(WAIT_S)
        job_thread.join(WAIT_S)
        with jobs() as session:
            assert len(ReadingStore(session).window("s")) == 20
