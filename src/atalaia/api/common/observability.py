"""RED metrics per route and request ids, as one pure ASGI middleware."""

from __future__ import annotations

import itertools
import time
import uuid
from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip


class HttpMetrics(Collector):
    """RED metrics per route template: `http_requests_total` and
    `http_request_duration_seconds`.

    Counted in plain integers by the event loop's thread (a prometheus_client
    metric takes a lock per update, several per request) and turned into
    metric families when scraped.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._requests: dict[tuple[str, str, int], int] = {}
        # (method, route) → [count per bucket, then +Inf], and the sum of seconds
        self._durations: dict[tuple[str, str], tuple[list[int], list[float]]] = {}
        registry.register(self)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count and time one request."""
        key = (method, route, status)
        self._requests[key] = self._requests.get(key, 0) + 1
        timing = self._durations.get((method, route))
        if timing is None:
            timing = self._durations[(method, route)] = (
                [0] * (len(LATENCY_BUCKETS) + 1),
                [0.0],
            )
        timing[0][bisect_left(LATENCY_BUCKETS, seconds)] += 1
        timing[1][0] += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "http_requests",
            "HTTP requests by route template and status",
            labels=["method", "route", "status"],
        )
        for (method, route, status), n in list(self._requests.items()):
            requests.add_metric([method, route, str(status)], n)
        yield requests
        duration = HistogramMetricFamily(
            "http_request_duration_seconds",
            "HTTP request duration by route template",
            labels=["method", "route"],
        )
        bounds = [*map(floatToGoString, LATENCY_BUCKETS), "+Inf"]
        for (method, route), (counts, total) in list(self._durations.items()):
            cumulative = list(itertools.accumulate(counts))
            duration.add_metric(
                [method, route], list(zip(bounds, cumulative, strict=True)), total[0]
            )
        yield duration


class ObservabilityMiddleware:
    """Counts and times every request by route template; binds `request_id` to logs."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics
        # Unique ids without a system call per request: a random process prefix
        # and a counter (uuid4 reads os.urandom, slow on some virtual machines).
        self._id_prefix, self._counter = uuid.uuid4().hex[:16], itertools.count()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = (
            header(scope, b"x-request-id")
            or f"{self._id_prefix}{next(self._counter):016x}"
        )
        structlog.contextvars.bind_contextvars(request_id=request_id)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.setdefault("headers", [])
                headers.append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(
                scope["method"], template, status, time.perf_counter() - started
            )
            structlog.contextvars.unbind_contextvars("request_id")


def header(scope: Scope, name: bytes) -> str | None:
    headers: Any = scope.get("headers", ())
    for key, value in headers:
        if key == name:
            return str(value.decode("latin-1"))[:128]
    return None
