"""`python -m bench console` runs once at a tiny size, so that it does not rot
(no timing asserted)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bench import console_bench
from playwright.sync_api import Browser

from fixtures.db import create_database, drop_database, worker_database_name


@pytest.fixture
def console_database(postgres_admin: str) -> Iterator[str]:
    """A database of its own: the benchmark's default one may be in use."""
    name = worker_database_name("_console")
    url = create_database(postgres_admin, name)
    try:
        yield url
    finally:
        drop_database(postgres_admin, name)


@pytest.mark.postgres
def test_console_bench_runs_and_reports(
    console_database: str, chromium: Browser
) -> None:
    figures, verdicts = console_bench.console(
        sensors=50, incidents=5, readings=20_000, runs=1, url=console_database,
        browser=chromium,
    )  # fmt: skip

    assert figures["sensors"] == 50
    assert figures["fleet_kb"] > 0
    assert figures["zoom_p50_ms"] > 0
    assert "target fleet_render_p50_ms" in verdicts
