"""The Celery application shared by the training service (publisher) and workers.

One durable queue carries training chunks (lists of job ids, JSON). A message
is acknowledged only once its chunk has run, and goes back to the queue when
the worker running it dies, so no job is lost; the jobs table makes a chunk
run twice harmless. Broker connections give up after about a second, so that
a submit with the broker down answers at once (its job stays queued, and the
training service publishes it again later).
"""

from __future__ import annotations

from celery import Celery
from kombu import Exchange, Queue

RUN_CHUNK = "training.run_chunk"
EXCHANGE = "atalaia"
CONNECT_TIMEOUT_S = 1.0


def training_queue(name: str) -> Queue:
    """The durable queue `name`, bound to the `atalaia` exchange by its own name."""
    exchange = Exchange(EXCHANGE, type="direct", durable=True)
    return Queue(name, exchange, routing_key=name, durable=True)


def create_celery(broker_url: str, *, queue: str) -> Celery:
    """A Celery app publishing to and consuming from `queue` on `broker_url`."""
    app = Celery("atalaia", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_queues=[training_queue(queue)],
        task_default_queue=queue,
        task_default_exchange=EXCHANGE,
        task_default_routing_key=queue,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        # At least once: acknowledged after the run, re-queued if its worker dies.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # A chunk whose broker connection is lost runs to its end: the copy the
        # broker delivers again then finds its jobs done (a no-op).
        worker_cancel_long_running_tasks_on_connection_loss=False,
        broker_connection_timeout=CONNECT_TIMEOUT_S,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a worker waits for its broker
        # One connection attempt per publish or check, not kombu's retry loop;
        # a publish returns once RabbitMQ has the message (publisher confirms).
        broker_transport_options={
            "max_retries": 0,
            "interval_start": 0,
            "socket_connect_timeout": CONNECT_TIMEOUT_S,
            "confirm_publish": True,
        },
        worker_enable_remote_control=False,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
    )
    return app
