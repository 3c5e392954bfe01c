"""Fixtures for HTTP tests: the embedded app and a token per role."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from atalaia.api.common.auth import Role
from atalaia.embedded import create_embedded_app
from atalaia.settings import Settings
from fixtures.api import Headers, bearer


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_embedded_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def admin(settings: Settings) -> Headers:
    return bearer(settings, Role.ADMIN)


@pytest.fixture
def engineer(settings: Settings) -> Headers:
    return bearer(settings, Role.ML_ENGINEER)


@pytest.fixture
def scientist(settings: Settings) -> Headers:
    return bearer(settings, Role.DATA_SCIENTIST)


@pytest.fixture
def viewer(settings: Settings) -> Headers:
    return bearer(settings, Role.VIEWER)
