"""Write turns in one process on SQLite: API requests write before background jobs.

SQLite has one writer at a time, and a writer that finds the database locked
sleeps in growing steps (1, 2, 5, 10 ms ...) before it tries again: a request
arriving while a job writes would wait for the whole job transaction and then
some. Within the process, a turn is handed over at once, and a waiting request
goes before the next job transaction. Reads never wait for a turn.

While a writing request is served (`serving`), jobs start no write transaction
either, for up to `MAX_DEFER_S` each: on a small machine a job's inserts would
take the CPU the request needs to parse its body (a 10,000-point training
request answered its 202 in p95 17.5 ms beside running jobs, 9.6 ms with jobs
deferred, on the development machine).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, sessionmaker

from atalaia.adapters.db.engine import make_session_factory

_HOLDS_TURN = "atalaia_write_turn"
# Longest a job's write transaction waits for requests being served: under a
# stream of requests that never pauses, jobs still write a few times a second.
MAX_DEFER_S = 0.25


class WriteTurns:
    """One writer at a time in this process, requests first; re-entrant per thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._holder: int | None = None
        self._depth = 0
        self._requests_waiting = 0
        self._serving = 0  # requests being served

    @contextmanager
    def foreground(self) -> Iterator[None]:
        """Hold the turn for a request's writes (its commit)."""
        with self._cond:
            self._requests_waiting += 1
            try:
                self._cond.wait_for(self._free)
            finally:
                self._requests_waiting -= 1
            self._take()
        try:
            yield
        finally:
            self._give()

    @contextmanager
    def serving(self) -> Iterator[None]:
        """Serve a request: jobs defer their next write transactions until it ends."""
        with self._cond:
            self._serving += 1
        try:
            yield
        finally:
            with self._cond:
                self._serving -= 1
                self._cond.notify_all()

    def background_sessions(self, engine: Engine) -> sessionmaker[Session]:
        """Sessions whose write transactions wait for their turn behind requests.

        A session takes the turn before its first write (an insert, update or
        delete run by `Session.execute`, or a flush) and gives it back when its
        transaction ends. Statements run on `Session.connection()` are not seen.
        """
        sessions = make_session_factory(engine)
        event.listen(sessions, "do_orm_execute", self._on_execute)
        event.listen(sessions, "before_flush", self._on_flush)
        event.listen(sessions, "after_transaction_end", self._on_end)
        return sessions

    def _free(self) -> bool:
        return self._holder in (None, threading.get_ident())

    def _take(self) -> None:
        self._holder = threading.get_ident()
        self._depth += 1

    def _give(self) -> None:
        with self._cond:
            self._depth -= 1
            if self._depth == 0:
                self._holder = None
                self._cond.notify_all()

    def _hold(self, session: Session) -> None:
        if session.info.get(_HOLDS_TURN):
            return
        me = threading.get_ident()
        with self._cond:
            if self._holder != me:
                self._cond.wait_for(lambda: not self._serving, timeout=MAX_DEFER_S)
            self._cond.wait_for(
                lambda: (
                    self._holder == me
                    or (self._holder is None and not self._requests_waiting)
                )
            )
            self._take()
        session.info[_HOLDS_TURN] = True

    def _on_execute(self, state: ORMExecuteState) -> None:
        if state.is_insert or state.is_update or state.is_delete:
            self._hold(state.session)

    def _on_flush(self, session: Session, *_: Any) -> None:
        self._hold(session)

    def _on_end(self, session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is None and session.info.pop(_HOLDS_TURN, False):
            self._give()
