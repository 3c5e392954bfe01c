"""A patient transaction on PostgreSQL outlives the engine's bounds, and
leaves them as they were for what comes after it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from atalaia.adapters.db.engine import Timeouts, make_engine, make_session_factory
from atalaia.adapters.db.patience import patient
from atalaia.errors import DependencyUnavailable

SLEEP = text("SELECT pg_sleep(0.8)")


@pytest.mark.postgres
def test_statements_outlive_the_engines_bounds_within_the_block_alone(
    postgres_database: str,
) -> None:
    engine = make_engine(
        postgres_database, timeouts=Timeouts(statement_s=0.3, socket_s=0.5)
    )
    sessions = make_session_factory(engine)
    try:
        with sessions() as session, patient(session, 5.0):
            session.execute(SLEEP)
            shown = session.scalar(text("SHOW statement_timeout"))
        with sessions() as session, pytest.raises(DependencyUnavailable):
            session.execute(SLEEP)
    finally:
        engine.dispose()

    assert shown == "5s"


def test_does_nothing_on_sqlite(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/patience.db")
    try:
        with make_session_factory(engine)() as session, patient(session, 5.0):
            assert session.scalar(text("SELECT 1")) == 1
    finally:
        engine.dispose()
