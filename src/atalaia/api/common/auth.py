"""JWT bearer tokens and the role ladder.

viewer < data_scientist < ml_engineer < admin: each may do what those below may.

A token's header says who verifies it: HS256 tokens are atalaia's own (`atalaia
token create`, signed with the shared secret); RS256 and ES256 ones are the
OpenID Connect provider's, when one is configured (`api.common.oidc`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

import jwt

from atalaia.errors import AuthenticationFailed, PermissionDenied

if TYPE_CHECKING:
    from atalaia.api.common.oidc import OidcVerifier

ISSUER = "atalaia"
_CACHE_LIMIT = 100_000

_RULES: dict[type[jwt.InvalidTokenError], str] = {
    jwt.ExpiredSignatureError: "token_expired",
    jwt.ImmatureSignatureError: "token_not_yet_valid",
    jwt.InvalidIssuerError: "token_issuer",
    jwt.InvalidAudienceError: "token_audience",
    jwt.InvalidAlgorithmError: "token_algorithm",
    jwt.InvalidSignatureError: "token_signature",
    jwt.MissingRequiredClaimError: "token_claims",
}


def rule_of(error: jwt.InvalidTokenError) -> str:
    """The rule a token broke, named for the error body."""
    for cls in type(error).__mro__:
        if cls in _RULES:
            return _RULES[cls]
    return AuthenticationFailed.rule


class Role(IntEnum):
    """Each role may do everything the roles below it may."""

    VIEWER = 1
    DATA_SCIENTIST = 2
    ML_ENGINEER = 3
    ADMIN = 4

    @classmethod
    def parse(cls, name: str) -> Role:
        try:
            return cls[name.upper()]
        except KeyError:
            known = ", ".join(r.name.lower() for r in cls)
            raise ValueError(f"unknown role {name!r}; known: {known}") from None

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who calls, with which role; `groups` names the sensor groups the caller
    may read and act on (None: every series)."""

    subject: str
    role: Role
    groups: frozenset[str] | None = None

    def require(self, role: Role) -> None:
        if self.role < role:
            raise PermissionDenied(
                f"{self.subject!r} is {self.role.label}; "
                f"this needs {role.label} or above"
            )


ANONYMOUS_ADMIN = Principal("anonymous", Role.ADMIN)
# Told of each token verified (not of one served from the cache): the token,
# its principal and claims (the audit log's sign-ins).
VerifiedHook = Callable[[str, Principal, Mapping[str, object]], None]


class Authenticator:
    """Verifies bearer tokens; a verified token is cached until it expires."""

    def __init__(
        self,
        secret: str,
        *,
        algorithm: str = "HS256",
        enabled: bool = True,
        oidc: OidcVerifier | None = None,
    ):
        self.secret = secret
        self.algorithm = algorithm
        self.enabled = enabled
        self.oidc = oidc
        self._verified: dict[str, tuple[Principal, float]] = {}
        self.on_verified: VerifiedHook | None = None

    def issue(
        self,
        *,
        subject: str,
        role: Role,
        ttl_s: float,
        groups: frozenset[str] | None = None,
    ) -> str:
        now = int(time.time())
        claims: dict[str, object] = {
            "sub": subject,
            "role": role.label,
            "iss": ISSUER,
            "iat": now,
            "exp": now + int(ttl_s),
        }
        if groups is not None:
            claims["groups"] = sorted(groups)
        return jwt.encode(claims, self.secret, algorithm=self.algorithm)

    def authenticate(self, token: str | None, *, fetch_keys: bool = True) -> Principal:
        """The principal a bearer token names (anyone is admin with auth off).
        A provider's token signed with a key not held yet fetches its keys
        (`fetch_keys` False: refused as unknown, the provider never waited for)."""
        known = self.known(token)
        if known is not None:
            return known
        assert token is not None  # `known` refuses a missing one
        return self._verify(token, fetch_keys=fetch_keys)

    def known(self, token: str | None) -> Principal | None:
        """The principal of a token verified already (None: not yet, and
        `authenticate` may wait for the provider: off the event loop)."""
        if not self.enabled:
            return ANONYMOUS_ADMIN
        if not token:
            raise AuthenticationFailed(
                "missing bearer token (header Authorization: Bearer <token>)"
            )
        cached = self._verified.get(token)
        if cached is not None and cached[1] > time.time():
            return cached[0]
        return None

    def _verify(self, token: str, *, fetch_keys: bool) -> Principal:
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
            if algorithm == self.algorithm:
                principal, expires = self._verify_own(token)
            elif self.oidc is not None and algorithm in self.oidc.algorithms:
                principal, expires = self.oidc.verify(token, fetch_keys=fetch_keys)
            else:
                raise AuthenticationFailed(
                    f"token algorithm {algorithm!r} is not accepted; accepted: "
                    f"{self._accepted()}",
                    rule="token_algorithm",
                )
        except jwt.InvalidTokenError as exc:
            raise AuthenticationFailed(
                f"invalid token: {exc}", rule=rule_of(exc)
            ) from None
        if len(self._verified) >= _CACHE_LIMIT:
            self._verified.clear()
        self._verified[token] = (principal, expires)
        if self.on_verified is not None:  # verified above: its claims are sound
            claims = jwt.decode(token, options={"verify_signature": False})
            self.on_verified(token, principal, claims)
        return principal

    def _verify_own(self, token: str) -> tuple[Principal, float]:
        """An atalaia token, signed with the shared secret."""
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=[self.algorithm],
                issuer=ISSUER,
                options={"require": ["exp", "sub", "role"]},
            )
            principal = Principal(
                str(claims["sub"]),
                Role.parse(str(claims["role"])),
                parse_groups(claims.get("groups")),
            )
        except jwt.InvalidTokenError as exc:
            raise AuthenticationFailed(
                f"invalid token: {exc}", rule=rule_of(exc)
            ) from None
        except ValueError as exc:
            raise AuthenticationFailed(f"invalid token: {exc}") from None
        return principal, float(claims["exp"])

    def _accepted(self) -> str:
        own = f"{self.algorithm} (atalaia tokens)"
        if self.oidc is None:
            return own
        return (
            f"{own}, {', '.join(self.oidc.algorithms)} (tokens of {self.oidc.issuer})"
        )


def parse_groups(claim: object) -> frozenset[str] | None:
    """The groups a token's claim names (absent: every series)."""
    if claim is None:
        return None
    if not isinstance(claim, list) or not all(isinstance(g, str) for g in claim):
        raise ValueError("the groups claim must be a list of strings")
    return frozenset(claim)
