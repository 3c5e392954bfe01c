"""Who the caller is: the console shows the role and offers only what it may do."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter
from pydantic import BaseModel, Field

from atalaia.api.common.auth import Role
from atalaia.api.common.deps import ResourcesDep, Viewer
from atalaia.api.common.oidc import OidcVerifier
from atalaia.core.access import SeriesScope
from atalaia.settings import Settings

router = APIRouter(prefix="/auth", tags=["auth"])


class WhoAmI(BaseModel):
    subject: str
    role: str
    roles: list[str] = Field(description="The role and every one below it")
    auth_enabled: bool
    groups: list[str] | None = Field(
        None,
        description="The sensor groups the token is limited to; null: it covers "
        "every series. Fleet-wide routes refuse a limited token (403 "
        "`series_access`), and lists show it its groups' series only.",
    )
    unknown_groups: list[str] = Field(
        default_factory=list,
        description="Those of `groups` the platform does not configure: they "
        "cover nothing.",
    )


class ProviderSignIn(BaseModel):
    """How the console signs in through the OpenID Connect provider: the
    authorization code flow with PKCE, as the public client `client_id`."""

    name: str
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    client_id: str
    scopes: str


class AuthConfig(BaseModel):
    auth_enabled: bool
    # how to sign in: "token" (a pasted bearer token), "oidc" (the provider)
    methods: list[str]
    oidc: ProviderSignIn | None = None


@router.get("/config", response_model=AuthConfig, response_model_exclude_none=True)
def auth_config(resources: ResourcesDep) -> AuthConfig:
    """How to sign in; needs no token (the console asks before signing in).
    The provider is offered once its discovery document could be read."""
    if not resources.settings.auth_enabled:
        return AuthConfig(auth_enabled=False, methods=[])
    provider = _provider_sign_in(resources.settings, resources.authenticator.oidc)
    methods = ["token", "oidc"] if provider else ["token"]
    return AuthConfig(auth_enabled=True, methods=methods, oidc=provider)


def _provider_sign_in(
    settings: Settings, verifier: OidcVerifier | None
) -> ProviderSignIn | None:
    if verifier is None or not settings.oidc_client_id:
        return None
    endpoints = verifier.endpoints()
    if endpoints is None:
        return None
    return ProviderSignIn(
        name=settings.oidc_provider_name or urlsplit(endpoints.issuer).netloc,
        issuer=endpoints.issuer,
        authorization_endpoint=endpoints.authorization_endpoint,
        token_endpoint=endpoints.token_endpoint,
        client_id=settings.oidc_client_id,
        scopes=settings.oidc_scopes,
    )


@router.get("/whoami", response_model=WhoAmI)
def whoami(principal: Viewer, resources: ResourcesDep) -> WhoAmI:
    """The token's subject, role and sensor groups (auth off: an anonymous admin)."""
    return WhoAmI(
        subject=principal.subject,
        role=principal.role.label,
        roles=[role.label for role in Role if role <= principal.role],
        auth_enabled=resources.settings.auth_enabled,
        **_groups(resources.access.scope(principal.groups)),
    )


def _groups(scope: SeriesScope | None) -> dict[str, list[str]]:
    if scope is None:
        return {}
    return {"groups": sorted(scope.groups), "unknown_groups": sorted(scope.unknown)}
