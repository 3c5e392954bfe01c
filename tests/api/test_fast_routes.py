"""The hot routes' bare ASGI dispatcher: matching, answers, errors, metrics, docs."""

from __future__ import annotations

import orjson
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import BaseModel
from starlette.types import Scope

from atalaia.api.common.body_limits import BodyLimits
from atalaia.api.common.edge import Edge
from atalaia.api.common.errors import install_error_handlers
from atalaia.api.common.fast_routes import FastRoute, ServiceApp, install_fast_routes
from atalaia.api.common.observability import HttpMetrics, RequestIds
from atalaia.errors import InvalidInput


class Echo(BaseModel):
    text: str


async def echo(scope: Scope, body: bytes) -> bytes:
    """Say the body back, with the path's name."""
    return orjson.dumps({"name": scope["path_params"]["name"], "body": body.decode()})


async def refuse(_scope: Scope, _body: bytes) -> bytes:
    raise InvalidInput("no thanks", rule="always_refused")


async def crash(_scope: Scope, _body: bytes) -> bytes:
    raise RuntimeError("a bug")


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def client(registry: CollectorRegistry) -> TestClient:
    app = ServiceApp(
        Edge(RequestIds(), HttpMetrics(registry), BodyLimits()), title="hot"
    )
    routes = [
        FastRoute("/hot/refuse", refuse, "Refuse", (Echo,), (Echo,), "hot"),
        FastRoute("/hot/crash", crash, "Crash", (Echo,), (Echo,), "hot"),
        FastRoute("/hot/{name}", echo, "Echo", (Echo,), (Echo,), "hot"),
    ]
    install_fast_routes(app, routes, "/api/v1")
    install_error_handlers(app)
    return TestClient(app, raise_server_exceptions=False)


def test_a_hot_route_gets_its_path_parameters_and_body(client: TestClient) -> None:
    answer = client.post("/api/v1/hot/abc", content=b"hello")

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"name": "abc", "body": "hello"}


def test_the_request_id_is_echoed_or_made(client: TestClient) -> None:
    given = client.post("/api/v1/hot/a", content=b"", headers={"X-Request-ID": "r-1"})
    made = [client.post("/api/v1/hot/a", content=b"") for _ in range(2)]

    assert given.headers["x-request-id"] == "r-1"
    assert made[0].headers["x-request-id"] != made[1].headers["x-request-id"]


def test_errors_go_through_the_apps_handlers(client: TestClient) -> None:
    refused = client.post("/api/v1/hot/refuse", content=b"{}")
    crashed = client.post("/api/v1/hot/crash", content=b"{}")

    assert refused.status_code == 422
    assert refused.json()["rule"] == "always_refused"
    assert int(refused.headers["content-length"]) == len(refused.content)
    assert crashed.status_code == 500
    assert crashed.json()["error"] == "InternalError"


def test_other_methods_are_refused_with_allow(client: TestClient) -> None:
    answer = client.get("/api/v1/hot/abc")

    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"
    assert answer.json()["error"] == "MethodNotAllowed"


def test_paths_beyond_the_hot_routes_reach_fastapi(client: TestClient) -> None:
    assert client.post("/api/v1/hot/a/b", content=b"").status_code == 404
    assert client.get("/openapi.json").status_code == 200


def test_requests_are_counted_by_route_template(
    client: TestClient, registry: CollectorRegistry
) -> None:
    client.post("/api/v1/hot/abc", content=b"")
    client.post("/api/v1/hot/refuse", content=b"")

    text = generate_latest(registry).decode()

    assert 'route="/api/v1/hot/{name}",status="200"} 1.0' in text
    assert 'route="/api/v1/hot/refuse",status="422"} 1.0' in text
    timed = 'method="POST",route="/api/v1/hot/{name}"'
    assert f'http_request_duration_seconds_bucket{{le="+Inf",{timed}}} 1.0' in text
    assert f"http_request_duration_seconds_count{{{timed}}} 1.0" in text


def test_durations_fall_in_cumulative_buckets(registry: CollectorRegistry) -> None:
    metrics = HttpMetrics(registry)
    for seconds in (0.0004, 0.0005, 0.003, 99.0):
        metrics.observe("GET", "/x", 200, seconds)

    text = generate_latest(registry).decode()

    def bucket(le: str) -> str:
        return (
            f'http_request_duration_seconds_bucket{{le="{le}",method="GET",route="/x"}}'
        )

    assert f"{bucket('0.0005')} 2.0" in text
    assert f"{bucket('0.001')} 2.0" in text
    assert f"{bucket('0.005')} 3.0" in text
    assert f"{bucket('5.0')} 3.0" in text
    assert f"{bucket('+Inf')} 4.0" in text
    assert 'http_request_duration_seconds_sum{method="GET",route="/x"} 99.0039' in text


def test_hot_routes_are_documented(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    operation = paths["/api/v1/hot/{name}"]["post"]
    assert operation["summary"] == "Echo"
    assert operation["parameters"][0]["name"] == "name"
    assert "422" in operation["responses"]
