"""Tokens of an OpenID Connect provider, verified with the keys it publishes.

The provider's discovery document (`{issuer}/.well-known/openid-configuration`)
names its endpoints and its key set (`jwks_uri`). Keys are kept by key id
(`kid`); a token naming a key not seen yet fetches the set again, at most once
per `refresh_s`, so a flood of made-up key ids costs the provider one request
per interval, and the tokens that wait for a fetch under way share its outcome
(one fetch). While the provider is down, or a fetch is under way, the keys
already fetched keep verifying; a token that needs the provider is answered
503, never 401. A fetch blocks its caller's thread for up to `timeout_s`: the
event loop verifies a new token on a worker thread (`deps.authorize`).
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt

from atalaia.api.common.auth import Principal, Role, parse_groups, rule_of
from atalaia.errors import AuthenticationFailed, DependencyUnavailable, PermissionDenied

# Asymmetric only: never `none`, never an HS* key taken from the provider's set.
ALGORITHMS = ("RS256", "ES256")
PROVIDER = "the OpenID Connect provider"
# The key set is fetched again when older than this (a revoked key stops
# verifying), kept as it is while the provider cannot be reached.
KEYS_MAX_AGE_S = 3600.0
JsonObject = dict[str, Any]
GetJson = Callable[[str], JsonObject]  # a URL's JSON object, or DependencyUnavailable


@dataclass(frozen=True, slots=True)
class ProviderEndpoints:
    """What the provider's discovery document says."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


@dataclass(frozen=True, slots=True)
class ClaimMapping:
    """Where a token names its role(s) and sensor groups: a claim, or a dotted
    path into nested ones (`realm_access.roles`); no groups claim: every series."""

    role_claim: str = "roles"
    groups_claim: str = "groups"

    def principal(self, claims: Mapping[str, Any]) -> Principal:
        subject = str(claims["sub"])
        try:
            groups = parse_groups(_claim(claims, self.groups_claim))
        except ValueError as exc:
            raise AuthenticationFailed(
                f"invalid token: {exc} ({self.groups_claim!r})", rule="token_claims"
            ) from None
        return Principal(subject, self._role(subject, claims), groups)

    def _role(self, subject: str, claims: Mapping[str, Any]) -> Role:
        """The highest atalaia role the claim names (`ml-engineer` is ml_engineer)."""
        value = _claim(claims, self.role_claim)
        names = [value] if isinstance(value, str) else value
        known = ", ".join(role.label for role in Role)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise PermissionDenied(
                f"the token of {subject!r} has no role claim {self.role_claim!r} "
                f"(a role, or a list of them: {known})",
                rule="token_role",
            )
        roles = [Role[n.upper().replace("-", "_")] for n in names if _is_role(n)]
        if not roles:
            raise PermissionDenied(
                f"the token of {subject!r} names no atalaia role in "
                f"{self.role_claim!r} ({', '.join(names[:10]) or 'none'}); "
                f"known: {known}",
                rule="token_role",
            )
        return max(roles)


def _is_role(name: str) -> bool:
    return name.upper().replace("-", "_") in Role.__members__


def _claim(claims: Mapping[str, Any], path: str) -> object:
    """The claim named `path` (a URL-like name is taken whole), else the one
    its dots lead to; None when absent."""
    if not path or path in claims:
        return claims.get(path) if path else None
    node: object = claims
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


