"""Engines: the PostgreSQL connection pool and timeouts follow the settings."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session
from sqlalchemy.pool import QueuePool

from atalaia.adapters.db.engine import PoolOptions, Timeouts, make_engine, pool_options
from atalaia.adapters.db.repositories import ReadingStore
from atalaia.errors import DependencyUnavailable, InvalidInput
from atalaia.settings import Settings

URL = "postgresql://atalaia@db.invalid/atalaia"  # engines connect lazily: never here


def test_a_postgresql_pool_is_sized_and_checked_as_asked() -> None:
    options = PoolOptions(size=3, max_overflow=2, pre_ping=False, recycle_s=60)

    engine = make_engine(URL, pool=options)

    pool = engine.pool
    assert isinstance(pool, QueuePool)
    # SQLAlchemy keeps these settings in private attributes only.
    assert (pool.size(), pool._max_overflow, pool._pre_ping, pool._recycle) == (
        3, 2, False, 60,
    )  # fmt: skip


def test_the_defaults_pre_ping_and_recycle() -> None:
    pool = make_engine(URL).pool

    assert (pool.size(), pool._pre_ping, pool._recycle) == (10, True, 1800)  # type: ignore[attr-defined]


def test_settings_name_the_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATALAIA_DB_POOL_SIZE", "4")
    monkeypatch.setenv("ATALAIA_DB_POOL_MAX_OVERFLOW", "0")
    monkeypatch.setenv("ATALAIA_DB_POOL_PRE_PING", "false")
    monkeypatch.setenv("ATALAIA_DB_POOL_RECYCLE_S", "-1")

    assert pool_options(Settings()) == PoolOptions(4, 0, False, -1)


@pytest.mark.postgres
def test_the_server_cancels_a_statement_past_the_statement_timeout(
    postgres_database: str,
) -> None:
    engine = make_engine(postgres_database, timeouts=Timeouts(statement_s=0.2))
    try:
        with engine.connect() as conn, pytest.raises(DependencyUnavailable) as raised:
            conn.execute(text("SELECT pg_sleep(5)"))
    finally:
        engine.dispose()

    assert isinstance(raised.value.__cause__, psycopg.errors.QueryCanceled)


def test_settings_name_the_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATALAIA_DB_CONNECT_TIMEOUT_S", "2")
    monkeypatch.setenv("ATALAIA_DB_STATEMENT_TIMEOUT_S", "0")
    monkeypatch.setenv("ATALAIA_DB_SOCKET_TIMEOUT_S", "4.5")

    settings = Settings()

    assert (
        settings.db_connect_timeout_s,
        settings.db_statement_timeout_s,
        settings.db_socket_timeout_s,
    ) == (2, 0, 4.5)


@pytest.mark.postgres
@pytest.mark.parametrize(("value", "reason"), [("\0", "NUL"), ("\ud800", "surrogate")])
def test_text_postgresql_cannot_hold_is_invalid_input(
    postgres_database: str, value: str, reason: str
) -> None:
    engine = make_engine(postgres_database)
    try:
        with Session(engine) as session, pytest.raises(InvalidInput) as refused:
            ReadingStore(session).list_series(prefix=value)
    finally:
        engine.dispose()

    assert refused.value.rule == "storable_value"
    assert reason in refused.value.detail
