"""Services on PostgreSQL when the database goes away (cut by a TCP proxy)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from atalaia.adapters.db.tables import JobRow
from atalaia.api import inference, training
from atalaia.api.common.auth import Role
from atalaia.settings import Settings
from fixtures.api import (
    Headers,
    SettingsFactory,
    bearer,
    inline_body,
    predict,
    promote,
    train,
    wait_until_served,
)
from fixtures.db import truncate_tables
from fixtures.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres

SERIES = "sensor_004_tangential"


@pytest.fixture
def proxy(postgres_database: str) -> Iterator[TcpProxy]:
    truncate_tables(postgres_database)
    url = make_url(postgres_database)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as tcp_proxy:
        yield tcp_proxy


@pytest.fixture
def settings_pair(
    postgres_database: str, proxy: TcpProxy, make_settings: SettingsFactory
) -> tuple[Settings, Settings]:
    """(training on PostgreSQL directly, inference through the proxy)."""
    proxied = make_url(postgres_database).set(host="127.0.0.1", port=proxy.port)
    return (
        make_settings(postgres_database, training_min_interval_s=0),
        make_settings(
            proxied.render_as_string(hide_password=False), inference_db_retry_s=0.2
        ),
    )


def _predict(client: TestClient, settings: Settings, series_id: str) -> dict[str, Any]:
    return predict(client, bearer(settings, Role.VIEWER), series_id=series_id)


def _serves(client: TestClient, settings: Settings, version: int) -> None:
    wait_until_served(client, bearer(settings, Role.VIEWER), version, SERIES)


@contextmanager
def serving_version_one(
    settings_pair: tuple[Settings, Settings],
) -> Iterator[tuple[TestClient, TestClient, Headers]]:
    """(training client, inference client, admin headers), v1 trained and served."""
    train_settings, infer_settings = settings_pair
    admin = bearer(train_settings, Role.ADMIN)
    with (
        TestClient(training.create_app(train_settings)) as trainer,
        TestClient(inference.create_app(infer_settings)) as predictor,
    ):
        train(trainer, SERIES, admin, seed=1)
        promote(trainer, SERIES, 1, admin)
        _serves(predictor, infer_settings, 1)
        yield trainer, predictor, admin


class TestDatabaseCut:
    def test_predictions_continue_from_memory_and_resume_following(
        self, proxy: TcpProxy, settings_pair: tuple[Settings, Settings]
    ) -> None:
        infer_settings = settings_pair[1]
        with serving_version_one(settings_pair) as (trainer, predictor, admin):
            proxy.cut()
            answers = [_predict(predictor, infer_settings, SERIES) for _ in range(50)]
            unknown = _predict(predictor, infer_settings, "never_seen_series")
            ready = predictor.get("/ready")

            assert {a["model_info"]["version"] for a in answers} == {1}
            assert {a["model_info"]["loaded_from"] for a in answers} == {"memory"}
            assert unknown["confidence"] == "low"
            assert ready.status_code == 200
            assert "down" in ready.json()["checks"]["database"]["detail"]

            train(trainer, SERIES, admin, seed=2)
            promote(trainer, SERIES, 2, admin)
            proxy.restore()
            _serves(predictor, infer_settings, 2)

    def test_starts_from_the_snapshot_when_the_database_is_down(
        self, proxy: TcpProxy, settings_pair: tuple[Settings, Settings]
    ) -> None:
        infer_settings = settings_pair[1]
        with serving_version_one(settings_pair):
            pass
        proxy.cut()

        with TestClient(inference.create_app(infer_settings)) as restarted:
            body = _predict(restarted, infer_settings, SERIES)
            readiness = restarted.get("/api/v1/readiness").json()

        assert body["model_info"]["version"] == 1
        assert body["model_info"]["loaded_from"] == "snapshot"
        assert readiness["loaded_from"] == "snapshot"
        assert readiness["database"] == "down"


class TestDatabaseCutWithRedis:
    def test_promotions_arrive_through_redis_and_newcomers_load_from_it(
        self,
        proxy: TcpProxy,
        postgres_database: str,
        make_settings: SettingsFactory,
        redis_url: str,
        redis_prefix: str,
        tmp_path: Path,
    ) -> None:
        shared = {
            "redis_url": redis_url,
            "redis_prefix": redis_prefix,
            "jwt_secret": "s" * 32,  # the newcomer has a home of its own
        }
        proxied = make_url(postgres_database).set(host="127.0.0.1", port=proxy.port)
        url = proxied.render_as_string(hide_password=False)
        pair = (
            make_settings(postgres_database, training_min_interval_s=0, **shared),
            make_settings(url, inference_db_retry_s=0.2, **shared),
        )
        newcomer_settings = make_settings(url, home=tmp_path / "newcomer", **shared)
        with serving_version_one(pair) as (trainer, predictor, admin):
            train(trainer, SERIES, admin, seed=2, algorithm="zscore")
            proxy.cut()
            answers = [_predict(predictor, pair[1], SERIES) for _ in range(50)]
            promote(trainer, SERIES, 2, admin)
            _serves(predictor, pair[1], 2)  # the database is cut: through Redis
            with TestClient(inference.create_app(newcomer_settings)) as newcomer:
                first = _predict(newcomer, newcomer_settings, SERIES)
                readiness = newcomer.get("/api/v1/readiness").json()

        assert {a["model_info"]["version"] for a in answers} == {1}
        assert first["model_info"] == {
            "version": 2, "stage": "production", "type": "zscore",
            "loaded_from": "redis",
            "role": "production",
        }  # fmt: skip
        assert readiness["database"] == "down"


class TestTrainingWithoutDatabase:
    def test_refuses_with_503_then_recovers(
        self, proxy: TcpProxy, postgres_database: str, make_settings: SettingsFactory
    ) -> None:
        proxied = make_url(postgres_database).set(host="127.0.0.1", port=proxy.port)
        settings = make_settings(proxied.render_as_string(hide_password=False))
        admin = bearer(settings, Role.ADMIN)
        with TestClient(training.create_app(settings)) as trainer:
            proxy.cut()
            refused = trainer.get("/api/v1/training/jobs", headers=admin)
            ready = trainer.get("/ready")
            proxy.restore()
            job = train(trainer, SERIES, admin)

        assert refused.status_code == 503
        assert refused.json() == {
            "error": "DependencyUnavailable",
            "rule": "dependency_available",
            "detail": "database is unavailable",
        }
        assert ready.status_code == 503
        assert job["status"] == "succeeded"


# Longer than any bound below: a request still blocked then hangs until restore.
GIVE_UP_S = 60


@pytest.fixture
def bounded_settings(
    proxy: TcpProxy, postgres_database: str, make_settings: SettingsFactory
) -> Settings:
    """Settings through the proxy, with short database timeouts."""
    proxied = make_url(postgres_database).set(host="127.0.0.1", port=proxy.port)
    return make_settings(
        proxied.render_as_string(hide_password=False),
        db_connect_timeout_s=1,
        db_statement_timeout_s=1,
        db_socket_timeout_s=1.5,
    )


def _train_in_the_dark(
    trainer: TestClient, proxy: TcpProxy, headers: Headers
) -> httpx.Response:
    """POST a training while the database does not answer, then restore it."""
    answers: list[httpx.Response] = []
    post = threading.Thread(
        target=lambda: answers.append(
            trainer.post(
                f"/api/v1/training/{SERIES}", json=inline_body(), headers=headers
            )
        )
    )
    post.start()
    post.join(GIVE_UP_S)
    proxy.restore()
    post.join()
    return answers[0]


class TestDatabaseBlackHole:
    """The database's proxy accepts and acknowledges, and forwards nothing."""

    def test_a_training_answers_503_and_is_not_accepted_later(
        self, proxy: TcpProxy, bounded_settings: Settings
    ) -> None:
        admin = bearer(bounded_settings, Role.ADMIN)
        with TestClient(training.create_app(bounded_settings)) as trainer:
            trainer.get("/api/v1/training/jobs", headers=admin)  # a pooled connection
            proxy.black_hole()
            refused = _train_in_the_dark(trainer, proxy, admin)
            jobs = trainer.get("/api/v1/training/jobs", headers=admin).json()["jobs"]
            job = train(trainer, SERIES, admin)

        assert refused.status_code == 503, refused.text
        assert refused.json()["error"] == "DependencyUnavailable"
        assert jobs == []
        assert job["status"] == "succeeded"

    def test_a_commit_that_gets_no_answer_leaves_no_job_and_no_payload(
        self, proxy: TcpProxy, bounded_settings: Settings
    ) -> None:
        admin = bearer(bounded_settings, Role.ADMIN)

        def dark_at_commit(session: Session) -> None:
            if any(isinstance(row, JobRow) for row in session.new):
                proxy.black_hole()

        with TestClient(training.create_app(bounded_settings)) as trainer:
            event.listen(Session, "before_commit", dark_at_commit)
            try:
                refused = _train_in_the_dark(trainer, proxy, admin)
            finally:
                event.remove(Session, "before_commit", dark_at_commit)
            jobs = trainer.get("/api/v1/training/jobs", headers=admin).json()["jobs"]

        assert refused.status_code == 503, refused.text
        assert jobs == []
        assert [
            p for p in bounded_settings.artifacts_path.rglob("*") if p.is_file()
        ] == []
