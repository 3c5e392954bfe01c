"""Per-principal rate limits: the 429, per process and shared through Redis."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import pytest
from fastapi.testclient import TestClient

from atalaia.adapters.cache import RedisLink, SharedCounters
from atalaia.api import training
from atalaia.api.common.auth import Principal, Role
from atalaia.api.common.ratelimit import MANAGEMENT, SENSOR, RateLimiter
from atalaia.core.ratelimit import RateRule
from atalaia.embedded import create_embedded_app
from atalaia.errors import RateLimited
from atalaia.settings import Settings
from fixtures.api import Headers, SettingsFactory, bearer, wait_for
from fixtures.redis_server import through
from fixtures.tcp_proxy import TcpProxy

ALICE = Principal("alice", Role.VIEWER)
ROUTE = "/api/v1/models"


def viewer(settings: Settings, subject: str = "alice") -> Headers:
    return bearer(settings, Role.VIEWER, subject=subject)


def statuses(client: TestClient, headers: Headers, n: int) -> list[int]:
    return [client.get(ROUTE, headers=headers).status_code for _ in range(n)]


@pytest.fixture
def limited(make_settings: SettingsFactory, settings: Settings) -> Settings:
    """SQLite, three management requests a minute per principal."""
    return make_settings(settings.database_url, rate_limit_per_min=3)


class TestManagementLimit:
    def test_refuses_past_the_limit_with_retry_after_and_the_rule(
        self, limited: Settings
    ) -> None:
        with TestClient(training.create_app(limited)) as client:
            allowed = statuses(client, viewer(limited), 3)
            refused = client.get(ROUTE, headers=viewer(limited))

        assert allowed == [200, 200, 200]
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        body = refused.json()
        assert body["error"] == "RateLimited"
        assert body["rule"] == MANAGEMENT
        assert "'alice' made more than 3 requests in 60 s" in body["detail"]

    def test_counts_each_principal_apart_and_never_limits_admins(
        self, limited: Settings
    ) -> None:
        with TestClient(training.create_app(limited)) as client:
            alice = statuses(client, viewer(limited), 4)
            bob = statuses(client, viewer(limited, "bob"), 1)
            admin = statuses(client, bearer(limited, Role.ADMIN, "root"), 10)

        assert alice[-1] == 429
        assert bob == [200]
        assert set(admin) == {200}

    def test_probes_are_not_counted(self, limited: Settings) -> None:
        with TestClient(training.create_app(limited)) as client:
            probes = {client.get("/health").status_code for _ in range(10)}
            allowed = statuses(client, viewer(limited), 3)

        assert probes == {200}
        assert allowed == [200, 200, 200]


class TestSensorLimit:
    def test_is_off_by_default_and_apart_from_the_management_limit(
        self, limited: Settings
    ) -> None:
        reading = {"timestamp": 1_733_700_000, "value": 0.3}
        with TestClient(create_embedded_app(limited)) as client:
            predictions = {
                client.post(
                    "/api/v1/predict/s1", json=reading, headers=viewer(limited)
                ).status_code
                for _ in range(10)
            }
            allowed = statuses(client, viewer(limited), 3)

        assert predictions == {200}
        assert allowed == [200, 200, 200]

    def test_refuses_predictions_past_its_limit(
        self, make_settings: SettingsFactory, settings: Settings
    ) -> None:
        capped = make_settings(settings.database_url, rate_limit_sensor_per_min=2)
        reading = {"timestamp": 1_733_700_000, "value": 0.3}
        with TestClient(create_embedded_app(capped)) as client:
            answers = [
                client.post("/api/v1/predict/s1", json=reading, headers=viewer(capped))
                for _ in range(3)
            ]

        assert [a.status_code for a in answers] == [200, 200, 429]
        assert answers[-1].json()["rule"] == SENSOR
        assert int(answers[-1].headers["Retry-After"]) >= 1


def limiter(counters: SharedCounters | None, *, sensor: int = 0) -> RateLimiter:
    return RateLimiter(
        RateRule(MANAGEMENT, 3), RateRule(SENSOR, sensor), counters=counters
    )


@pytest.fixture
def counters(redis_url: str, redis_prefix: str) -> Iterator[SharedCounters]:
    link = RedisLink(redis_url, prefix=redis_prefix, timeout_s=0.25, retry_s=2.0)
    yield SharedCounters(link)
    link.close()


class TestSharedLimits:
    def test_two_processes_share_the_management_limit(
        self, counters: SharedCounters
    ) -> None:
        one, two = limiter(counters), limiter(counters)
        one.check(ALICE)
        two.check(ALICE)
        one.check(ALICE)

        with pytest.raises(RateLimited) as refused:
            two.check(ALICE)

        assert refused.value.rule == MANAGEMENT
        assert 1 <= refused.value.retry_after <= 60

    def test_sensor_counts_are_shared_at_each_sync(
        self, counters: SharedCounters
    ) -> None:
        one, two = limiter(counters, sensor=5), limiter(counters, sensor=5)
        for _ in range(3):
            one.check_sensor(ALICE)
        two.check_sensor(ALICE)
        one.sync()
        two.sync()  # learns of the other's three

        two.check_sensor(ALICE)
        with pytest.raises(RateLimited) as refused:
            two.check_sensor(ALICE)

        assert refused.value.rule == SENSOR

    def test_without_redis_each_process_counts_alone(self) -> None:
        one, two = limiter(None), limiter(None)
        for _ in range(3):
            one.check(ALICE)
            two.check(ALICE)

        with pytest.raises(RateLimited):
            one.check(ALICE)


class TestAppsSharingRedis:
    @pytest.fixture
    def redis_limited(
        self, limited: Settings, redis_url: str, redis_prefix: str
    ) -> Settings:
        return limited.model_copy(
            update={"redis_url": redis_url, "redis_prefix": redis_prefix}
        )

    def test_two_apps_share_one_limit(self, redis_limited: Settings) -> None:
        headers = viewer(redis_limited)
        with (
            TestClient(training.create_app(redis_limited)) as one,
            TestClient(training.create_app(redis_limited)) as two,
        ):
            first = statuses(one, headers, 2) + statuses(two, headers, 1)
            refused = statuses(two, headers, 1) + statuses(one, headers, 1)

        assert first == [200, 200, 200]
        assert refused == [429, 429]

    def test_each_app_counts_alone_while_redis_is_cut_then_shares_again(
        self, redis_limited: Settings, redis_url: str, redis_proxy: TcpProxy
    ) -> None:
        cut = redis_limited.model_copy(
            update={"redis_url": through(redis_url, redis_proxy), "redis_retry_s": 0.2}
        )
        headers = viewer(cut)
        with (
            TestClient(training.create_app(cut)) as one,
            TestClient(training.create_app(cut)) as two,
        ):
            redis_proxy.cut()
            alone = [statuses(one, headers, 4), statuses(two, headers, 4)]
            redis_proxy.restore()
            for app in (one, two):
                wait_for(partial(redis_up, app))
            shared = statuses(one, headers, 2) + statuses(two, headers, 2)

        assert alone == [[200, 200, 200, 429]] * 2
        assert shared == [200, 200, 200, 429]


def redis_up(client: TestClient) -> bool | None:
    """True once the app's /ready says Redis is up, else None (for `wait_for`)."""
    return client.get("/ready").json()["checks"]["redis"]["detail"] == "up" or None
