"""Request body limits: one table for the gateway (nginx) and the services.

A 100,000-reading prediction batch is ~9 MB as rows, a training body of 100,000
points ~3.5 MB, a fleet operation naming 300,000 series ~8 MB, an asset file of
a fleet's 95,000 sensors and their machines ~8 MB as CSV, a site's floor plan
a few MB, an uploaded file of readings up to 2 GiB (streamed to disk, never
held); nothing else takes more than a few KB. A body over its route's limit
is refused with 413 before it is buffered: at once when its Content-Length
says so, else (a chunked body) as soon as the bytes read pass the limit. The
gateway's `client_max_body_size` is rendered from this table, so a body the
gateway lets through is one the service takes.
"""

from __future__ import annotations

import sys
from typing import NamedTuple

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from atalaia.api.common.errors import error_response
from atalaia.errors import PayloadTooLarge

MIB = 1 << 20  # nginx's "m"


class BodyLimit(NamedTuple):
    """The largest body of the routes under /api/v1/<route>/, in bytes."""

    routes: tuple[str, ...]
    size: int


PREDICTION = BodyLimit(("predict",), 16 * MIB)
MANAGEMENT = BodyLimit(
    (
        "training",
        "models",
        "series",
        "feedback",
        "anomalies",
        "operations",
        "assets",
        "sites",
    ),
    8 * MIB,
)
UPLOAD = BodyLimit(("uploads",), 2048 * MIB)  # a file, streamed to disk
ELSEWHERE = 1 * MIB
BODY_LIMIT = "atalaia.body_limit"  # the scope's key for the request's limit
_UNLIMITED = sys.maxsize  # a request no step limited
_SMALLEST = min(ELSEWHERE, PREDICTION.size, MANAGEMENT.size, UPLOAD.size)
_PREFIX = "/api/v1/"
_BY_ROUTE = {
    route: limit.size
    for limit in (PREDICTION, MANAGEMENT, UPLOAD)
    for route in limit.routes
}


def body_limit(path: str) -> int:
    """The largest body a request to `path` may carry, in bytes."""
    if not path.startswith(_PREFIX):
        return ELSEWHERE
    return _BY_ROUTE.get(path[len(_PREFIX) :].split("/", 1)[0], ELSEWHERE)


def declared_length(scope: Scope) -> int | None:
    """The request's Content-Length, None if absent (chunked) or unreadable."""
    for key, value in scope["headers"]:
        if key == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class BodyLimits:
    """Edge step: the request's body limit (`BODY_LIMIT`) is its route's; a body
    announced longer is refused at once."""

    def begin(self, scope: Scope, _headers: list[tuple[bytes, bytes]], /) -> None:
        declared = declared_length(scope)
        if declared is not None and declared <= _SMALLEST:
            # Within any limit, and a server passes on no more than declared:
            # nothing to set or count (most requests).
            return
        limit = scope[BODY_LIMIT] = body_limit(scope["path"])
        if declared is not None and declared > limit:
            raise PayloadTooLarge(limit)


async def read_body(scope: Scope, receive: Receive) -> bytes:
    """The whole body, refused (PayloadTooLarge) once it is over the request's
    limit (the hot routes, which read their bodies themselves)."""
    limit: int = scope.get(BODY_LIMIT, _UNLIMITED)
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
        raise PayloadTooLarge(limit)
    return b"".join(chunks)


async def serve_within_limit(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send
) -> None:
    """Serve the request with `app`, refusing its body with 413 as soon as the
    bytes read pass the request's limit (FastAPI's routes, which read through
    `receive`).

    The app never sees the refusal as an error of its own: a read past the limit
    raises inside the app (FastAPI turns a failed body read into a 400), so what
    the app answers then is dropped and the 413 sent instead.
    """
    limit = scope.get(BODY_LIMIT)
    if limit is None:
        await app(scope, receive, send)
        return
    read = 0
    over: PayloadTooLarge | None = None
    started = False

    async def limited_receive() -> Message:
        nonlocal read, over
        message = await receive()
        read += len(message.get("body", b""))
        if read > limit:
            over = PayloadTooLarge(limit)
            raise over
        return message

    async def send_unless_over(message: Message) -> None:
        nonlocal started
        if over is None:
            started = True
            await send(message)

    try:
        await app(scope, limited_receive, send_unless_over)
    except Exception:
        if over is None or started:
            raise
    if over is not None and not started:
        await error_response(over)(scope, receive, send)
