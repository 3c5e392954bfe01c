"""Writes that race: the training interval and stage changes hold under concurrency,
on SQLite and PostgreSQL (threads released together by a barrier); embedded jobs
defer their writes to training requests."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from atalaia.api.training.routes import training
from atalaia.embedded import create_embedded_app
from fixtures.api import Headers, SettingsFactory, inline_body, promote, train

SERIES = "sensor_005_radial"
THREADS = 12
BARRIER_WAIT_S = 30.0  # generous: reached only when a call never starts


@pytest.fixture
def limited(database_url: str, make_settings: SettingsFactory) -> Iterator[TestClient]:
    """The app with the 5-minute training interval, on each database."""
    with TestClient(create_embedded_app(make_settings(database_url))) as client:
        yield client


@pytest.fixture
def unlimited(
    database_url: str, make_settings: SettingsFactory
) -> Iterator[TestClient]:
    """The app without the training interval, on each database."""
    settings = make_settings(database_url, training_min_interval_s=0)
    with TestClient(create_embedded_app(settings)) as client:
        yield client


def together(calls: Sequence[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Run every call at once: each thread waits at a barrier, then calls."""
    barrier = threading.Barrier(len(calls), timeout=BARRIER_WAIT_S)

    def run(call: Callable[[], httpx.Response]) -> httpx.Response:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def _accepted(response: httpx.Response) -> int:
    """Jobs a training answer accepted: 1 for a single 202, the count of a batch's."""
    if response.status_code != 202:
        return 0
    body: dict[str, Any] = response.json()
    return int(body.get("accepted", 1))


class TestTrainingInterval:
    def test_one_training_of_a_series_is_accepted_among_concurrent_ones(
        self, limited: TestClient, admin: Headers
    ) -> None:
        body = inline_body()
        stored = limited.post(
            f"/api/v1/series/{SERIES}/points", json=body, headers=admin
        )
        assert stored.status_code == 200, stored.text
        batch = {"series_ids": [SERIES], "window_hours": 2000}

        single = partial(
            limited.post, f"/api/v1/training/{SERIES}", json=body, headers=admin
        )
        stored_window = partial(
            limited.post,
            f"/api/v1/training/{SERIES}",
            json={"window_hours": 2000},
            headers=admin,
        )
        in_batch = partial(
            limited.post, "/api/v1/training/batch", json=batch, headers=admin
        )

        answers = together([single, stored_window, in_batch] * (THREADS // 3))

        assert sum(_accepted(a) for a in answers) == 1
        refused = [a for a in answers if a.status_code != 202]
        assert {a.status_code for a in refused} == {429}
        assert all(int(a.headers["Retry-After"]) > 0 for a in refused)
        jobs = limited.get(f"/api/v1/training/jobs?series_id={SERIES}", headers=admin)
        assert len(jobs.json()["jobs"]) == 1


class TestJobsDeferToRequests:
    def test_training_submissions_defer_jobs_from_their_first_dependency(
        self,
    ) -> None:
        # FastAPI solves a route's dependencies in order: the first one runs
        # before the others (body, authentication, session).
        submissions = [
            route
            for route in training.router.routes
            if isinstance(route, APIRoute) and route.methods == {"POST"}
        ]

        firsts = [route.dependant.dependencies[0].call for route in submissions]

        assert len(submissions) == 3  # one series, a batch, a retry
        assert firsts == [training.served_before_jobs] * 3


class TestStageChanges:
    def test_concurrent_rollbacks_conflict_or_succeed_never_fail(
        self, unlimited: TestClient, admin: Headers
    ) -> None:
        for seed in (1, 2):
            train(unlimited, SERIES, admin, seed=seed)
            promote(unlimited, SERIES, seed, admin)

        rollback = partial(
            unlimited.post, f"/api/v1/models/{SERIES}/rollback", headers=admin
        )

        answers = [a for _ in range(3) for a in together([rollback] * THREADS)]

        assert {a.status_code for a in answers} <= {200, 409}, [
            a.text for a in answers if a.status_code not in (200, 409)
        ]
        assert _production(unlimited, admin) in ([1], [2])
        assert _ledger_follows_itself(unlimited, admin)

    def test_concurrent_promotions_leave_one_production_version(
        self, unlimited: TestClient, admin: Headers
    ) -> None:
        for seed in range(1, 5):
            train(unlimited, SERIES, admin, seed=seed)

        promotions = [
            partial(
                unlimited.post,
                f"/api/v1/models/{SERIES}/versions/{version}/promote",
                json={},
                headers=admin,
            )
            for version in range(1, 5)
        ]

        answers = together(promotions * (THREADS // 4))

        assert {a.status_code for a in answers} <= {200, 409}
        assert 200 in {a.status_code for a in answers}
        assert len(_production(unlimited, admin)) == 1
        assert _ledger_follows_itself(unlimited, admin)


def _production(client: TestClient, headers: Headers) -> list[int]:
    versions = client.get(f"/api/v1/models/{SERIES}/versions", headers=headers)
    return [v["version"] for v in versions.json() if v["stage"] == "production"]


def _ledger_follows_itself(client: TestClient, headers: Headers) -> bool:
    """Every stage change in the (latest) ledger starts where the one before left."""
    config = client.get(f"/api/v1/models/{SERIES}/deployment-config", headers=headers)
    stages: dict[int, str | None] = {}
    for entry in config.json()["history"]:
        version = entry["version"]
        if version in stages and stages[version] != entry["from_stage"]:
            return False
        stages[version] = entry["to_stage"]
    return True
