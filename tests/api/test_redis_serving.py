"""Inference replicas with Redis: registry notices, and serving while Redis is cut.

The training service and the replicas share PostgreSQL; each test has its own
Redis key prefix (so its own notice channel).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from atalaia.api import inference, training
from atalaia.api.common.auth import Role
from atalaia.settings import Settings
from fixtures.api import Headers, SettingsFactory, bearer, promote, train, wait_for
from fixtures.db import truncate_tables
from fixtures.redis_server import through
from fixtures.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres

SERIES = "sensor_009_radial"
# The database's change feed is polled once an hour: only a notice can bring a
# change within the test.
NOTICES_ONLY = {"inference_feed_poll_s": 3600.0}
VISIBLE_WITHIN_S = 1.0  # the bound: every replica serves a promotion


@pytest.fixture
def make(
    postgres_database: str,
    make_settings: SettingsFactory,
    redis_url: str,
    redis_prefix: str,
) -> SettingsFactory:
    """Settings on the test PostgreSQL (emptied) and Redis (this test's prefix)."""
    truncate_tables(postgres_database)

    def settings(**overrides: Any) -> Settings:
        options: dict[str, Any] = {
            "redis_url": redis_url,
            "redis_prefix": redis_prefix,
            "training_min_interval_s": 0,
        }
        return make_settings(postgres_database, **(options | overrides))

    return settings


def predict(client: TestClient, headers: Headers) -> dict[str, Any]:
    response = client.post(
        f"/api/v1/predict/{SERIES}",
        json={"timestamp": 1_733_700_000, "value": 0.3},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def served_version(client: TestClient, headers: Headers) -> int | None:
    version: int | None = predict(client, headers)["model_info"]["version"]
    return version


def serves(client: TestClient, headers: Headers, version: int) -> Callable[[], bool]:
    return lambda: served_version(client, headers) == version


def within(seconds: float, condition: Callable[[], bool]) -> bool:
    """Poll `condition` until it holds (True) or `seconds` have passed (False)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def readiness(client: TestClient) -> dict[str, Any]:
    body: dict[str, Any] = client.get("/api/v1/readiness").json()
    return body


@contextmanager
def platform(
    trainer_settings: Settings, *replicas: Settings
) -> Iterator[tuple[TestClient, list[TestClient], Headers]]:
    """(training client, replica clients, admin headers); v1 trained and promoted
    before the replicas start, so each warm-loads it."""
    admin = bearer(trainer_settings, Role.ADMIN)
    with ExitStack() as stack:
        trainer = stack.enter_context(TestClient(training.create_app(trainer_settings)))
        train(trainer, SERIES, admin, seed=1)
        promote(trainer, SERIES, 1, admin)
        clients = [
            stack.enter_context(TestClient(inference.create_app(s))) for s in replicas
        ]
        yield trainer, clients, admin


class TestNotices:
    def test_promotion_and_rollback_reach_every_replica_within_a_second(
        self, make: SettingsFactory
    ) -> None:
        replica = make(**NOTICES_ONLY)
        viewer = bearer(replica, Role.VIEWER)
        with platform(make(), replica, replica) as (trainer, replicas, admin):
            assert [served_version(r, viewer) for r in replicas] == [1, 1]
            train(trainer, SERIES, admin, seed=2)

            promote(trainer, SERIES, 2, admin)
            promoted = [
                within(VISIBLE_WITHIN_S, serves(r, viewer, 2)) for r in replicas
            ]
            rollback = trainer.post(f"/api/v1/models/{SERIES}/rollback", headers=admin)
            rolled_back = [
                within(VISIBLE_WITHIN_S, serves(r, viewer, 1)) for r in replicas
            ]
            answer = predict(replicas[0], viewer)

        assert promoted == [True, True]
        assert rollback.status_code == 200
        assert rolled_back == [True, True]
        assert answer["model_info"]["loaded_from"] == "memory"

    def test_resume_after_redis_comes_back(
        self, make: SettingsFactory, redis_url: str, redis_proxy: TcpProxy
    ) -> None:
        replica = make(redis_url=through(redis_url, redis_proxy), **NOTICES_ONLY)
        viewer = bearer(replica, Role.VIEWER)
        with platform(make(), replica) as (trainer, (served,), admin):
            assert readiness(served)["notices"] == "subscribed"
            redis_proxy.cut()
            wait_for(lambda: readiness(served)["notices"] == "down" or None)
            redis_proxy.restore()
            wait_for(lambda: readiness(served)["notices"] == "subscribed" or None)

            train(trainer, SERIES, admin, seed=2)
            promote(trainer, SERIES, 2, admin)
            promoted = within(VISIBLE_WITHIN_S, serves(served, viewer, 2))

        assert promoted


class TestRedisCut:
    def test_predictions_continue_and_promotions_arrive_from_the_database(
        self, make: SettingsFactory, redis_url: str, redis_proxy: TcpProxy
    ) -> None:
        replica = make(redis_url=through(redis_url, redis_proxy))
        viewer = bearer(replica, Role.VIEWER)
        with platform(make(), replica) as (trainer, (served,), admin):
            redis_proxy.cut()
            answers = [predict(served, viewer) for _ in range(50)]
            batch = served.post(
                "/api/v1/predict/batch",
                json={
                    "series_id": [SERIES, "never_seen_series"],
                    "timestamp": [1_733_700_000, 1_733_700_000],
                    "value": [0.3, 0.3],
                },
                headers=viewer,
            )
            ready = served.get("/ready").json()["checks"]["redis"]
            train(trainer, SERIES, admin, seed=2)
            promote(trainer, SERIES, 2, admin)
            wait_for(lambda: served_version(served, viewer) == 2 or None)

        assert {a["model_info"]["version"] for a in answers} == {1}
        assert {a["model_info"]["loaded_from"] for a in answers} == {"memory"}
        assert batch.status_code == 200
        assert batch.json()["confidence"] == ["high", "low"]
        assert ready == {"ok": True, "detail": "down: serving without it"}
