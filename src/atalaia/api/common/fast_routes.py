"""Hot routes served by plain Starlette endpoints, still documented in OpenAPI.

FastAPI's dependency injection and Pydantic bodies cost more than the work of a
prediction; a `FastRoute` skips both (the endpoint parses and authorizes by
itself) but declares its bodies, answers and security, which are merged into the
app's OpenAPI document like any other route's.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from atalaia.api.common.deps import BEARER
from atalaia.api.common.observability import HttpMetrics, ObservabilityMiddleware

Endpoint = Callable[[Request], Awaitable[Response]]
_REF = "#/components/schemas/{model}"
_ERROR = {
    "type": "object",
    "properties": {
        "error": {"type": "string"},
        "detail": {"type": "string"},
        "rule": {"type": "string"},
    },
}
_ERRORS = {
    "401": "Missing or invalid bearer token",
    "403": "The token's role may not do this",
    "422": "The body or a path parameter breaks a rule (`rule` names it)",
}


@dataclass(frozen=True, slots=True)
class FastRoute:
    """A POST route: its path, endpoint and what OpenAPI says of it."""

    path: str
    endpoint: Endpoint
    summary: str
    bodies: tuple[type[BaseModel], ...]  # one of these
    answers: tuple[type[BaseModel], ...]  # one of these
    tag: str


class _Served(Route):
    def __init__(self, route: FastRoute, prefix: str) -> None:
        super().__init__(
            prefix + route.path, route.endpoint, methods=["POST"],
            include_in_schema=False,
        )  # fmt: skip
        self.route = route

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Labels the request's metrics with the route template, as FastAPI's
        # routes do (`ObservabilityMiddleware` reads scope["route"].path).
        scope["route"] = self.route
        await super().handle(scope, receive, send)


class ServiceApp(FastAPI):
    """A FastAPI app that serves its hot routes through a lean stack in front.

    Requests under the hot routes' static prefixes skip FastAPI's per-request
    machinery (routing through every route, telemetry hooks, dependency
    injection) but keep what every request gets: RED metrics and request ids, the
    app's error handlers and its 500 handler.
    """

    hot_prefixes: tuple[str, ...] = ()
    _hot_routes: list[BaseRoute]
    _hot_metrics: HttpMetrics
    _hot_stack: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.hot_prefixes):
            scope["app"] = self
            await (self._hot_stack or self._build_hot_stack())(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    def _build_hot_stack(self) -> ASGIApp:
        handlers = dict(self.exception_handlers)
        on_unexpected = handlers.pop(Exception, None) or handlers.pop(500, None)
        self._hot_stack = ServerErrorMiddleware(
            ObservabilityMiddleware(
                ExceptionMiddleware(Router(self._hot_routes), handlers=handlers),
                self._hot_metrics,
            ),
            handler=on_unexpected,
        )
        return self._hot_stack


def install_fast_routes(
    app: ServiceApp, routes: Sequence[FastRoute], prefix: str, metrics: HttpMetrics
) -> None:
    """Serve `routes` under `prefix` and document them in the app's OpenAPI."""
    if not routes:
        return
    app.hot_prefixes = tuple({prefix + r.path.split("{")[0] for r in routes})
    app._hot_routes = [_Served(route, prefix) for route in routes]
    app._hot_metrics = metrics
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        models = sorted(
            {m for r in routes for m in (*r.bodies, *r.answers)},
            key=lambda m: m.__name__,
        )
        refs, defs = models_json_schema(
            [(m, "validation") for m in models], ref_template=_REF
        )
        components = schema.setdefault("components", {})
        components.setdefault("schemas", {}).update(defs.get("$defs", {}))
        components.setdefault("securitySchemes", {})[BEARER.scheme_name] = (
            BEARER.model.model_dump(mode="json", by_alias=True, exclude_none=True)
        )

        def one_of(choices: tuple[type[BaseModel], ...]) -> dict[str, Any]:
            schemas = [refs[(m, "validation")] for m in choices]
            return schemas[0] if len(schemas) == 1 else {"oneOf": schemas}

        for route in routes:
            path = schema.setdefault("paths", {}).setdefault(prefix + route.path, {})
            path["post"] = _operation(route, one_of)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _operation(
    route: FastRoute, one_of: Callable[[tuple[type[BaseModel], ...]], dict[str, Any]]
) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {
            "description": "Successful Response",
            "content": {"application/json": {"schema": one_of(route.answers)}},
        }
    }
    for status, description in _ERRORS.items():
        responses[status] = {
            "description": description,
            "content": {"application/json": {"schema": _ERROR}},
        }
    return {
        "tags": [route.tag],
        "summary": route.summary,
        "description": (route.endpoint.__doc__ or "").strip(),
        "operationId": route.endpoint.__name__,
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"{(\w+)}", route.path)
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": one_of(route.bodies)}},
        },
        "responses": responses,
        "security": [{BEARER.scheme_name: []}],
    }
