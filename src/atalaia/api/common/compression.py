"""Gzip for the large read-only answers the console asks for (the fleet's
grid, decimated charts): a route opts in; the prediction paths never pay for it."""

from __future__ import annotations

import gzip
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

MIN_COMPRESSED_BYTES = 1024
LEVEL = 5  # most of level 9's ratio on JSON at a fraction of its time


def json_response(request: Request, payload: Any) -> Response:
    """`payload` as JSON (NaN and ±Inf as null), gzipped when the client takes
    gzip and the body is worth it."""
    body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
    headers = {"Vary": "Accept-Encoding"}
    if len(body) >= MIN_COMPRESSED_BYTES and accepts_gzip(request):
        body = gzip.compress(body, compresslevel=LEVEL, mtime=0)
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type="application/json", headers=headers)


def accepts_gzip(request: Request) -> bool:
    """Whether Accept-Encoding names gzip with a non-zero quality."""
    for part in request.headers.get("accept-encoding", "").split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in {"gzip", "*"}:
            return params.replace(" ", "") not in {"q=0", "q=0.0", "q=0.00", "q=0.000"}
    return False
