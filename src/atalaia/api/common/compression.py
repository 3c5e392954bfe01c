"""Compressed answers for the large ones (lists, plots, the console's grid and
charts, batch predictions): a route opts in; the single-prediction path never
pays for it.

The coding is zstd or gzip, whichever the client's Accept-Encoding rates higher
(q-values; zstd on a tie: smaller and several times faster), none when it
accepts neither or the body is under MIN_COMPRESSED_BYTES. Answers of an
opted-in route always say `Vary: Accept-Encoding`, compressed or not.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
import zstandard
from fastapi import Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

MIN_COMPRESSED_BYTES = 1024
GZIP_LEVEL = 5  # most of level 9's ratio on JSON at a fraction of its time
ZSTD_LEVEL = 3  # zstd's default: better than gzip 5's ratio, ~5× its speed
# Bodies past this are compressed in a worker thread (zlib and zstd release the
# GIL), not on the event loop.
IN_THREAD_BYTES = 256 * 1024
CODINGS = ("zstd", "gzip")  # on equal quality, the first
_ALIASES = {"x-gzip": "gzip"}
_COMPRESSIBLE = ("application/json", "image/svg+xml", "text/")
VARY = "Accept-Encoding"


def chosen_coding(accept_encoding: str | None) -> str | None:
    """The coding of CODINGS the client rates highest (named, else by `*`);
    None when it rates both 0 or names neither."""
    qualities: dict[str, float] = {}
    for part in (accept_encoding or "").split(","):
        coding, *params = (p.strip() for p in part.split(";"))
        coding = _ALIASES.get(coding.lower(), coding.lower())
        if coding:
            qualities[coding] = max(_quality(params), qualities.get(coding, 0.0))
    star = qualities.get("*", 0.0)
    rated = [(qualities.get(c, star), -i, c) for i, c in enumerate(CODINGS)]
    quality, _, best = max(rated)
    return best if quality > 0 else None


def _quality(params: list[str]) -> float:
    """The q of a coding's parameters (1 when absent, 0 when unreadable)."""
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return min(max(float(value), 0.0), 1.0)
            except ValueError:
                return 0.0
    return 1.0


def compress(body: bytes, coding: str) -> bytes:
    if coding == "zstd":
        return zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(body)
    return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)


def worth_compressing(body: bytes, accept_encoding: str | None) -> str | None:
    """The coding to send `body` in, None to send it as is."""
    if len(body) < MIN_COMPRESSED_BYTES:
        return None
    return chosen_coding(accept_encoding)


async def compress_off_loop(body: bytes, coding: str) -> bytes:
    """`compress`, in a worker thread when the body is large."""
    if len(body) < IN_THREAD_BYTES:
        return compress(body, coding)
    return await run_in_threadpool(compress, body, coding)


def json_response(request: Request, payload: Any) -> Response:
    """`payload` as JSON (NaN and ±Inf as null), compressed when the client
    takes zstd or gzip and the body is worth it."""
    body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
    headers = {"Vary": VARY}
    coding = worth_compressing(body, request.headers.get("accept-encoding"))
    if coding is not None:
        body = compress(body, coding)
        headers["Content-Encoding"] = coding
    return Response(body, media_type="application/json", headers=headers)


async def compressed(request: Request, response: Response) -> Response:
    """`response` compressed in place for `request` (when worth it); a streamed
    answer, one already encoded or of a binary type (PNG) goes as it is."""
    media = response.headers.get("content-type", "")
    if (
        not hasattr(response, "body")
        or "content-encoding" in response.headers
        or not media.startswith(_COMPRESSIBLE)
    ):
        return response
    response.headers["Vary"] = VARY
    body = bytes(response.body)
    coding = worth_compressing(body, request.headers.get("accept-encoding"))
    if coding is not None:
        response.body = await compress_off_loop(body, coding)
        response.headers["Content-Encoding"] = coding
        response.headers["Content-Length"] = str(len(response.body))
    return response


class CompressedRoute(APIRoute):
    """A route whose answers are compressed (`compressed`): a router opts in
    with `APIRouter(route_class=CompressedRoute)`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        answer = super().get_route_handler()

        async def handler(request: Request) -> Response:
            return await compressed(request, await answer(request))

        return handler
