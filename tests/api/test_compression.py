"""Gzip for the console's large answers, only when the client takes it."""

from __future__ import annotations

import gzip

import orjson
import pytest
from fastapi import Request
from starlette.datastructures import Headers

from atalaia.api.common.compression import accepts_gzip, json_response


def _request(accept: str | None) -> Request:
    headers = [] if accept is None else [(b"accept-encoding", accept.encode())]
    return Request({"type": "http", "headers": Headers(raw=headers).raw})


@pytest.mark.parametrize(
    ("accept", "taken"),
    [
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.5", True),
        ("*", True),
        ("gzip;q=0", False),
        ("identity", False),
        (None, False),
    ],
)
def test_accept_encoding_is_read(accept: str | None, taken: bool) -> None:
    assert accepts_gzip(_request(accept)) is taken


def test_a_large_body_is_gzipped_and_reads_back() -> None:
    payload = {"ids": [f"sensor_{i:06d}" for i in range(5_000)], "x": float("nan")}

    response = json_response(_request("gzip"), payload)

    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["vary"] == "Accept-Encoding"
    body = orjson.loads(gzip.decompress(response.body))
    assert body["ids"] == payload["ids"]
    assert body["x"] is None
    assert len(response.body) < len(orjson.dumps(payload)) / 5


def test_a_small_body_or_a_client_without_gzip_gets_it_plain() -> None:
    small = json_response(_request("gzip"), {"a": 1})
    plain = json_response(_request(None), {"ids": list(range(5_000))})

    assert "content-encoding" not in small.headers
    assert "content-encoding" not in plain.headers
    assert orjson.loads(plain.body)["ids"][-1] == 4_999
