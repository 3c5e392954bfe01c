"""Hot routes served by a bare ASGI dispatcher, still documented in OpenAPI.

FastAPI's dependency injection, Pydantic bodies and even Starlette's routing,
request and response objects cost more than the work of a prediction. A
`FastRoute`'s endpoint takes the ASGI scope and the raw body and returns the
JSON answer; `ServiceApp` matches it before FastAPI sees the request and keeps
what every request gets: the app's edge steps (request id, metrics, body limit:
`edge`) and its error handlers (on the error path only). Its bodies, answers
and security are merged into the app's OpenAPI document like any other
route's.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import orjson
from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import Receive, Scope, Send

from atalaia import errors
from atalaia.api.common.body_limits import read_body
from atalaia.api.common.compression import VARY, compress_off_loop, worth_compressing
from atalaia.api.common.deps import BEARER
from atalaia.api.common.edge import Edge, EdgeMiddleware
from atalaia.api.common.errors import http_error_body
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
    compressed: bool = False  # large answers (batches): see `compression`


_JSON = (b"content-type", b"application/json")
_POST_ONLY = orjson.dumps(http_error_body(405, "this route answers POST only"))


class _Hot:
    """The hot routes of one app: match a path, run the edge and the endpoint."""

    def __init__(
        self,
        routes: Sequence[FastRoute],
        prefix: str,
        edge: Edge,
        handlers: dict[Any, ErrorHandler],
    ) -> None:
        self.routes = [
            (compile_path(prefix + route.path)[0], prefix + route.path, route)
            for route in routes
        ]
        self.prefixes = tuple({prefix + r.path.split("{")[0] for r in routes})
        self.begins, self.ends = edge.hot_begins, edge.hot_ends
        self.refusals = edge.refusals
        self.handlers = handlers

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
        status, headers = 200, [_JSON]
        try:
            for begin in self.begins:
                begin(scope, headers)
            if scope["method"] != "POST":
                status, body = 405, _POST_ONLY
                headers.append((b"allow", b"POST"))
            else:
                body = await route.endpoint(scope, await read_body(scope, receive))
                if route.compressed:
                    body = await _compressed(scope, body, headers)
        except ClientDisconnect:
            return  # nothing to answer, nor to count
        except Exception as exc:
            response = await self._on_error(scope, receive, exc)
            status, body = response.status_code, bytes(response.body)
            # the answer's headers, then the edge's (headers[0] is _JSON)
            headers[:1] = [h for h in response.raw_headers if h[0] != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        start = {"type": "http.response.start", "status": status, "headers": headers}
        await send(start)
        await send({"type": "http.response.body", "body": body})
        if status == 401:
            for refused in self.refusals:
                refused(scope, template)
        for end in self.ends:
            end(scope, template, status, started)

    async def _on_error(
        self, scope: Scope, receive: Receive, exc: Exception
    ) -> Response:
        """The app's handler for `exc` (the nearest class in its MRO); else re-raise."""
        handler = next(
            (self.handlers[c] for c in type(exc).__mro__ if c in self.handlers), None
        )
        if handler is None:
            raise exc
        response = handler(Request(scope, receive), exc)
        if inspect.isawaitable(response):
            response = await response
        assert isinstance(response, Response)
        return response


async def _compressed(
    scope: Scope, body: bytes, headers: list[tuple[bytes, bytes]]
) -> bytes:
    """`body` compressed for the request's Accept-Encoding when worth it; the
    answer's headers say so."""
    accept = next(
        (v.decode("latin-1") for k, v in scope["headers"] if k == b"accept-encoding"),
        None,
    )
    headers.append((b"vary", VARY.encode()))
    coding = worth_compressing(body, accept)
    if coding is None:
        return body
    headers.append((b"content-encoding", coding.encode()))
    return await compress_off_loop(body, coding)


class ServiceApp(FastAPI):
    """A FastAPI app that runs `edge` around every request (`EdgeMiddleware`)
    and serves its hot routes before FastAPI sees them."""

    _hot: _Hot | None = None

    def __init__(self, edge: Edge, **options: Any) -> None:
        super().__init__(**options)
        self.edge = edge
        self.add_middleware(EdgeMiddleware, edge=edge)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._hot is not None:
            matched = self._hot.match(scope["path"])
            if matched is not None:
                scope["app"] = self
                await self._hot.serve(matched, scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def install_fast_routes(
    app: ServiceApp, routes: Sequence[FastRoute], prefix: str
) -> None:
    """Serve `routes` under `prefix` and document them in the app's OpenAPI."""
    if not routes:
        return
    # The app's handlers as they are when the first request comes (all installed).
    app._hot = _Hot(routes, prefix, app.edge, app.exception_handlers)
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
