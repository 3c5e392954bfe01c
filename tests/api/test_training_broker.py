"""The training service's sweeper with a broker: which jobs it publishes again."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from celery import Celery

from atalaia.adapters.db.repositories import JobStore
from atalaia.adapters.queue.celery_app import RUN_CHUNK, create_celery
from atalaia.adapters.queue.celery_queue import CeleryJobQueue
from atalaia.api.common.resources import Resources, open_resources
from atalaia.api.training.broker import redispatch_stale_jobs
from atalaia.core.jobs import JobStatus, TrainingJob
from atalaia.settings import Settings
from fixtures.broker import messages

HOUR = timedelta(hours=1)


@pytest.fixture
def resources(
    make_settings: Callable[..., Settings], database_url: str
) -> Iterator[Resources]:
    opened = open_resources(
        make_settings(database_url, redispatch_after_s=60, stuck_job_after_s=0),
        migrate=False,
    )
    yield opened
    opened.close()


@pytest.fixture
def app(rabbitmq_url: str, queue_name: str) -> Iterator[Celery]:
    celery = create_celery(rabbitmq_url, queue=queue_name)
    yield celery
    celery.close()


def add_job(resources: Resources, series_id: str, *, age: timedelta) -> str:
    job = TrainingJob(
        job_id=f"job-{series_id}",
        series_id=series_id,
        status=JobStatus.QUEUED,
        algorithm="zscore",
        hyperparameters={"threshold_sigma": 3.0},
        payload_key=None,
        window_hours=168.0,
        created_at=datetime.now(UTC) - age,
        submitted_by="tester",
    )
    with resources.sessions() as session:
        JobStore(session).add(job)
        session.commit()
    return job.job_id


def claim(resources: Resources, job_id: str) -> None:
    with resources.sessions() as session:
        JobStore(session).claim([job_id])
        session.commit()


class TestRedispatchStaleJobs:
    def test_publishes_old_queued_jobs_only_while_the_broker_queue_is_empty(
        self, resources: Resources, app: Celery, rabbitmq_url: str, queue_name: str
    ) -> None:
        job_queue = CeleryJobQueue(app, queue=queue_name)
        old = add_job(resources, "s1", age=HOUR)
        add_job(resources, "s2", age=timedelta(0))
        stuck = add_job(resources, "s3", age=timedelta(0))
        claim(resources, stuck)  # every running job is stuck: stuck_job_after_s=0

        empty = redispatch_stale_jobs(resources, job_queue)
        waiting = job_queue.depth()
        # The old job may be among the chunks waiting: only the stuck one again.
        backlog = redispatch_stale_jobs(resources, job_queue)

        assert (empty, waiting, backlog) == (2, 1, 1)
        assert messages(rabbitmq_url, queue_name) == [
            (RUN_CHUNK, [[old, stuck]]),
            (RUN_CHUNK, [[stuck]]),
        ]

    def test_publishes_nothing_while_the_broker_is_unreachable(
        self, resources: Resources, queue_name: str
    ) -> None:
        down = create_celery("amqp://guest:guest@127.0.0.1:1//", queue=queue_name)
        add_job(resources, "s1", age=HOUR)
        try:
            published = redispatch_stale_jobs(
                resources, CeleryJobQueue(down, queue=queue_name)
            )
        finally:
            down.close()

        assert published == 0
