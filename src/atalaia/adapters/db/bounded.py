"""PostgreSQL connections that give up on a server which does not answer."""

from __future__ import annotations

from typing import Any, TypeVar

import psycopg
from psycopg import errors
from psycopg.abc import PQGen

RV = TypeVar("RV")


class BoundedConnection(psycopg.Connection[Any]):
    """A connection that closes itself when the server leaves one call (a
    statement, a fetch, a commit) unanswered for `answer_timeout_s`.

    A server behind a stopped proxy or a black-holed route never answers: no
    server-side limit fires, since nothing reaches the server, and neither do
    TCP keepalives while a peer's kernel acknowledges. psycopg waits on the
    socket itself, so the bound is that wait's timeout: the blocked call raises
    OperationalError on a closed connection, which the pool then discards.
    """

    answer_timeout_s: float | None = None

    def wait(
        self, gen: PQGen[RV], interval: float = 0.1, timeout: float | None = None
    ) -> RV:
        bound = self.answer_timeout_s if timeout is None else timeout
        try:
            return super().wait(gen, interval, bound)
        except errors._WaitTimeout as exc:  # psycopg's, raised by its wait
            if timeout is not None:  # the caller's own bound: the caller's to handle
                raise
            self.close()  # mid-protocol: the connection cannot be used again
            raise psycopg.OperationalError(
                f"the database did not answer within {bound:g} s; connection closed"
            ) from exc
