"""Both paths of a request, FastAPI's and the hot routes', run the same edge steps."""

from __future__ import annotations

import orjson
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import BaseModel
from starlette.types import Scope

from atalaia.api.common.audit_trail import AuditTrail
from atalaia.api.common.body_limits import PREDICTION, BodyLimits
from atalaia.api.common.edge import Edge, EdgeMiddleware, Headers
from atalaia.api.common.errors import install_error_handlers
from atalaia.api.common.fast_routes import FastRoute, ServiceApp, install_fast_routes
from atalaia.api.common.observability import HttpMetrics, RequestIds
from atalaia.errors import AuthenticationFailed
from atalaia.logging import REQUEST_ID
from atalaia.settings import Settings
from fixtures.api import SERVICES


class Recorder:
    """A step that writes down what it sees."""

    def __init__(self, name: str, seen: list[tuple[str, ...]]) -> None:
        self.name, self.seen = name, seen

    def begin(self, scope: Scope, headers: Headers, /) -> None:
        self.seen.append((self.name, "begin", scope["path"]))
        headers.append((f"x-{self.name}".encode(), b"1"))

    def end(self, _scope: Scope, route: str, status: int, _started: float, /) -> None:
        self.seen.append((self.name, "end", route, str(status)))


class Cold(Recorder):
    """A step of FastAPI's path alone, told of every refusal."""

    HOT = False

    def refused(self, _scope: Scope, route: str, /) -> None:
        self.seen.append((self.name, "refused", route))


class Echo(BaseModel):
    text: str


async def bound_id(scope: Scope, _body: bytes) -> bytes:
    """The request id the logs name while the route runs; 401 for name `locked`."""
    if scope["path_params"]["name"] == "locked":
        raise AuthenticationFailed("no token")
    return orjson.dumps({"request_id": REQUEST_ID.get()})


def serve(edge: Edge) -> TestClient:
    """An app with a hot route and a FastAPI route, both answering the bound id."""
    app = ServiceApp(edge)
    hot = FastRoute("/hot/{name}", bound_id, "Hot", (Echo,), (Echo,), "hot")
    install_fast_routes(app, [hot], "/api/v1")
    install_error_handlers(app)

    @app.post("/api/v1/slow/{name}")
    async def slow(name: str) -> dict[str, str | None]:
        if name == "locked":
            raise AuthenticationFailed("no token")
        return {"name": name, "request_id": REQUEST_ID.get()}

    return TestClient(app)


@pytest.mark.parametrize("service", SERVICES)
def test_the_edge_is_every_services_only_middleware(
    service: str, settings: Settings
) -> None:
    """A middleware added to an app is one its hot routes skip: make it a step."""
    app = SERVICES[service](settings)

    assert isinstance(app, ServiceApp)
    added: list[tuple[object, ...]] = [tuple(m) for m in app.user_middleware]
    assert added == [(EdgeMiddleware, (), {"edge": app.edge})]
    assert [type(step) for step in app.edge.steps] == [
        RequestIds,
        AuditTrail,
        HttpMetrics,
        BodyLimits,
    ]


@pytest.mark.parametrize("path", ["/api/v1/hot/a", "/api/v1/slow/a"])
def test_both_paths_run_every_step_in_order(path: str) -> None:
    seen: list[tuple[str, ...]] = []
    client = serve(Edge(Recorder("outer", seen), Recorder("inner", seen)))

    answer = client.post(path, content=b"{}")

    route = path.removesuffix("/a") + "/{name}"
    assert answer.status_code == 200
    assert answer.headers["x-outer"] == answer.headers["x-inner"] == "1"
    assert seen == [
        ("outer", "begin", path),
        ("inner", "begin", path),
        ("inner", "end", route, "200"),
        ("outer", "end", route, "200"),
    ]


def test_a_cold_step_is_left_out_of_the_hot_path_but_for_refusals() -> None:
    seen: list[tuple[str, ...]] = []
    client = serve(Edge(Recorder("all", seen), Cold("cold", seen)))

    answers = [
        client.post(path, content=b"{}")
        for path in ("/api/v1/hot/a", "/api/v1/hot/locked", "/api/v1/slow/locked")
    ]

    assert [a.status_code for a in answers] == [200, 401, 401]
    assert "x-cold" not in answers[0].headers
    hot, slow = "/api/v1/hot/{name}", "/api/v1/slow/{name}"
    assert seen == [
        ("all", "begin", "/api/v1/hot/a"),
        ("all", "end", hot, "200"),
        ("all", "begin", "/api/v1/hot/locked"),
        ("cold", "refused", hot),
        ("all", "end", hot, "401"),
        ("all", "begin", "/api/v1/slow/locked"),
        ("cold", "begin", "/api/v1/slow/locked"),
        ("cold", "refused", slow),
        ("cold", "end", slow, "401"),
        ("all", "end", slow, "401"),
    ]


@pytest.mark.parametrize("path", ["/api/v1/hot/a", "/api/v1/slow/a"])
def test_both_paths_name_the_request_in_logs_and_answer(path: str) -> None:
    client = serve(Edge(RequestIds()))

    given = client.post(path, content=b"{}", headers={"X-Request-ID": "r-7"})
    made = client.post(path, content=b"{}")

    assert given.headers["x-request-id"] == given.json()["request_id"] == "r-7"
    assert made.headers["x-request-id"] == made.json()["request_id"]


@pytest.mark.parametrize("path", ["/api/v1/hot/a", "/api/v1/slow/a"])
def test_both_paths_refuse_a_body_announced_too_long(path: str) -> None:
    registry = CollectorRegistry()
    client = serve(Edge(RequestIds(), HttpMetrics(registry), BodyLimits()))
    too_long = {"Content-Length": str(PREDICTION.size + 1)}

    answer = client.post(path, content=b"{}", headers=too_long)

    assert answer.status_code == 413
    assert answer.json()["error"] == "PayloadTooLarge"
    assert "x-request-id" in answer.headers
    route = "/api/v1/hot/{name}" if "hot" in path else "unmatched"
    counted = f'http_requests_total{{method="POST",route="{route}",status="413"}} 1.0'
    assert counted in generate_latest(registry).decode()
