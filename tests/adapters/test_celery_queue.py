"""CeleryJobQueue on the real RabbitMQ (and Redis): chunks, depth, a broker down."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from celery import Celery

from atalaia.adapters.queue.celery_app import RUN_CHUNK, create_celery
from atalaia.adapters.queue.celery_queue import CeleryJobQueue
from fixtures.broker import broker_port, delete_queue, messages
from fixtures.tcp_proxy import TcpProxy

JOBS = [f"job-{i}" for i in range(7)]


@pytest.fixture
def app(rabbitmq_url: str, queue_name: str) -> Iterator[Celery]:
    celery = create_celery(rabbitmq_url, queue=queue_name)
    yield celery
    celery.close()


class TestCeleryJobQueue:
    def test_publishes_the_jobs_in_chunks_each_once(
        self, app: Celery, rabbitmq_url: str, queue_name: str
    ) -> None:
        job_queue = CeleryJobQueue(app, queue=queue_name, chunk_size=3)

        job_queue.dispatch_many([*JOBS, JOBS[0]])

        assert job_queue.depth() == 3
        assert messages(rabbitmq_url, queue_name) == [
            (RUN_CHUNK, [JOBS[:3]]),
            (RUN_CHUNK, [JOBS[3:6]]),
            (RUN_CHUNK, [JOBS[6:]]),
        ]

    def test_a_queue_never_declared_holds_nothing(self, app: Celery) -> None:
        job_queue = CeleryJobQueue(app, queue=f"atalaia.test.{uuid.uuid4().hex}")

        assert job_queue.depth() == 0

    def test_a_publish_with_the_broker_down_is_dropped_without_raising(
        self, rabbitmq_url: str, queue_name: str
    ) -> None:
        port = broker_port(rabbitmq_url)
        with TcpProxy("127.0.0.1", port) as proxy:
            proxied = rabbitmq_url.replace(f":{port}", f":{proxy.port}")
            app = create_celery(proxied, queue=queue_name)
            job_queue = CeleryJobQueue(app, queue=queue_name)
            try:
                job_queue.dispatch("published")
                proxy.cut()
                job_queue.dispatch("lost")
                down = job_queue.depth()
                proxy.restore()
                job_queue.dispatch("after")
            finally:
                app.close()

        assert down is None
        assert messages(rabbitmq_url, queue_name) == [
            (RUN_CHUNK, [["published"]]),
            (RUN_CHUNK, [["after"]]),
        ]


def test_redis_is_a_broker_too(redis_broker_url: str) -> None:
    name = f"atalaia.test.{uuid.uuid4().hex[:12]}"
    app = create_celery(redis_broker_url, queue=name)
    job_queue = CeleryJobQueue(app, queue=name, chunk_size=4)
    try:
        assert job_queue.depth() == 0
        job_queue.dispatch_many(JOBS)
        assert job_queue.depth() == 2
        assert messages(redis_broker_url, name) == [
            (RUN_CHUNK, [JOBS[:4]]),
            (RUN_CHUNK, [JOBS[4:]]),
        ]
    finally:
        app.close()
        delete_queue(redis_broker_url, name)
