"""Bodies over their route's limit are refused with 413 before they are read in full.

Over real HTTP (the embedded app served by uvicorn on a thread), on raw sockets:
a body announced too large is refused before a byte of it is sent, and a
chunked body that never ends is refused once it passes the limit.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from atalaia.api.common.body_limits import (
    ELSEWHERE,
    MANAGEMENT,
    MIB,
    PREDICTION,
    UPLOAD,
    body_limit,
)
from atalaia.cli.demo import embedded_server
from atalaia.cluster.gateway import GatewayTls, render_nginx_conf
from atalaia.settings import Settings

# Long enough for a loaded machine; without the limits a read waits forever.
TIMEOUT_S = 30.0
# (path, its limit): a hot route, a FastAPI route with a large limit, and one
# with the default.
ROUTES = [
    ("/api/v1/predict/batch", PREDICTION.size),
    ("/api/v1/predict/sensor_001", PREDICTION.size),
    ("/api/v1/series/sensor_001/points", MANAGEMENT.size),
    ("/api/v1/admin/reload", ELSEWHERE),
    ("/api/v1/uploads", UPLOAD.size),  # a file, streamed to disk
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    home = tmp_path_factory.mktemp("home")
    settings = Settings(home=home, log_json=False, log_level="WARNING")
    with embedded_server(settings) as base:
        address = urlsplit(base)
        assert address.hostname is not None
        assert address.port is not None
        yield address.hostname, address.port


def post(
    server: tuple[str, int], path: str, headers: dict[str, str], chunks: Iterator[bytes]
) -> tuple[int, dict[str, Any]]:
    """POST on a raw socket: send `chunks` until the server answers, then read it."""
    with socket.create_connection(server, timeout=TIMEOUT_S) as sock:
        head = [f"POST {path} HTTP/1.1", f"Host: {server[0]}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        for chunk in chunks:
            if select.select([sock], [], [], 0)[0]:
                break  # the server has answered: send no more
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break  # it has answered and closed
        response = http.client.HTTPResponse(sock)
        response.begin()
        body: dict[str, Any] = json.loads(response.read())
        return response.status, body


def endless_chunks(size: int) -> Iterator[bytes]:
    """A chunked body of `size` bytes in 1 MiB chunks, without its last chunk:
    a server that waited for its end would never answer."""
    piece = b"x" * MIB
    for _ in range(size // MIB):
        yield b"%x\r\n%s\r\n" % (len(piece), piece)


def assert_refused(status: int, body: dict[str, Any], limit: int) -> None:
    assert status == 413
    assert body["error"] == "PayloadTooLarge"
    assert body["rule"] == "body_size"
    assert str(limit) in body["detail"]


@pytest.mark.parametrize(("path", "limit"), ROUTES)
def test_a_body_announced_too_large_is_refused_unread(
    server: tuple[str, int], path: str, limit: int
) -> None:
    headers = {"Content-Type": "application/json", "Content-Length": str(limit + 1)}

    status, body = post(server, path, headers, iter(()))  # not a byte of it sent

    assert_refused(status, body, limit)


@pytest.mark.parametrize(("path", "limit"), ROUTES[:3])  # the routes that read one
def test_a_chunked_body_is_cut_at_the_limit(
    server: tuple[str, int], path: str, limit: int
) -> None:
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}

    status, body = post(server, path, headers, endless_chunks(limit + 2 * MIB))

    assert_refused(status, body, limit)


@pytest.mark.parametrize("path", [path for path, _limit in ROUTES[:3]])
def test_a_body_within_the_limit_goes_through(
    server: tuple[str, int], path: str
) -> None:
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}

    status, body = post(server, path, headers, iter([b"2\r\n{}\r\n0\r\n\r\n"]))

    assert status == 401  # read, then refused for want of a token
    assert body["error"] == "AuthenticationFailed"


class TestOneTable:
    @pytest.mark.parametrize(
        ("path", "limit"),
        [
            *ROUTES,
            ("/api/v1/training/batch", MANAGEMENT.size),
            ("/api/v1/feedback/s", MANAGEMENT.size),
            ("/api/v1/predictions", ELSEWHERE),
            ("/predict/s", ELSEWHERE),  # the gateway's alias, not a service route
        ],
    )
    def test_limits_by_route(self, path: str, limit: int) -> None:
        assert body_limit(path) == limit

    def test_the_gateway_renders_the_same_limits(self) -> None:
        conf = render_nginx_conf(
            {s: ["127.0.0.1:1"] for s in ("training", "inference", "plot", "health")},
            listen="80",
            tls=GatewayTls(listen="443", cert_file="c.pem", key_file="k.pem"),
            runtime_dir="/tmp",
            access_log="off",
        )

        assert f"client_max_body_size {ELSEWHERE // MIB}m;" in conf
        for limit in (PREDICTION, MANAGEMENT, UPLOAD):
            assert f"^/api/v1/({'|'.join(limit.routes)})(/|$)" in conf
            assert f"client_max_body_size {limit.size // MIB}m;" in conf
