"""Hot routes served by a bare ASGI dispatcher, still documented in OpenAPI.

FastAPI's dependency injection, Pydantic bodies and even Starlette's routing,
request and response objects cost more than the work of a prediction. A
`FastRoute`'s endpoint takes the ASGI scope and the raw body and returns the
JSON answer; `ServiceApp` matches it before FastAPI sees the request and keeps
what every request gets: RED metrics, a request id, the body limits
(`body_limits`) and the app's error handlers (on the error path only). Its
bodies, answers and security are merged into the app's OpenAPI document like any
other route's.
"""

from __future__ import annotations

import inspect
import itertools
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import orjson
import structlog
from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import Message, Receive, Scope, Send

from atalaia import errors
from atalaia.api.common.body_limits import body_limit, check_declared
from atalaia.api.common.deps import BEARER
from atalaia.api.common.errors import http_error_body
from atalaia.api.common.observability import HttpMetrics, header
from atalaia.api.common.openapi import (
    AUTHORIZED,
    ErrorView,
    error_operation_responses,
)
from atalaia.api.common.params import SERIES_ID_SCHEMA

# (scope with "path_params", body) → the JSON answer
Endpoint = Callable[[Scope, bytes], Awaitable[bytes]]
ErrorHandler = Callable[[Request, Exception], Any]
_REF = "#/components/schemas/{model}"
# What every hot route can answer besides its answer (prediction routes never
# reach the database on the request's behalf: no 503).
_RAISES: tuple[type[errors.AtalaiaError], ...] = (
    errors.InvalidInput,
    errors.PayloadTooLarge,
    *AUTHORIZED,
)
_PARAMETERS = {"series_id": SERIES_ID_SCHEMA}  # what a path parameter must match


@dataclass(frozen=True, slots=True)
class FastRoute:
    """A POST route: its path, endpoint and what OpenAPI says of it."""

    path: str
    endpoint: Endpoint
    summary: str
    bodies: tuple[type[BaseModel], ...]  # one of these
    answers: tuple[type[BaseModel], ...]  # one of these
    tag: str
    parameters: tuple[dict[str, Any], ...] = ()  # OpenAPI's, besides the path's
    errors: tuple[type[errors.AtalaiaError], ...] = ()  # raised besides _RAISES


_JSON = (b"content-type", b"application/json")
_POST_ONLY = orjson.dumps(http_error_body(405, "this route answers POST only"))


class _Hot:
    """The hot routes of one app: match a path, run the endpoint, answer."""

    def __init__(
        self,
        routes: Sequence[FastRoute],
        prefix: str,
        metrics: HttpMetrics,
        handlers: dict[Any, ErrorHandler],
    ) -> None:
        self.routes = [
            (compile_path(prefix + route.path)[0], prefix + route.path, route)
            for route in routes
        ]
        self.limits = {template: body_limit(template) for _, template, _ in self.routes}
        self.prefixes = tuple({prefix + r.path.split("{")[0] for r in routes})
        self.metrics = metrics
        self.handlers = handlers
        # Unique ids without a system call per request (see ObservabilityMiddleware).
        self._id_prefix, self._counter = uuid.uuid4().hex[:16], itertools.count()

    def match(self, path: str) -> tuple[str, FastRoute, dict[str, str]] | None:
        if not path.startswith(self.prefixes):
            return None
        for regex, template, route in self.routes:
            found = regex.match(path)
            if found:
                return template, route, found.groupdict()
        return None

    async def serve(
        self,
        matched: tuple[str, FastRoute, dict[str, str]],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        started = perf_counter()
        template, route, scope["path_params"] = matched
        request_id = (
            header(scope, b"x-request-id")
            or f"{self._id_prefix}{next(self._counter):016x}"
        )
        status, headers = 200, [_JSON]
        try:
            if scope["method"] != "POST":
                status, headers, body = 405, [_JSON, (b"allow", b"POST")], _POST_ONLY
            else:
                limit = self.limits[template]
                body = await route.endpoint(
                    scope, await _read_body(scope, receive, limit)
                )
        except ClientDisconnect:
            return
        except Exception as exc:
            response = await self._on_error(scope, receive, exc, request_id)
            status, body = response.status_code, bytes(response.body)
            headers = [h for h in response.raw_headers if h[0] != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        headers.append((b"x-request-id", request_id.encode()))
        start = {"type": "http.response.start", "status": status, "headers": headers}
        await send(start)
        await send({"type": "http.response.body", "body": body})
        self.metrics.observe("POST", template, status, perf_counter() - started)

    async def _on_error(
        self, scope: Scope, receive: Receive, exc: Exception, request_id: str
    ) -> Response:
        """The app's handler for `exc` (the nearest class in its MRO); else re-raise."""
        handler = next(
            (self.handlers[c] for c in type(exc).__mro__ if c in self.handlers), None
        )
        if handler is None:
            raise exc
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            response = handler(Request(scope, receive), exc)
            if inspect.isawaitable(response):
                response = await response
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
        assert isinstance(response, Response)
        return response


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole body, refused (PayloadTooLarge) once it is over `limit` bytes:
    before reading it if its Content-Length says so."""
    check_declared(scope, limit)
    message: Message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnect()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False) and len(body) <= limit:
        return body
    chunks, read = [body], len(body)
    while message.get("more_body", False) and read <= limit:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        read += len(chunks[-1])
    if read > limit:
        raise errors.PayloadTooLarge(limit)
    return b"".join(chunks)


class ServiceApp(FastAPI):
    """A FastAPI app that serves its hot routes before FastAPI sees them."""

    _hot: _Hot | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._hot is not None:
            matched = self._hot.match(scope["path"])
            if matched is not None:
                scope["app"] = self
                await self._hot.serve(matched, scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def install_fast_routes(
    app: ServiceApp, routes: Sequence[FastRoute], prefix: str, metrics: HttpMetrics
) -> None:
    """Serve `routes` under `prefix` and document them in the app's OpenAPI."""
    if not routes:
        return
    # The app's handlers as they are when the first request comes (all installed).
    app._hot = _Hot(routes, prefix, metrics, app.exception_handlers)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        documented: set[type[BaseModel]] = {ErrorView}
        documented.update(m for r in routes for m in (*r.bodies, *r.answers))
        models = sorted(documented, key=lambda m: m.__name__)
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
    responses.update(error_operation_responses(*_RAISES, *route.errors))
    return {
        "tags": [route.tag],
        "summary": route.summary,
        "description": (route.endpoint.__doc__ or "").strip(),
        "operationId": route.endpoint.__name__,
        "parameters": [
            *(
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", **_PARAMETERS.get(name, {})},
                }
                for name in re.findall(r"{(\w+)}", route.path)
            ),
            *route.parameters,
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": one_of(route.bodies)}},
        },
        "responses": responses,
        "security": [{BEARER.scheme_name: []}],
    }
