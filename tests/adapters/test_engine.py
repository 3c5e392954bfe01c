"""Engines: the PostgreSQL connection pool follows the settings."""

from __future__ import annotations

import pytest
from sqlalchemy.pool import QueuePool

from atalaia.adapters.db.engine import PoolOptions, make_engine, pool_options
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
