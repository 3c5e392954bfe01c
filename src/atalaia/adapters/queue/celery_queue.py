"""The JobQueue of the distributed platform: training chunks published to Celery.

Publishing never fails a submit: the job row is committed before it is
dispatched, so a chunk that cannot be published (the broker is down) is logged
and left queued in the jobs table, where `redispatch_stale_jobs` finds it.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from celery import Celery

from atalaia.adapters.queue.celery_app import RUN_CHUNK
from atalaia.adapters.queue.inprocess import CHUNK_SIZE

log = structlog.get_logger()

# One reconnection when a pooled connection went stale, then give up.
PUBLISH_RETRY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0,
    "interval_max": 0,
}


class CeleryJobQueue:
    """Publishes job ids, `chunk_size` to a message, to the queue `queue`."""

    def __init__(
        self, app: Celery, *, queue: str, chunk_size: int = CHUNK_SIZE
    ) -> None:
        self.app = app
        self.queue = queue
        self._chunk_size = chunk_size

    def dispatch(self, job_id: str) -> None:
        self.dispatch_many([job_id])

    def dispatch_many(self, job_ids: Sequence[str]) -> None:
        """Publish the jobs in chunks; a chunk that cannot be published stays queued."""
        unique = list(dict.fromkeys(job_ids))
        for start in range(0, len(unique), self._chunk_size):
            self._publish(unique[start : start + self._chunk_size])

    def depth(self) -> int | None:
        """Chunks waiting in the broker's queue, or None when it cannot be reached.

        A queue not declared yet holds nothing: 0.
        """
        try:
            with self.app.connection_for_read() as conn:
                channel = conn.default_channel  # connects: one attempt
                try:
                    declared = channel.queue_declare(  # type: ignore[attr-defined]
                        self.queue, passive=True
                    )
                except conn.channel_errors:  # no such queue (AMQP 404, Redis)
                    return 0
        except Exception as exc:  # every transport's connection errors
            log.info("queue.broker_unreachable", error=type(exc).__name__)
            return None
        return int(declared.message_count)

    def _publish(self, chunk: list[str]) -> None:
        try:
            self.app.send_task(
                RUN_CHUNK,
                args=[chunk],
                queue=self.queue,
                retry=True,
                retry_policy=PUBLISH_RETRY,
            )
        except Exception as exc:  # the jobs stay queued; the sweeper retries
            log.warning(
                "queue.publish_failed",
                jobs=len(chunk),
                first_job_id=chunk[0],
                error=type(exc).__name__,
                detail=str(exc),
            )
