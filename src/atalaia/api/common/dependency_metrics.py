"""A service's own view of its dependencies, read when scraped: its database
connection pool, and whether the database and Redis answer it and how fast."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.pool import QueuePool

from atalaia.api.common.resources import Resources


class DependencyMetrics(Collector):
    """`database_pool_connections_{in_use,idle,max}`, and per dependency
    (database, redis when configured) `dependency_up` and
    `dependency_round_trip_seconds` (absent while it does not answer).

    Each scrape pings each dependency once: a round trip to the database (a
    connection from the pool, `SELECT 1`) and a Redis PING through the Redis
    link's breaker (while the breaker is open Redis counts as down, unasked).
    """

    def __init__(self, resources: Resources) -> None:
        self._resources = resources

    def collect(self) -> Iterator[Metric]:
        yield from self._pool()
        up = GaugeMetricFamily(
            "dependency_up",
            "1 while the dependency answers this process, else 0",
            labels=["dependency"],
        )
        round_trip = GaugeMetricFamily(
            "dependency_round_trip_seconds",
            "Time this process took to ask the dependency a trivial question",
            labels=["dependency"],
        )
        for name, ping in self._pings().items():
            started = time.perf_counter()
            answered = ping()
            up.add_metric([name], float(answered))
            if answered:
                round_trip.add_metric([name], time.perf_counter() - started)
        yield up
        yield round_trip

    def _pool(self) -> Iterator[Metric]:
        pool = self._resources.engine.pool
        if not isinstance(pool, QueuePool):  # an in-memory SQLite's own pool
            return
        for state, value, help_text in (
            ("in_use", pool.checkedout(), "Database connections checked out"),
            ("idle", pool.checkedin(), "Database connections idle in the pool"),
            # The pool's size plus the overflow it may open beyond it.
            ("max", pool.size() + pool._max_overflow, "Most connections it opens"),
        ):
            yield GaugeMetricFamily(
                f"database_pool_connections_{state}", help_text, value=value
            )

    def _pings(self) -> dict[str, Callable[[], bool]]:
        pings = {"database": lambda: self._resources.check_database()[0]}
        link = self._resources.redis
        if link is not None:
            pings["redis"] = lambda: link.run(lambda client: bool(client.ping()), False)
        return pings
