"""One instance at a time across processes: a PostgreSQL advisory lock, or a
file lock beside the SQLite file.

A lock is held for as long as its holder lives: PostgreSQL frees an advisory
lock when the session holding it ends, the kernel frees a file lock when its
file closes. A second instance finds it taken and stays idle until it is free.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path
from typing import Protocol

import structlog
from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from atalaia.errors import DependencyUnavailable

log = structlog.get_logger()

# What a lock's query may raise when the database fails it (most arrive translated).
_FAILED = (DependencyUnavailable, DBAPIError)


class InstanceLock(Protocol):
    def acquire(self) -> bool:
        """Hold the lock, taking it if it is free; False while another holds it."""
        ...

    def release(self) -> None: ...


def lock_key(name: str) -> int:
    """A signed 64-bit advisory lock key for `name`, the same in every process.

    >>> lock_key("atalaia.scheduler") == lock_key("atalaia.scheduler")
    True
    """
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], signed=True)


def instance_lock(engine: Engine, name: str) -> InstanceLock:
    """The lock named `name` on the database of `engine`."""
    if engine.dialect.name == "postgresql":
        return AdvisoryLock(engine, lock_key(name))
    database = make_url(engine.url).database
    if not database or database == ":memory:":
        return UnsharedLock()  # no other process can open this database
    return FileLock(Path(f"{database}.{name}.lock"))


class AdvisoryLock:
    """A session-level `pg_try_advisory_lock`, held on a connection of its own."""

    def __init__(self, engine: Engine, key: int) -> None:
        self._engine = engine
        self._key = key
        self._connection: Connection | None = None

    def acquire(self) -> bool:
        if self._connection is not None and self._alive(self._connection):
            return True
        try:
            connection = self._engine.connect().execution_options(
                isolation_level="AUTOCOMMIT"  # no transaction left open for days
            )
        except _FAILED:
            return False  # the database is down: nobody can be sure to hold it
        try:
            taken = connection.scalar(select(func.pg_try_advisory_lock(self._key)))
        except _FAILED:
            connection.invalidate()
            taken = False
        if taken:
            self._connection = connection
            return True
        connection.close()
        return False

    def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:  # unlock: the connection goes back to the pool
            connection.scalar(select(func.pg_advisory_unlock(self._key)))
        except _FAILED:
            connection.invalidate()  # the session, and its lock, are gone anyway
        connection.close()

    def _alive(self, connection: Connection) -> bool:
        """Whether the session holding the lock still lives; forget it if not."""
        try:
            connection.execute(text("SELECT 1"))
        except _FAILED:
            log.warning("lock.lost", key=self._key)
            connection.invalidate()
            connection.close()
            self._connection = None
            return False
        return True


class FileLock:
    """An exclusive `flock` on `path`, created if missing."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the file frees its lock


class UnsharedLock:
    """Always held: for a database no other process can reach (in memory)."""

    def acquire(self) -> bool:
        return True

    def release(self) -> None:
        pass
