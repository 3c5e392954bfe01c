"""Fixtures for every test: settings, and databases on SQLite and PostgreSQL.

Tests needing a real service skip with a reason when it is missing, or fail
under ATALAIA_REQUIRE_SERVICES=1 (see `fixtures.require_service`). The
PostgreSQL admin URL defaults to postgresql://postgres@127.0.0.1:5432/postgres
and is overridden by ATALAIA_TEST_POSTGRES_URL.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import hypothesis
import pytest

from atalaia.settings import Settings

pytest_plugins = [
    "fixtures.db",
    "fixtures.broker",
    "fixtures.redis_server",
    "fixtures.receivers",
    "fixtures.browser",
    "fixtures.scheduling",
    "fixtures.mqtt",
    "fixtures.s3",
]

# No test asserts on time: a loaded CI machine must not fail property tests
# for generating or running slowly.
hypothesis.settings.register_profile(
    "atalaia", deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow]
)
hypothesis.settings.load_profile("atalaia")

SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(tmp_path: Path) -> SettingsFactory:
    """Build test Settings on a given database URL (SQLite or PostgreSQL).

    `make_settings(database_url, **overrides)`; home is `tmp_path / "home"`.
    """

    def make(database_url: str, **overrides: Any) -> Settings:
        options: dict[str, Any] = {
            "home": tmp_path / "home",
            "database_url": database_url,
            "log_json": False,
        }
        return Settings(**(options | overrides))

    return make


@pytest.fixture
def settings(tmp_path: Path, make_settings: SettingsFactory) -> Settings:
    """Development settings on a (not yet migrated) SQLite file in `tmp_path`."""
    return make_settings(f"sqlite:///{tmp_path / 'atalaia.db'}")
