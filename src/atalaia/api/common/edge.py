"""The cross-cutting steps of every request: one list, run on both paths.

A request is served by FastAPI (routing, dependencies, pydantic) or, on a hot
route, by the bare dispatcher of `fast_routes`. Both run the steps of the app's
`Edge`, in its order: `EdgeMiddleware` around the FastAPI app (its only
middleware, as a test checks), the dispatcher inline, with no wrapper or await
of its own. A step has one hook or both:

- `begin(scope, headers)` before the route: add headers to the answer, set the
  request's body limit (`BODY_LIMIT`, honoured by both paths' body reads), or
  refuse the request by raising an `AtalaiaError`, answered like the route's;
- `end(scope, route, status, started)` once answered, in reverse order (also
  the steps after one that refused): `route` is the route template
  ("unmatched" if none), `status` 500 if the app failed, `started` the
  request's `perf_counter()` on arrival;
- `refused(scope, route)` for a request answered 401, before the `end`s.

A step with `HOT = False` is left out of the hot routes' `begin`s and `end`s
(their sensor traffic is nothing to it) but still hears of their refusals.
"""

from __future__ import annotations

from time import perf_counter
from typing import Protocol, runtime_checkable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from atalaia.api.common.body_limits import serve_within_limit
from atalaia.api.common.errors import error_response
from atalaia.errors import AtalaiaError

Headers = list[tuple[bytes, bytes]]


@runtime_checkable
class BeginsRequests(Protocol):
    def begin(self, scope: Scope, headers: Headers, /) -> None: ...


@runtime_checkable
class EndsRequests(Protocol):
    def end(self, scope: Scope, route: str, status: int, started: float, /) -> None: ...


@runtime_checkable
class HearsRefusals(Protocol):
    def refused(self, scope: Scope, route: str, /) -> None: ...


Step = BeginsRequests | EndsRequests | HearsRefusals


class Edge:
    """The steps every request goes through, in the order they begin; a path
    calls `begins` before the route, `ends` once answered and `refusals` if
    that was a 401 (the hot routes: `hot_begins`, `hot_ends`)."""

    def __init__(self, *steps: Step) -> None:
        self.steps = steps
        # Bound once, and only the hooks a step has: the hot path loops on them.
        self.begins = tuple(s.begin for s in steps if isinstance(s, BeginsRequests))
        self.ends = tuple(s.end for s in steps[::-1] if isinstance(s, EndsRequests))
        hot = [s for s in steps if getattr(s, "HOT", True)]
        self.hot_begins = tuple(s.begin for s in hot if isinstance(s, BeginsRequests))
        self.hot_ends = tuple(s.end for s in hot[::-1] if isinstance(s, EndsRequests))
        self.refusals = tuple(s.refused for s in steps if isinstance(s, HearsRefusals))


class EdgeMiddleware:
    """Runs an `Edge` around an ASGI app (FastAPI's routes), as pure ASGI."""

    def __init__(self, app: ASGIApp, edge: Edge) -> None:
        self.app = app
        self.edge = edge

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        headers: Headers = []
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).extend(headers)
            await send(message)

        try:
            try:
                for begin in self.edge.begins:
                    begin(scope, headers)
            except AtalaiaError as exc:
                await error_response(exc)(scope, receive, send_with_headers)
            else:
                await serve_within_limit(self.app, scope, receive, send_with_headers)
        finally:
            template = getattr(scope.get("route"), "path", None) or "unmatched"
            if status == 401:
                for refused in self.edge.refusals:
                    refused(scope, template)
            for end in self.edge.ends:
                end(scope, template, status, started)
