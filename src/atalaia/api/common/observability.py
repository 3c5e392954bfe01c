"""Edge steps: RED metrics per route template, request ids and traces (see `edge`)."""

from __future__ import annotations

import itertools
import uuid
from bisect import bisect_left
from collections.abc import Iterator
from time import perf_counter
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.propagators.textmap import Getter
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from starlette.types import Scope

from atalaia.logging import REQUEST_ID

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip


class HttpMetrics(Collector):
    """Edge step: RED metrics per route template: `http_requests_total` and
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

    def end(self, scope: Scope, route: str, status: int, started: float, /) -> None:
        self.observe(scope["method"], route, status, perf_counter() - started)

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


class RequestIds:
    """Edge step: the request's id, its X-Request-ID or else a new one, is sent
    back in that header and named in the logs while the request is served."""

    def __init__(self) -> None:
        # Unique ids without a system call per request: a random process prefix
        # and a counter (uuid4 reads os.urandom, slow on some virtual machines).
        self._prefix, self._counter = uuid.uuid4().hex[:16], itertools.count()

    def begin(self, scope: Scope, headers: list[tuple[bytes, bytes]], /) -> None:
        request_id = (
            header(scope, b"x-request-id")
            or f"{self._prefix}{next(self._counter):016x}"
        )
        REQUEST_ID.set(request_id)
        headers.append((b"x-request-id", request_id.encode()))

    def end(self, _scope: Scope, _route: str, _status: int, _started: float, /) -> None:
        REQUEST_ID.set(None)


_SPAN = "atalaia.span"  # the scope's key for (span, context token)


class Traces:
    """Edge step: a server span per request, continuing the caller's trace
    (`traceparent`), current while the request is served and named after its
    route template once answered.

    A span the sampler drops is a non-recording one: nothing is recorded or
    exported, and its trace id still goes on to the logs and the callees. When
    the sampler starts no trace of its own (`roots_sampled` false: sampling
    off), a request that carries none is not traced at all, at no cost.
    """

    def __init__(self, tracer: trace.Tracer, roots_sampled: bool = True) -> None:
        self._tracer = tracer
        self._roots_sampled = roots_sampled
        self._fields = {f.encode() for f in propagate.get_global_textmap().fields}

    def begin(self, scope: Scope, _headers: list[tuple[bytes, bytes]], /) -> None:
        carried = _carries(scope["headers"], self._fields)
        if not (carried or self._roots_sampled):
            return
        parent = propagate.extract(scope, getter=SCOPE_HEADERS) if carried else None
        span = self._tracer.start_span(
            scope["method"], parent, kind=trace.SpanKind.SERVER
        )
        if span.is_recording():
            span.set_attributes(
                {
                    "http.request.method": scope["method"],
                    "url.path": scope["path"],
                    "atalaia.request_id": REQUEST_ID.get() or "",
                }
            )
        scope[_SPAN] = (span, context.attach(trace.set_span_in_context(span)))

    def end(self, scope: Scope, route: str, status: int, _started: float, /) -> None:
        begun = scope.pop(_SPAN, None)
        if begun is None:  # not traced, or an earlier step refused the request
            return
        span, token = begun
        context.detach(token)
        if span.is_recording():
            span.update_name(f"{scope['method']} {route}")
            span.set_attributes(
                {"http.route": route, "http.response.status_code": status}
            )
            if status >= 500:
                span.set_status(trace.StatusCode.ERROR)
        span.end()


def _carries(headers: list[tuple[bytes, bytes]], fields: set[bytes]) -> bool:
    """Whether `headers` name one of the propagation `fields`."""
    for key, _ in headers:
        if key in fields:
            return True
    return False


class _ScopeHeaders(Getter[Scope]):
    """Reads the propagation headers (`traceparent`, …) of an ASGI scope."""

    def get(self, carrier: Scope, key: str) -> list[str] | None:
        name, headers = key.encode(), carrier.get("headers", ())
        found = [v.decode("latin-1") for k, v in headers if k == name]
        return found or None

    def keys(self, carrier: Scope) -> list[str]:
        return [key.decode("latin-1") for key, _ in carrier.get("headers", ())]


SCOPE_HEADERS = _ScopeHeaders()


def header(scope: Scope, name: bytes) -> str | None:
    headers: Any = scope.get("headers", ())
    for key, value in headers:
        if key == name:
            return str(value.decode("latin-1"))[:128]
    return None
