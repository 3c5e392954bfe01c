"""Who the caller is: the console shows the role and offers only what it may do."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from atalaia.api.common.auth import Role
from atalaia.api.common.deps import ResourcesDep, Viewer
from atalaia.core.access import SeriesScope

router = APIRouter(prefix="/auth", tags=["auth"])


class WhoAmI(BaseModel):
    subject: str
    role: str
    roles: list[str]  # the role and every one below it
    auth_enabled: bool
    # The sensor groups the token is limited to (null: every series), and
    # those of them the platform does not configure (they cover nothing).
    groups: list[str] | None = None
    unknown_groups: list[str] = []


class AuthConfig(BaseModel):
    auth_enabled: bool
    methods: list[str]  # how to sign in: "token" (a bearer token)


@router.get("/config", response_model=AuthConfig)
def auth_config(resources: ResourcesDep) -> AuthConfig:
    """How to sign in; needs no token (the console asks before signing in)."""
    enabled = resources.settings.auth_enabled
    return AuthConfig(auth_enabled=enabled, methods=["token"] if enabled else [])


@router.get("/whoami", response_model=WhoAmI)
def whoami(principal: Viewer, resources: ResourcesDep) -> WhoAmI:
    """The token's subject and role (with auth off: an anonymous admin)."""
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
