"""`atalaia worker` processes on the real RabbitMQ and PostgreSQL.

The training API (in this process) publishes jobs; workers started as their own
processes run them. A worker killed in the middle of a chunk, a broker cut at
submit time, a cancelled job and a chunk delivered twice all end with exactly
one version per job that succeeded.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.db.repositories import ReadingStore
from atalaia.adapters.queue.celery_app import create_celery
from atalaia.adapters.queue.celery_queue import CeleryJobQueue
from atalaia.api.common.auth import Role
from atalaia.api.training import create_app
from atalaia.cli import app as cli_app
from atalaia.cluster import supervisor
from atalaia.cluster.supervisor import ProcessSpec, Started
from atalaia.settings import Settings
from fixtures.api import Headers, bearer, inline_body
from fixtures.broker import broker_port
from fixtures.db import truncate_tables
from fixtures.readings import sensor_readings
from fixtures.tcp_proxy import TcpProxy
from fixtures.workers import ATALAIA, JOBS, TERMINAL, poll, versions_per_job

BATCH = "/api/v1/training/batch"
StartWorker = Callable[..., Started]


@pytest.fixture
def broker_settings(
    make_settings: Callable[..., Settings],
    postgres_database: str,
    rabbitmq_url: str,
    queue_name: str,
) -> Settings:
    """Settings on an empty PostgreSQL database and a fresh queue on RabbitMQ."""
    truncate_tables(postgres_database)
    return make_settings(
        postgres_database,
        broker_url=rabbitmq_url,
        training_queue=queue_name,
        training_min_interval_s=0,
    )


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[StartWorker]:
    """Start `atalaia worker` processes; every one still running is stopped after."""
    started: list[Started] = []

    def start(settings: Settings, *, concurrency: int = 1) -> Started:
        assert settings.broker_url is not None
        env = {
            "ATALAIA_HOME": str(settings.home),
            "ATALAIA_DATABASE_URL": settings.database_url,
            "ATALAIA_BROKER_URL": settings.broker_url,
            "ATALAIA_TRAINING_QUEUE": settings.training_queue,
            "ATALAIA_LOG_JSON": "false",
        }
        argv = (str(ATALAIA), "worker", "--concurrency", str(concurrency))
        name = f"worker-{len(started) + 1}"
        process = supervisor.spawn(ProcessSpec(name, argv, env=env), tmp_path)
        started.append(process)
        return process

    yield start
    supervisor.stop(started, timeout_s=10)


@contextmanager
def training_api(settings: Settings) -> Iterator[tuple[TestClient, Headers]]:
    with TestClient(create_app(settings)) as client:
        yield client, bearer(settings, Role.ADMIN)  # polls often: not rate-limited


def submit(client: TestClient, headers: Headers, series_id: str, seed: int = 0) -> str:
    response = client.post(
        f"/api/v1/training/{series_id}", json=inline_body(seed=seed), headers=headers
    )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    return job_id


def job(client: TestClient, headers: Headers, job_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = client.get(f"{JOBS}/{job_id}", headers=headers).json()
    return answer


def ended(client: TestClient, headers: Headers, *job_ids: str) -> list[dict[str, Any]]:
    """The jobs, once every one of them has ended."""

    def probe() -> list[dict[str, Any]] | None:
        jobs = [job(client, headers, job_id) for job_id in job_ids]
        return jobs if all(j["status"] in TERMINAL for j in jobs) else None

    return poll(probe, f"{len(job_ids)} jobs ending")


def running(client: TestClient, headers: Headers, job_ids: list[str]) -> bool | None:
    """True when every job is running, else None (for `poll`)."""
    statuses = {job(client, headers, job_id)["status"] for job_id in job_ids}
    return True if statuses == {"running"} else None


def pool_processes(pid: int) -> list[int]:
    """The child processes of `pid` (a worker's pool)."""
    return [
        int(child)
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    ]


@contextmanager
def registrations_held(database_url: str) -> Iterator[None]:
    """No model version can be registered meanwhile (a lock a chunk waits for).

    Claims and fits go on, so the jobs of a chunk are running, and stay running.
    """
    libpq = make_url(database_url).set(drivername="postgresql")
    with psycopg.connect(libpq.render_as_string(hide_password=False)) as conn:
        conn.execute("LOCK TABLE model_versions IN SHARE MODE")
        yield
        conn.rollback()


def test_without_a_broker_the_worker_refuses_to_start() -> None:
    result = CliRunner().invoke(cli_app, ["worker"], env={"ATALAIA_BROKER_URL": ""})

    assert result.exit_code == 2
    assert "ATALAIA_BROKER_URL" in result.output


def test_without_a_broker_jobs_run_in_the_training_service(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'a.db'}", broker_url=None)
    with training_api(settings) as (client, headers):
        checks = client.get("/ready").json()["checks"]
        done = ended(client, headers, submit(client, headers, "sensor_001_radial"))

    assert checks["executor"]["detail"] == "in-process"
    assert "broker" not in checks
    assert done[0]["status"] == "succeeded"


@pytest.mark.postgres
class TestWorker:
    def test_runs_the_jobs_the_training_api_publishes(
        self, broker_settings: Settings, start_worker: StartWorker
    ) -> None:
        with training_api(broker_settings) as (client, headers):
            job_ids = [
                submit(client, headers, f"sensor_{n:03d}_radial", seed=n)
                for n in range(3)
            ]
            start_worker(broker_settings, concurrency=2)
            jobs = ended(client, headers, *job_ids)
            checks = client.get("/ready").json()["checks"]

        assert [(j["status"], j["model_version"]) for j in jobs] == [
            ("succeeded", 1)
        ] * 3
        assert versions_per_job(broker_settings) == dict.fromkeys(job_ids, 1)
        assert checks["broker"] == {"ok": True, "detail": "amqp, 0 chunks waiting"}

    def test_a_chunk_whose_worker_was_killed_runs_again_on_another(
        self, broker_settings: Settings, start_worker: StartWorker
    ) -> None:
        fleet = [f"sensor_{n:03d}_axial" for n in range(20)]
        engine = make_engine(broker_settings.database_url)
        with make_session_factory(engine)() as session:
            weeks = {sid: sensor_readings(seed=i) for i, sid in enumerate(fleet)}
            ReadingStore(session).append_many(weeks)
            session.commit()
        engine.dispose()
        body = {"series_ids": fleet, "window_hours": 168}
        with training_api(broker_settings) as (client, headers):
            with registrations_held(broker_settings.database_url):
                batch = client.post(BATCH, json=body, headers=headers).json()
                job_ids = [j["job_id"] for j in batch["jobs"]]
                first = start_worker(broker_settings)
                poll(lambda: running(client, headers, job_ids), "the chunk running")
                os.killpg(first.pid, signal.SIGKILL)
                poll(lambda: not supervisor.alive(first) or None, "the worker dead")
            # A job its dead worker left running can be cancelled all the same.
            cancelled = client.delete(f"{JOBS}/{job_ids[0]}", headers=headers)
            start_worker(broker_settings)
            jobs = ended(client, headers, *job_ids)

        assert cancelled.json()["status"] == "cancelled"
        assert [j["status"] for j in jobs] == ["cancelled"] + ["succeeded"] * 19
        assert all(j["attempts"] >= 2 for j in jobs[1:])
        assert versions_per_job(broker_settings) == dict.fromkeys(job_ids[1:], 1)

    def test_a_chunk_whose_pool_process_died_goes_back_to_the_queue(
        self, broker_settings: Settings, start_worker: StartWorker
    ) -> None:
        with training_api(broker_settings) as (client, headers):
            with registrations_held(broker_settings.database_url):
                job_id = submit(client, headers, "sensor_001_radial")
                worker = start_worker(broker_settings)
                poll(lambda: running(client, headers, [job_id]), "the job running")
                [child] = pool_processes(worker.pid)
                os.kill(child, signal.SIGKILL)  # the worker itself lives on
            [done] = ended(client, headers, job_id)

        assert (done["status"], done["model_version"]) == ("succeeded", 1)
        assert done["attempts"] >= 2
        assert supervisor.alive(worker)
        assert versions_per_job(broker_settings) == {job_id: 1}

    def test_a_job_submitted_while_the_broker_is_cut_runs_once_it_is_back(
        self, broker_settings: Settings, start_worker: StartWorker
    ) -> None:
        assert broker_settings.broker_url is not None
        start_worker(broker_settings)
        port = broker_port(broker_settings.broker_url)
        with TcpProxy("127.0.0.1", port) as proxy:
            proxied = broker_settings.model_copy(
                update={
                    "broker_url": broker_settings.broker_url.replace(
                        f":{port}", f":{proxy.port}"
                    ),
                    "redispatch_after_s": 1.0,
                }
            )
            with training_api(proxied) as (client, headers):
                proxy.cut()
                job_id = submit(client, headers, "sensor_001_radial")
                status = job(client, headers, job_id)["status"]
                ready = client.get("/ready")
                proxy.restore()
                [done] = ended(client, headers, job_id)

        assert status == "queued"
        assert ready.status_code == 200
        assert ready.json()["checks"]["broker"]["detail"].startswith("degraded")
        assert (done["status"], done["model_version"]) == ("succeeded", 1)
        assert versions_per_job(broker_settings) == {job_id: 1}

    def test_a_job_cancelled_while_queued_is_skipped(
        self, broker_settings: Settings, start_worker: StartWorker
    ) -> None:
        with training_api(broker_settings) as (client, headers):
            cancelled = submit(client, headers, "sensor_001_radial")
            answer = client.delete(f"{JOBS}/{cancelled}", headers=headers)
            after = submit(client, headers, "sensor_002_radial")
            start_worker(broker_settings)  # one chunk at a time, in order
            ended(client, headers, after)
            first = job(client, headers, cancelled)

        assert answer.json()["status"] == "cancelled"
        assert (first["status"], first["attempts"]) == ("cancelled", 0)
        assert versions_per_job(broker_settings) == {after: 1}

    def test_a_chunk_delivered_again_after_it_succeeded_changes_nothing(
        self, broker_settings: Settings, start_worker: StartWorker
    ) -> None:
        assert broker_settings.broker_url is not None
        app = create_celery(
            broker_settings.broker_url, queue=broker_settings.training_queue
        )
        with training_api(broker_settings) as (client, headers):
            start_worker(broker_settings)  # one chunk at a time, in order
            [before] = ended(client, headers, submit(client, headers, "s1"))
            CeleryJobQueue(app, queue=broker_settings.training_queue).dispatch(
                before["job_id"]
            )
            last = submit(client, headers, "s2")
            ended(client, headers, last)
            again = job(client, headers, before["job_id"])
        app.close()

        assert again == before
        assert versions_per_job(broker_settings) == {before["job_id"]: 1, last: 1}
