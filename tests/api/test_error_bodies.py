"""Every error body has one shape, `error`, `rule`, `detail`, whoever answers it."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from httpx import Response

from atalaia import errors
from atalaia.api.common.errors import error_response
from fixtures.api import Headers, train

SHAPE = {"error", "rule", "detail"}
SNAKE = re.compile(r"[a-z]+(_[a-z]+)*")


def _every_error_class() -> list[type[errors.AtalaiaError]]:
    found, todo = [], [errors.AtalaiaError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def assert_error_shape(response: Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == SHAPE, body
    assert SNAKE.fullmatch(body["rule"]), body
    return body


@pytest.mark.parametrize("cls", _every_error_class(), ids=lambda c: c.__name__)
def test_every_error_class_names_its_condition(cls: type[errors.AtalaiaError]) -> None:
    assert SNAKE.fullmatch(cls.rule)
    assert cls is errors.AtalaiaError or cls.rule != errors.AtalaiaError.rule


def test_a_rule_can_be_given_per_error() -> None:
    assert errors.Conflict("busy", rule="job_running").rule == "job_running"


def test_a_dependency_error_has_the_shape() -> None:
    response = error_response(errors.DependencyUnavailable("database"))

    assert response.status_code == 503
    body = orjson.loads(response.body)
    assert body == {
        "error": "DependencyUnavailable",
        "rule": "dependency_available",
        "detail": "database is unavailable",
    }


@pytest.mark.parametrize(
    ("method", "path", "status", "rule"),
    [
        ("GET", "/api/v1/training/a/b", 404, "route_exists"),
        ("POST", "/api/v1/training/a%2Fb", 404, "route_exists"),
        ("GET", "/api/v1/nothing-here", 404, "route_exists"),
        ("GET", "/api/v1/training/sensor_001_radial", 405, "method_allowed"),
        ("GET", "/api/v1/models/s/versions/1/promote", 405, "method_allowed"),
        ("GET", "/api/v1/predict/sensor_001_radial", 405, "method_allowed"),
        ("GET", "/api/v1/training/jobs/nope", 404, "job_exists"),
        ("GET", "/api/v1/models/s/versions/1", 404, "version_exists"),
        ("POST", "/api/v1/models/s/rollback", 409, "rollback_target_exists"),
    ],
)
def test_router_and_domain_errors_have_the_shape(
    client: TestClient, admin: Headers, method: str, path: str, status: int, rule: str
) -> None:
    response = client.request(method, path, headers=admin)

    assert assert_error_shape(response, status)["rule"] == rule


def test_method_not_allowed_names_the_allowed_methods(
    client: TestClient, admin: Headers
) -> None:
    response = client.get("/api/v1/training/sensor_001_radial", headers=admin)

    assert response.headers["allow"] == "POST"
    assert "allowed: POST" in response.json()["detail"]


def test_authentication_errors_have_the_shape(
    client: TestClient, viewer: Headers
) -> None:
    anonymous = client.get("/api/v1/models")
    too_low = client.post("/api/v1/training/s", json={}, headers=viewer)

    assert assert_error_shape(anonymous, 401)["rule"] == "bearer_token_valid"
    assert assert_error_shape(too_low, 403)["rule"] == "role_allows"


def test_validation_errors_have_the_shape(client: TestClient, admin: Headers) -> None:
    response = client.post("/api/v1/training/s", json={"nope": 1}, headers=admin)

    assert assert_error_shape(response, 422)["rule"] == "request_schema"


def test_state_errors_have_the_shape(client: TestClient, admin: Headers) -> None:
    version = train(client, "sensor_001_radial", admin)["model_version"]
    promote = f"/api/v1/models/sensor_001_radial/versions/{version}/promote"

    canary = client.post(promote, json={"strategy": "canary"}, headers=admin)
    assert assert_error_shape(canary, 409)["rule"] == "rollout_beside_production"
    assert client.post(promote, json={}, headers=admin).status_code == 200
    again = client.post(promote, json={}, headers=admin)
    assert assert_error_shape(again, 409)["rule"] == "version_promotable"
