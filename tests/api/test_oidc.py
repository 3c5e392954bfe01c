"""Tokens of an OpenID Connect provider (a real one, served by the test),
verified with its published keys beside atalaia's own HS256 tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc.jwk import RSAKey
from pydantic import ValidationError

from atalaia.api.common import oidc
from atalaia.api.common.auth import Authenticator, Principal, Role
from atalaia.api.common.resources import authenticator_for
from atalaia.embedded import create_embedded_app
from atalaia.errors import AuthenticationFailed, DependencyUnavailable, PermissionDenied
from atalaia.settings import Settings
from atalaia.tls import ensure_self_signed
from fixtures.api import SettingsFactory, wait_for
from fixtures.oidc_provider import (
    AUDIENCE,
    CLIENT_ID,
    USERS,
    OidcProvider,
    code_flow,
)


@pytest.fixture
def oidc_settings(
    settings: Settings, oidc_provider: OidcProvider, tmp_path: Path
) -> Settings:
    return settings.model_copy(
        update={
            "oidc_issuer": oidc_provider.issuer,
            "oidc_audience": AUDIENCE,
            "oidc_client_id": CLIENT_ID,
            "oidc_jwks_refresh_s": 0.0,
            "oidc_timeout_s": 1.0,
            "home": tmp_path / "home",
        }
    )


@pytest.fixture
def authenticator(oidc_settings: Settings) -> Authenticator:
    return authenticator_for(oidc_settings)


@pytest.fixture
def client(oidc_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_embedded_app(oidc_settings)) as test_client:
        yield test_client


def _segment(part: dict[str, Any]) -> bytes:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=")


def _unsigned(provider: OidcProvider, **header: Any) -> str:
    claims = provider.access_claims(provider.users["rui"])
    return (_segment(header) + b"." + _segment(claims) + b".").decode()


def _hs256_with_public_key(provider: OidcProvider) -> str:
    """The classic confusion: HS256 keyed with the provider's public key."""
    key = provider.keys[0]
    assert isinstance(key.key, RSAKey)
    secret = key.key.as_pem(private=False)
    signed = _segment({"alg": "HS256", "kid": key.kid, "typ": "JWT"}) + b"."
    signed += _segment(provider.access_claims(provider.users["rui"]))
    mac = hmac.new(secret, signed, hashlib.sha256).digest()
    return (signed + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")).decode()


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_a_provider_token_names_the_highest_role_and_the_groups(
    authenticator: Authenticator, oidc_provider: OidcProvider, alg: str
) -> None:
    oidc_provider.use(alg)

    principal = authenticator.authenticate(oidc_provider.token_for("ana"))

    assert principal == Principal("ana", Role.ML_ENGINEER, frozenset({"line_a"}))


def test_the_access_token_of_the_code_flow_is_accepted_through_the_api(
    client: TestClient, oidc_provider: OidcProvider
) -> None:
    redirect = "http://127.0.0.1:1/console/"
    oidc_provider.client.redirect_uris.append(redirect)
    tokens = code_flow(oidc_provider, redirect, "rui")

    who = client.get(
        "/api/v1/auth/whoami",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )

    assert who.status_code == 200, who.text
    assert who.json()["subject"] == "rui"
    assert who.json()["role"] == "admin"


def test_atalaia_tokens_still_work_beside_the_provider(
    authenticator: Authenticator,
) -> None:
    own = authenticator.issue(subject="sensor-gw", role=Role.DATA_SCIENTIST, ttl_s=60)

    assert authenticator.authenticate(own).role == Role.DATA_SCIENTIST


def _refusals(provider: OidcProvider) -> dict[str, tuple[str, str]]:
    """name → (token, the rule it breaks)."""
    now = int(time.time())
    token = provider.token_for
    return {
        "wrong issuer": (token("rui", iss="https://elsewhere.example"), "token_issuer"),
        "wrong audience": (token("rui", aud="another-api"), "token_audience"),
        "expired": (token("rui", iat=now - 600, exp=now - 300), "token_expired"),
        "not yet valid": (token("rui", nbf=now + 600), "token_not_yet_valid"),
        "no expiry": (token("rui", exp=None), "token_claims"),
        "unknown kid": (
            provider.sign(
                provider.access_claims(provider.users["rui"]), header={"kid": "made-up"}
            ),
            "token_signing_key",
        ),  # fmt: skip
        "alg none": (_unsigned(provider, alg="none", kid="x"), "token_algorithm"),
        "HS256 keyed with the public key": (
            _hs256_with_public_key(provider),
            "token_signature",
        ),
        "RS256 token naming the ES256 key": (
            provider.sign(
                provider.access_claims(provider.users["rui"]),
                key=provider.keys[0],
                header={"kid": provider.keys[1].kid},
            ),
            "token_algorithm",
        ),  # fmt: skip
    }


@pytest.mark.parametrize(
    "case",
    [
        "wrong issuer", "wrong audience", "expired", "not yet valid", "no expiry",
        "unknown kid", "alg none", "HS256 keyed with the public key",
        "RS256 token naming the ES256 key",
    ],
)  # fmt: skip
def test_a_bad_token_is_refused_naming_the_rule(
    authenticator: Authenticator, oidc_provider: OidcProvider, case: str
) -> None:
    token, rule = _refusals(oidc_provider)[case]

    with pytest.raises(AuthenticationFailed) as refused:
        authenticator.authenticate(token)

    assert refused.value.rule == rule, refused.value.detail


def test_a_refusal_is_a_401_with_its_reason(
    client: TestClient, oidc_provider: OidcProvider
) -> None:
    token = oidc_provider.token_for("rui", aud="another-api")

    answer = client.get(
        "/api/v1/auth/whoami", headers={"Authorization": f"Bearer {token}"}
    )

    assert answer.status_code == 401
    assert answer.json()["rule"] == "token_audience"
    assert "audience" in answer.json()["detail"].lower()


def test_a_rotated_key_is_picked_up_without_a_restart(
    authenticator: Authenticator, oidc_provider: OidcProvider
) -> None:
    authenticator.authenticate(oidc_provider.token_for("rui"))
    fetched = oidc_provider.jwks_requests

    oidc_provider.rotate("ES256", drop_old=True)
    principal = authenticator.authenticate(oidc_provider.token_for("ana"))

    assert principal.subject == "ana"
    assert oidc_provider.jwks_requests == fetched + 1


def test_made_up_key_ids_fetch_the_keys_at_most_once_per_interval(
    oidc_settings: Settings, oidc_provider: OidcProvider
) -> None:
    limited = authenticator_for(
        oidc_settings.model_copy(update={"oidc_jwks_refresh_s": 60.0})
    )
    limited.authenticate(oidc_provider.token_for("rui"))
    fetched = oidc_provider.jwks_requests
    claims = oidc_provider.access_claims(oidc_provider.users["rui"])

    for _ in range(50):
        bogus = oidc_provider.sign(claims, header={"kid": secrets.token_hex(6)})
        with pytest.raises(AuthenticationFailed, match="is not among those"):
            limited.authenticate(bogus)

    assert oidc_provider.jwks_requests == fetched


def test_with_the_provider_down_known_keys_verify_and_new_ones_are_503(
    authenticator: Authenticator, oidc_provider: OidcProvider
) -> None:
    assert oidc_provider.proxy is not None
    verified = oidc_provider.token_for("ana")
    authenticator.authenticate(verified)
    oidc_provider.proxy.cut()

    assert authenticator.authenticate(verified).subject == "ana"  # cached
    fresh = oidc_provider.token_for("rui")  # a new token, a key already held
    assert authenticator.authenticate(fresh).subject == "rui"
    oidc_provider.rotate("RS256")  # a key the API cannot fetch
    with pytest.raises(DependencyUnavailable, match="OpenID Connect provider"):
        authenticator.authenticate(oidc_provider.token_for("rui"))

    oidc_provider.proxy.restore()
    assert authenticator.authenticate(oidc_provider.token_for("rui")).subject == "rui"


def test_a_provider_that_never_answers_is_unavailable_not_a_hang(
    authenticator: Authenticator, oidc_provider: OidcProvider
) -> None:
    assert oidc_provider.proxy is not None
    authenticator.authenticate(oidc_provider.token_for("rui"))
    oidc_provider.proxy.black_hole()
    oidc_provider.rotate("ES256")

    with pytest.raises(DependencyUnavailable):  # after oidc_timeout_s (1 s)
        authenticator.authenticate(oidc_provider.token_for("rui"))

    oidc_provider.proxy.restore()


def test_a_fetch_of_the_keys_holds_up_no_other_prediction(
    oidc_settings: Settings, oidc_provider: OidcProvider
) -> None:
    """While the key set is fetched for a new key id (the provider silent,
    longer than the test), tokens of a held key and HS256 ones are answered;
    every request waiting for the new key shares the one fetch."""
    proxy = oidc_provider.proxy
    assert proxy is not None
    settings = oidc_settings.model_copy(update={"oidc_timeout_s": 60.0})
    held_key = oidc_provider.token_for("leo")  # its key is fetched below
    own = authenticator_for(settings).issue(
        subject="sensor-7", role=Role.VIEWER, ttl_s=600
    )
    path = "/api/v1/predict/sensor_001_radial"
    reading = {"timestamp": 1_733_700_000, "value": 0.3}
    with (
        TestClient(create_embedded_app(settings)) as client,
        ThreadPoolExecutor(4) as pool,
    ):

        def predict(token: str) -> int:
            headers = {"Authorization": f"Bearer {token}"}
            status: int = client.post(path, json=reading, headers=headers).status_code
            return status

        assert predict(oidc_provider.token_for("rui")) == 200  # the keys fetched
        fetched, connections = oidc_provider.jwks_requests, proxy.connections
        proxy.black_hole()
        oidc_provider.rotate("ES256")
        new_key = [oidc_provider.token_for(u) for u in ("rui", "leo", "rui", "leo")]
        waiting = [pool.submit(predict, token) for token in new_key]
        wait_for(lambda: proxy.connections > connections or None)

        meanwhile = [predict(held_key), predict(own)]
        fetch_hung = not any(w.done() for w in waiting)
        proxy.restore()
        after = [w.result() for w in waiting]

    assert meanwhile == [200, 200]
    assert fetch_hung  # they were answered first
    assert after == [200] * 4
    assert oidc_provider.jwks_requests == fetched + 1


def test_held_keys_verify_while_they_are_renewed(
    oidc_settings: Settings,
    oidc_provider: OidcProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy = oidc_provider.proxy
    assert proxy is not None
    monkeypatch.setattr(oidc, "KEYS_MAX_AGE_S", 0.0)  # every key held is old
    settings = oidc_settings.model_copy(update={"oidc_timeout_s": 60.0})
    authenticator = authenticator_for(settings)
    authenticator.authenticate(oidc_provider.token_for("rui"))
    held_key, connections = oidc_provider.token_for("leo"), proxy.connections
    proxy.black_hole()
    oidc_provider.rotate("ES256")
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(
            authenticator.authenticate, oidc_provider.token_for("rui")
        )
        wait_for(lambda: proxy.connections > connections or None)

        meanwhile = authenticator.authenticate(held_key)
        fetch_hung = not waiting.done()
        proxy.restore()

        assert waiting.result().subject == "rui"
    assert meanwhile.subject == "leo"
    assert fetch_hung


def test_a_token_verified_without_fetching_never_reaches_the_provider(
    authenticator: Authenticator, oidc_provider: OidcProvider
) -> None:
    authenticator.authenticate(oidc_provider.token_for("rui"))
    fetched = oidc_provider.jwks_requests
    oidc_provider.rotate("ES256")

    with pytest.raises(AuthenticationFailed, match="is not among those"):
        authenticator.authenticate(oidc_provider.token_for("rui"), fetch_keys=False)

    assert oidc_provider.jwks_requests == fetched


def test_a_provider_never_reached_is_a_503_not_a_401(
    client: TestClient, oidc_provider: OidcProvider
) -> None:
    assert oidc_provider.proxy is not None
    oidc_provider.proxy.cut()

    answer = client.get(
        "/api/v1/auth/whoami",
        headers={"Authorization": f"Bearer {oidc_provider.token_for('rui')}"},
    )

    assert answer.status_code == 503
    assert answer.json()["rule"] == "dependency_available"
    assert client.get("/api/v1/auth/config").json()["methods"] == ["token"]


def test_a_provider_behind_a_private_ca_is_trusted_through_the_ca_file(
    settings: Settings, tmp_path: Path
) -> None:
    """A plant's provider with a certificate of its own CA: verified against
    ATALAIA_TLS_CA_FILE, never trusted without it."""
    tls, _ = ensure_self_signed(tmp_path / "provider")
    provider = OidcProvider(audience=AUDIENCE, client_id=CLIENT_ID, users=USERS)
    with provider.serve(tls):
        base = settings.model_copy(
            update={"oidc_issuer": provider.issuer, "oidc_audience": AUDIENCE,
                    "home": tmp_path / "home"}
        )  # fmt: skip
        token = provider.token_for("rui")
        trusting = authenticator_for(base.model_copy(update={"tls_ca_file": tls.cert}))

        principal = trusting.authenticate(token)
        with pytest.raises(DependencyUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            authenticator_for(base).authenticate(token)

    assert principal.subject == "rui"


@pytest.mark.parametrize(
    ("user", "detail"),
    [("eva", "names no atalaia role in 'roles' (staff)"),
     ("ivo", "has no role claim 'roles'")],
)  # fmt: skip
def test_a_token_without_an_atalaia_role_is_403(
    authenticator: Authenticator, oidc_provider: OidcProvider, user: str, detail: str
) -> None:
    with pytest.raises(PermissionDenied, match=re.escape(detail)) as refused:
        authenticator.authenticate(oidc_provider.token_for(user))

    assert refused.value.rule == "token_role"


def test_roles_and_groups_are_read_where_the_settings_say(
    oidc_settings: Settings, oidc_provider: OidcProvider
) -> None:
    nested = authenticator_for(
        oidc_settings.model_copy(
            update={"oidc_role_claim": "realm_access.roles", "oidc_groups_claim": ""}
        )
    )
    token = oidc_provider.token_for(
        "ivo", realm_access={"roles": ["offline_access", "data_scientist"]}
    )

    principal = nested.authenticate(token)

    assert principal == Principal("ivo", Role.DATA_SCIENTIST, None)


def test_the_sign_in_config_advertises_the_provider(
    client: TestClient, oidc_provider: OidcProvider
) -> None:
    body = client.get("/api/v1/auth/config").json()

    assert body == {
        "auth_enabled": True,
        "methods": ["token", "oidc"],
        "oidc": {
            "name": "127.0.0.1:" + oidc_provider.issuer.rsplit(":", 1)[1],
            "issuer": oidc_provider.issuer,
            "authorization_endpoint": f"{oidc_provider.issuer}/authorize",
            "token_endpoint": f"{oidc_provider.issuer}/token",
            "client_id": CLIENT_ID,
            "scopes": "openid profile email",
        },
    }


def test_the_console_may_call_the_providers_token_endpoint(
    client: TestClient, oidc_provider: OidcProvider
) -> None:
    policy = client.get("/console/").headers["content-security-policy"]

    assert f"connect-src 'self' {oidc_provider.issuer};" in policy


def test_an_issuer_without_an_audience_is_refused(
    make_settings: SettingsFactory,
) -> None:
    with pytest.raises(ValidationError, match="ATALAIA_OIDC_AUDIENCE must be set"):
        make_settings("sqlite://", oidc_issuer="https://id.example")
