"""One Redis connection pool behind a circuit breaker.

Redis is optional: every use of it has an answer without it. A dead Redis costs
at most one short timeout (`timeout_s`) per `retry_s`: after a failure every
call gets its default at once, until the breaker lets a single call try again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

import redis
import structlog
from redis.backoff import NoBackoff
from redis.client import PubSub
from redis.exceptions import RedisError
from redis.retry import Retry

log = structlog.get_logger()

T = TypeVar("T")
# A subscriber's idle connection is pinged this often, so a silent cut shows.
PUBSUB_HEALTH_CHECK_S = 5


class Breaker:
    """Closed while calls succeed; open for `retry_s` after a failure, then one
    trial call per `retry_s` until one succeeds."""

    def __init__(self, retry_s: float) -> None:
        self.retry_s = retry_s
        self._open_until = 0.0  # 0: closed
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        return self._open_until == 0.0

    def ready(self) -> bool:
        """Would a call be let through now? (Does not take the trial.)"""
        return self._open_until <= time.monotonic()

    def allow(self) -> bool:
        """Let a call through: always when closed, else one trial per interval."""
        if self._open_until == 0.0:
            return True
        with self._lock:
            now = time.monotonic()
            if now < self._open_until:
                return False
            self._open_until = now + self.retry_s  # the others wait for this trial
            return True

    def succeeded(self) -> None:
        self._open_until = 0.0

    def failed(self) -> None:
        self._open_until = time.monotonic() + self.retry_s


class RedisLink:
    """The client of one Redis, its key prefix and its breaker."""

    def __init__(
        self, url: str, *, prefix: str, timeout_s: float, retry_s: float
    ) -> None:
        self.prefix = prefix
        self.breaker = Breaker(retry_s)
        # No retries inside the client: the breaker decides when to try again.
        self.client = redis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=PUBSUB_HEALTH_CHECK_S,
        )

    def key(self, *parts: str) -> str:
        """A key of this installation: the prefix, then `parts` joined by ':'."""
        return self.prefix + ":".join(parts)

    def run(self, op: Callable[[redis.Redis], T], default: T) -> T:
        """`op(client)`, or `default` when Redis fails or is left alone for now."""
        if not self.breaker.allow():
            return default
        try:
            result = op(self.client)
        except RedisError as exc:
            self.failed(exc)
            return default
        self.succeeded()
        return result

    def succeeded(self) -> None:
        if not self.breaker.closed:
            log.info("redis.back")
        self.breaker.succeeded()

    def failed(self, exc: Exception) -> None:
        if self.breaker.closed:
            log.warning("redis.down", error=type(exc).__name__, detail=str(exc)[:200])
        self.breaker.failed()

    def pubsub(self) -> PubSub:
        return PubSub(self.client.connection_pool)

    def check(self) -> tuple[bool, str]:
        """Readiness: never unready (Redis is optional), but says how it is."""
        if self.run(lambda client: bool(client.ping()), False):
            return True, "up"
        return True, "down: serving without it"

    def close(self) -> None:
        self.client.close()
