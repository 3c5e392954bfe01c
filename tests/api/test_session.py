"""GET /auth/whoami: the console learns the caller's role and sensor groups
from the server."""

from __future__ import annotations

from fastapi.testclient import TestClient

from fixtures.api import Headers


def test_whoami_names_the_role_and_those_below(
    client: TestClient, engineer: Headers
) -> None:
    body = client.get("/api/v1/auth/whoami", headers=engineer).json()

    assert body["role"] == "ml_engineer"
    assert body["roles"] == ["viewer", "data_scientist", "ml_engineer"]
    assert body["auth_enabled"] is True


def test_the_document_says_what_the_groups_of_whoami_mean(
    client: TestClient,
) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    fields = schemas["WhoAmI"]["properties"]

    assert fields["groups"]["anyOf"] == [
        {"type": "array", "items": {"type": "string"}},
        {"type": "null"},
    ]
    assert "null: it covers every series" in fields["groups"]["description"]
    assert "series_access" in fields["groups"]["description"]
    assert "cover nothing" in fields["unknown_groups"]["description"]


def test_whoami_without_a_token_is_401(client: TestClient) -> None:
    assert client.get("/api/v1/auth/whoami").status_code == 401


def test_the_sign_in_config_needs_no_token(client: TestClient) -> None:
    body = client.get("/api/v1/auth/config").json()

    assert body == {"auth_enabled": True, "methods": ["token"]}
