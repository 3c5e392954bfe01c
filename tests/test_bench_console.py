"""`python -m bench console` runs once at a tiny size, so that it does not rot
(no timing asserted)."""

from __future__ import annotations

import pytest
from bench import console_bench
from playwright.sync_api import Browser


@pytest.mark.postgres
def test_console_bench_runs_and_reports(own_postgres: str, chromium: Browser) -> None:
    figures, verdicts = console_bench.console(
        sensors=50, incidents=5, readings=20_000, runs=1, url=own_postgres,
        browser=chromium,
    )  # fmt: skip

    assert figures["sensors"] == 50
    assert figures["fleet_kb"] > 0
    assert figures["zoom_p50_ms"] > 0
    assert "target fleet_render_p50_ms" in verdicts
