"""Assemble a service: lifespan, middleware, error handlers, probes and metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    ProcessCollector,
    generate_latest,
)

from atalaia import __version__
from atalaia.api.common.audit_trail import AuditTrail
from atalaia.api.common.body_limits import BodyLimits
from atalaia.api.common.dependency_metrics import DependencyMetrics
from atalaia.api.common.deps import strict_query
from atalaia.api.common.docs import install_docs
from atalaia.api.common.edge import Edge
from atalaia.api.common.errors import install_error_handlers
from atalaia.api.common.fast_routes import FastRoute, ServiceApp, install_fast_routes
from atalaia.api.common.observability import HttpMetrics, RequestIds, Traces
from atalaia.api.common.openapi import install_openapi
from atalaia.api.common.resources import Resources, open_resources
from atalaia.api.common.state import CommonState, state_as
from atalaia.api.console import install_console
from atalaia.logging import configure_logging
from atalaia.settings import Settings
from atalaia.tracing import configure_tracing, samples_roots, tracer

API_PREFIX = "/api/v1"
NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"description": "Not ready: a check failed (the same body)"}
}

# A service's own start-up and shutdown, given the shared resources and the
# app's metrics registry; it yields what it adds to the request state (a
# TypedDict of its own, see `api.common.state`).
Part = Callable[
    [Resources, CollectorRegistry], AbstractAsyncContextManager[Mapping[str, object]]
]


def build_app(
    *,
    name: str,
    settings: Settings,
    routers: Sequence[APIRouter],
    fast_routes: Sequence[FastRoute] = (),
    parts: Sequence[Part] = (),
    migrate: bool = False,
    console: bool = False,
) -> FastAPI:
    """A FastAPI app with every route of `routers` under /api/v1 and the probes at
    /; with `console`, the web console at /console/."""
    configure_logging(level=settings.log_level, json=settings.log_json)
    configure_tracing("serve" if name == "embedded" else name)
    api_tracer = tracer("atalaia.api")
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)  # CPU, memory, open files: saturation

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, object]]:
        resources = await run_in_threadpool(open_resources, settings, migrate=migrate)
        dependencies = DependencyMetrics(resources)
        registry.register(dependencies)
        try:
            async with AsyncExitStack() as stack:
                common: CommonState = {"resources": resources}
                state: dict[str, object] = {**common}
                for part in (trail.running, *parts):
                    state.update(
                        await stack.enter_async_context(part(resources, registry))
                    )
                yield state
        finally:
            registry.unregister(dependencies)
            resources.close()

    # What every request goes through, on either path, in this order: a body
    # refused for its length is still counted, named and traced; with tracing
    # off, no step is there for it.
    trail = AuditTrail(settings)
    traces = [] if api_tracer is None else [Traces(api_tracer, samples_roots())]
    edge = Edge(RequestIds(), *traces, trail, HttpMetrics(registry), BodyLimits())
    app = ServiceApp(
        edge,
        title=f"atalaia {name}",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(strict_query)],
    )
    install_fast_routes(app, fast_routes, API_PREFIX)
    install_openapi(app, settings.time_range)
    install_error_handlers(app)
    install_docs(app)
    app.include_router(probe_router(name, registry))
    for router in routers:
        app.include_router(router, prefix=API_PREFIX)
    if console:
        install_console(app)
    return app


def probe_router(name: str, registry: CollectorRegistry) -> APIRouter:
    """/health (liveness), /ready and /healthcheck (readiness), /metrics."""
    router = APIRouter(tags=["probes"])

    @router.get("/health")
    async def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok", "service": name, "version": __version__}

    @router.get("/ready", responses=NOT_READY)
    async def ready(request: Request) -> JSONResponse:
        """Readiness with the result of each check."""
        resources = state_as(CommonState, request)["resources"]
        checks = {}
        for check_name, check in resources.ready_checks.items():
            ok, detail = await run_in_threadpool(check)
            checks[check_name] = {"ok": ok, "detail": detail}
        ready = all(c["ok"] for c in checks.values())
        body = {
            "status": "ready" if ready else "not_ready",
            "service": name,
            "checks": checks,
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    router.add_api_route(
        "/healthcheck", ready, methods=["GET"], include_in_schema=False
    )

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        # On a thread: collectors read the database and Redis when scraped,
        # which must not hold up the requests on the event loop.
        text = await run_in_threadpool(generate_latest, registry)
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    return router
