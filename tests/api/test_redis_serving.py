"""Inference replicas with Redis: registry notices, and serving while Redis is cut.

The training service and the replicas share PostgreSQL; each test has its own
Redis key prefix (so its own notice channel).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from atalaia.api import inference, training
from atalaia.api.common.auth import Role
from atalaia.settings import Settings
from fixtures.api import (
    Headers,
    SettingsFactory,
    bearer,
    predict,
    promote,
    train,
    wait_for,
    wait_until_served,
)
from fixtures.db import truncate_tables
from fixtures.redis_server import through
from fixtures.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres

SERIES = "sensor_009_radial"
# The database's change feed is polled once an hour: only a notice can bring a
# change within the test.
NOTICES_ONLY = {"inference_feed_poll_s": 3600.0}


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


def served_version(client: TestClient, headers: Headers) -> int | None:
    version: int | None = predict(client, headers, series_id=SERIES)["model_info"][
        "version"
    ]
    return version


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
    def test_promotion_and_rollback_reach_every_replica_by_notice(
        self, make: SettingsFactory
    ) -> None:
        replica = make(**NOTICES_ONLY)
        viewer = bearer(replica, Role.VIEWER)
        with platform(make(), replica, replica) as (trainer, replicas, admin):
            assert [served_version(r, viewer) for r in replicas] == [1, 1]
            train(trainer, SERIES, admin, seed=2)

            promote(trainer, SERIES, 2, admin)
            for r in replicas:  # by notice: the change feed is read hourly here
                wait_until_served(r, viewer, 2, SERIES)
            rollback = trainer.post(f"/api/v1/models/{SERIES}/rollback", headers=admin)
            for r in replicas:
                wait_until_served(r, viewer, 1, SERIES)
            answer = predict(replicas[0], viewer, series_id=SERIES)

        assert rollback.status_code == 200
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
            wait_until_served(served, viewer, 2, SERIES)


class TestRedisCut:
    def test_predictions_continue_and_promotions_arrive_from_the_database(
        self, make: SettingsFactory, redis_url: str, redis_proxy: TcpProxy
    ) -> None:
        replica = make(redis_url=through(redis_url, redis_proxy))
        viewer = bearer(replica, Role.VIEWER)
        with platform(make(), replica) as (trainer, (served,), admin):
            redis_proxy.cut()
            answers = [predict(served, viewer, series_id=SERIES) for _ in range(50)]
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
