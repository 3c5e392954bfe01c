"""Every route checks the caller's token and role."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient

from atalaia.api.common.auth import Authenticator, Role
from atalaia.api.common.resources import authenticator_for
from atalaia.embedded import create_embedded_app
from atalaia.errors import AuthenticationFailed
from atalaia.settings import Settings
from fixtures.api import Headers, SettingsFactory, bearer

Route = tuple[str, str, dict[str, float] | None]

PREDICT: Route = ("POST", "/api/v1/predict/s1", {"timestamp": 1.7e9, "value": 1.0})
TRAIN: Route = ("POST", "/api/v1/training/s1", {"window_hours": 24})
PROMOTE: Route = ("POST", "/api/v1/models/s1/versions/1/promote", {})
RELOAD: Route = ("POST", "/api/v1/admin/reload", None)


def _call(client: TestClient, route: Route, headers: Headers) -> int:
    method, path, body = route
    status: int = client.request(method, path, json=body, headers=headers).status_code
    return status


class TestAuthentication:
    @pytest.mark.parametrize("route", [PREDICT, TRAIN, PROMOTE, RELOAD])
    def test_no_token_is_401(self, client: TestClient, route: Route) -> None:
        assert _call(client, route, {}) == 401

    def test_a_token_signed_with_another_secret_is_401(
        self, client: TestClient
    ) -> None:
        forged = Authenticator("another-secret-" * 4).issue(
            subject="eve", role=Role.ADMIN, ttl_s=60
        )

        assert _call(client, PREDICT, {"Authorization": f"Bearer {forged}"}) == 401

    def test_an_expired_token_is_401(
        self, client: TestClient, settings: Settings
    ) -> None:
        expired = authenticator_for(settings).issue(
            subject="x", role=Role.ADMIN, ttl_s=-10
        )

        assert _call(client, PREDICT, {"Authorization": f"Bearer {expired}"}) == 401

    def test_probes_need_no_token(self, client: TestClient) -> None:
        for path in (
            "/health",
            "/ready",
            "/healthcheck",
            "/metrics",
            "/api/v1/liveness",
        ):
            assert client.get(path).status_code == 200, path


class TestRoles:
    @pytest.mark.parametrize(
        ("role", "route", "allowed"),
        [
            (Role.VIEWER, PREDICT, True),
            (Role.VIEWER, TRAIN, False),
            (Role.VIEWER, PROMOTE, False),
            (Role.DATA_SCIENTIST, TRAIN, True),
            (Role.DATA_SCIENTIST, PROMOTE, False),
            (Role.ML_ENGINEER, PROMOTE, True),
            (Role.ML_ENGINEER, RELOAD, False),
            (Role.ADMIN, RELOAD, True),
        ],
    )
    def test_role_ladder(
        self,
        client: TestClient,
        settings: Settings,
        role: Role,
        route: Route,
        allowed: bool,
    ) -> None:
        status = _call(client, route, bearer(settings, role))

        assert (status != 403) is allowed
        assert status != 401


class TestDisabledAuth:
    def test_every_caller_is_admin_when_auth_is_off(
        self, make_settings: SettingsFactory, tmp_path: Path
    ) -> None:
        settings = make_settings(f"sqlite:///{tmp_path}/open.db", auth_enabled=False)

        with TestClient(create_embedded_app(settings)) as client:
            assert _call(client, RELOAD, {}) == 200


class TestScheme:
    @pytest.mark.parametrize("header", ["Basic dXNlcjpwdw==", "Bearer", "token-only"])
    def test_a_header_that_is_not_a_bearer_token_is_401(
        self, client: TestClient, header: str
    ) -> None:
        assert _call(client, PREDICT, {"Authorization": header}) == 401

    def test_openapi_declares_the_bearer_scheme(self, client: TestClient) -> None:
        schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]

        assert schemes["HTTPBearer"]["scheme"] == "bearer"


class TestGroupsClaim:
    def test_a_token_carries_its_groups(self) -> None:
        authenticator = Authenticator("s" * 48)
        token = authenticator.issue(
            subject="ana", role=Role.VIEWER, ttl_s=60, groups=frozenset({"porto"})
        )

        assert authenticator.authenticate(token).groups == frozenset({"porto"})

    def test_a_token_without_groups_reads_every_series(self) -> None:
        authenticator = Authenticator("s" * 48)
        token = authenticator.issue(subject="ana", role=Role.VIEWER, ttl_s=60)

        assert authenticator.authenticate(token).groups is None

    def test_a_groups_claim_that_is_not_a_list_of_names_is_refused(self) -> None:
        token = jwt.encode(
            {"sub": "x", "role": "viewer", "iss": "atalaia", "exp": 2e9, "groups": 3},
            "s" * 48,
        )

        with pytest.raises(AuthenticationFailed, match="groups claim"):
            Authenticator("s" * 48).authenticate(token)
