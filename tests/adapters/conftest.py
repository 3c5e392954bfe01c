"""Fixtures of the adapter tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from atalaia.adapters.db.engine import make_engine


@pytest.fixture
def engine(blank_database_url: str) -> Iterator[Engine]:
    """An engine on the blank database of `blank_database_url`."""
    engine = make_engine(blank_database_url)
    try:
        yield engine
    finally:
        engine.dispose()