class OidcVerifier:
    """Verifies tokens `issuer` signed for `audience`; thread-safe."""

    algorithms = ALGORITHMS

    def __init__(
        self,
        issuer: str,
        audience: str,
        *,
        claims: ClaimMapping,
        leeway_s: float = 30.0,
        refresh_s: float = 60.0,
        timeout_s: float = 3.0,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.claims = claims
        self.leeway_s = leeway_s
        self.refresh_s = refresh_s
        self.timeout_s = timeout_s
        self.tls_verify = verify  # the provider's certificate (a plant's own CA)
        self._lock = threading.Lock()
        self._endpoints: ProviderEndpoints | None = None
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = -KEYS_MAX_AGE_S  # monotonic time of the key set
        self._tried_at: float | None = None  # of the last contact with the provider
        self._tries = 0  # contacts with the provider ended so far
        self._failure = ""  # why the last one failed ("": it did not)

    def verify(self, token: str, *, fetch_keys: bool = True) -> tuple[Principal, float]:
        """The principal of a token of this provider, and when it expires
        (`fetch_keys` False: with the keys held only, never waiting)."""
        header = jwt.get_unverified_header(token)
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
        if issuer != self.issuer:  # checked first: another's token costs no fetch
            raise AuthenticationFailed(
                f"token issuer {str(issuer)[:120]!r} is not {self.issuer!r}",
                rule="token_issuer",
            )
        key = self._key(header.get("kid"), fetch=fetch_keys)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[str(header.get("alg"))],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.InvalidTokenError as exc:
            raise AuthenticationFailed(
                f"invalid token of {self.issuer}: {exc}", rule=rule_of(exc)
            ) from None
        return self.claims.principal(claims), float(claims["exp"])

    def endpoints(self) -> ProviderEndpoints | None:
        """The provider's endpoints; None while it cannot be reached."""
        with self._lock:
            if self._endpoints is None:
                try:
                    self._refresh()
                except DependencyUnavailable:
                    return None
            return self._endpoints

    def browser_origins(self) -> list[str]:
        """Origins the console's browser calls (the token endpoint's, once known;
        the issuer's until then)."""
        found = self._endpoints
        urls = {self.issuer, found.token_endpoint} if found else {self.issuer}
        return sorted({_origin(url) for url in urls})

    def _key(self, kid: object, *, fetch: bool) -> jwt.PyJWK:
        if not isinstance(kid, str):
            raise AuthenticationFailed(
                f"a token of {self.issuer} must name its signing key (header kid)",
                rule="token_signing_key",
            )
        key = self._keys.get(kid)  # no lock: a fetch never holds up held keys
        if fetch and key is None:
            key = self._awaited_key(kid)
        elif fetch and time.monotonic() - self._fetched_at > KEYS_MAX_AGE_S:
            key = self._renewed_key(kid, key)
        if key is None:
            raise AuthenticationFailed(
                f"signing key {kid[:64]!r} is not among those {self.issuer} publishes",
                rule="token_signing_key",
            )
        return key

    def _awaited_key(self, kid: str) -> jwt.PyJWK | None:
        """`kid`'s key after fetching the set; a caller that waited for a fetch
        another one made takes its outcome (its keys, or its failure)."""
        tries = self._tries
        with self._lock:
            if self._tries == tries:
                self._refresh()
            elif self._failure:
                raise DependencyUnavailable(PROVIDER, self._failure)
            return self._keys.get(kid)

    def _renewed_key(self, kid: str, held: jwt.PyJWK | None) -> jwt.PyJWK | None:
        """`kid`'s key after fetching the set again (the keys held are old);
        `held` while a fetch is under way or the provider cannot be reached."""
        if not self._lock.acquire(blocking=False):
            return held
        try:
            self._refresh()
        except DependencyUnavailable:
            return held
        finally:
            self._lock.release()
        return self._keys.get(kid)

    def _get_json(self, url: str) -> JsonObject:
        return _get_json(url, self.timeout_s, self.tls_verify)

    def _refresh(self) -> None:
        """Discover the endpoints (once) and fetch the key set, at most once per
        `refresh_s`; within it, the last failure is raised again."""
        now = time.monotonic()
        if self._tried_at is not None and now - self._tried_at < self.refresh_s:
            if self._failure:
                raise DependencyUnavailable(PROVIDER, self._failure)
            return
        self._tried_at = now
        try:
            if self._endpoints is None:
                self._endpoints = _discover(self.issuer, self._get_json)
            self._keys = _signing_keys(self._endpoints.jwks_uri, self._get_json)
        except DependencyUnavailable as exc:
            self._failure = exc.detail
            raise
        else:
            self._failure = ""
            self._fetched_at = now
        finally:
            self._tries += 1


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _get_json(url: str, timeout_s: float, verify: ssl.SSLContext | bool) -> JsonObject:
    try:
        response = httpx.get(url, timeout=timeout_s, verify=verify)
        response.raise_for_status()
        data = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise DependencyUnavailable(PROVIDER, f"GET {url}: {exc}") from exc
    if not isinstance(data, dict):
        raise DependencyUnavailable(PROVIDER, f"GET {url}: not a JSON object")
    return data


def _discover(issuer: str, get_json: GetJson) -> ProviderEndpoints:
    url = f"{issuer.rstrip('/')}/.well-known/openid-configuration"
    document = get_json(url)
    if document.get("issuer") != issuer:
        raise DependencyUnavailable(
            PROVIDER, f"{url} names issuer {document.get('issuer')!r}, not {issuer!r}"
        )
    try:
        return ProviderEndpoints(
            issuer=issuer,
            authorization_endpoint=str(document["authorization_endpoint"]),
            token_endpoint=str(document["token_endpoint"]),
            jwks_uri=str(document["jwks_uri"]),
        )
    except KeyError as exc:
        raise DependencyUnavailable(PROVIDER, f"{url} has no {exc}") from None


def _signing_keys(jwks_uri: str, get_json: GetJson) -> dict[str, jwt.PyJWK]:
    """The published signing keys of the accepted algorithms, by key id."""
    try:
        published = jwt.PyJWKSet.from_dict(get_json(jwks_uri))
    except jwt.PyJWKSetError as exc:
        raise DependencyUnavailable(PROVIDER, f"{jwks_uri}: {exc}") from None
    return {
        key.key_id: key
        for key in published.keys
        if key.key_id
        and key.algorithm_name in ALGORITHMS
        and key.public_key_use in (None, "sig")
    }
