"""What the HTTP edge writes to the audit log, and from which address.

`AuditTrail` is an edge step and a part of the app's lifespan. Beginning a
request, it names the client's address (`CLIENT_ADDRESS`, behind the trusted
proxies) for every entry the request records; the hot routes (predictions,
never recorded) skip it but for their refusals. Once answered, it records:

- a state-changing call (POST, PUT, PATCH, DELETE) answered 2xx, but sensor
  traffic (predictions, readings ingested): `http.<method>`, the route's
  template as target, the status and path in the detail;
- every call to an admin route, whatever its method and status;
- a failed sign-in (401), at most `audit_failed_sign_ins_per_min` a minute;
- a token's first sign-in, once per token across processes (the
  authenticator tells it of each token it verifies, a cache miss).

Entries go to an `AuditWriter`, which writes them on its own thread.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from enum import Enum, auto
from typing import Any, get_args

from fastapi.concurrency import run_in_threadpool
from prometheus_client import CollectorRegistry
from starlette.types import Scope

from atalaia.adapters.db.repositories import AuditEntry
from atalaia.api.common.auth import Authenticator, Principal
from atalaia.api.common.body_limits import PREDICTION
from atalaia.api.common.client_address import TrustedProxies
from atalaia.api.common.deps import Admin, FleetAdmin, SensorWriter, dependants
from atalaia.api.common.resources import Resources
from atalaia.api.common.sign_ins import (
    SIGN_IN_FAILED,
    FailureBudget,
    fingerprint,
    sign_in,
)
from atalaia.errors import AuthenticationFailed
from atalaia.logging import CLIENT_ADDRESS, REQUEST_ID
from atalaia.services.audit_writer import AuditWriter
from atalaia.settings import Settings

CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_API = "/api/v1"  # the prefix every service's routers are included under
_ADMIN_CHECKS = frozenset(get_args(a)[1].dependency for a in (Admin, FleetAdmin))
_SENSOR_CHECK = get_args(SensorWriter)[1].dependency
_PREDICTIONS = tuple(f"{_API}/{route}" for route in PREDICTION.routes)


class Kind(Enum):
    """What a route's calls are to the audit log."""

    ADMIN = auto()  # every call recorded
    MANAGEMENT = auto()  # its changes recorded
    SENSOR = auto()  # predictions, readings: never recorded


def template_of(scope: Scope) -> str:
    """The matched route's path template, with the prefix of the router that
    included it (FastAPI's route knows its own router's only)."""
    template = str(scope["route"].path)
    if scope["path"].startswith(f"{_API}/") and not template.startswith(_API):
        return _API + template
    return template


def kind_of(route: Any, template: str) -> Kind:
    dependant = getattr(route, "dependant", None)
    if dependant is None:  # a mounted app (the console's files)
        return Kind.MANAGEMENT
    calls = {d.call for d in dependants(dependant)}
    if calls & _ADMIN_CHECKS:
        return Kind.ADMIN
    if _SENSOR_CHECK in calls or template.startswith(_PREDICTIONS):
        return Kind.SENSOR
    return Kind.MANAGEMENT


class AuditTrail:
    """Edge step (`begin`, `end`, `refused`) and lifespan part (`running`)."""

    HOT = False  # predictions are never recorded: no cost on their path

    def __init__(self, settings: Settings) -> None:
        self.proxies = TrustedProxies(settings.trusted_proxies)
        self.failures = FailureBudget(settings.audit_failed_sign_ins_per_min)
        # By id(route) (routes live as long as the app): its kind and template.
        self._routes: dict[int, tuple[Kind, str]] = {}
        self._writer: AuditWriter | None = None
        self._authenticator: Authenticator | None = None

    @asynccontextmanager
    async def running(
        self, resources: Resources, _registry: CollectorRegistry
    ) -> AsyncIterator[Mapping[str, object]]:
        """Write entries while the app serves; told of each token verified."""
        writer = AuditWriter(resources.sessions)
        writer.start()
        self._writer, self._authenticator = writer, resources.authenticator
        resources.authenticator.on_verified = self.signed_in
        try:
            yield {}
        finally:
            resources.authenticator.on_verified = None
            self._writer = self._authenticator = None
            await run_in_threadpool(writer.stop)

    def begin(self, scope: Scope, _headers: list[tuple[bytes, bytes]], /) -> None:
        if scope["path"].startswith(_PREDICTIONS):
            return  # never recorded: the hot path works out no address
        CLIENT_ADDRESS.set(self.proxies.client_of(scope))

    def end(self, scope: Scope, _route: str, status: int, _started: float, /) -> None:
        try:
            if self._writer is None or status == 401:
                return
            if (template := self._recorded(scope, status)) is not None:
                self._writer.put(self._call(scope, template, status))
        finally:
            CLIENT_ADDRESS.set(None)

    def signed_in(
        self, token: str, principal: Principal, claims: Mapping[str, object]
    ) -> None:
        if self._writer is not None:
            entry, key = sign_in(token, principal, claims)
            self._writer.put(entry, once_key=key)

    def _recorded(self, scope: Scope, status: int) -> str | None:
        """The route's template when the call is to be recorded, else None."""
        route = scope.get("route")
        if route is None:  # a hot route (predictions) or none
            return None
        known = self._routes.get(id(route))
        if known is None:
            template = template_of(scope)
            known = self._routes[id(route)] = (kind_of(route, template), template)
        kind, template = known
        if kind is Kind.ADMIN or (
            kind is Kind.MANAGEMENT
            and scope["method"] in CHANGES
            and 200 <= status < 300
        ):
            return template
        return None

    def _call(self, scope: Scope, template: str, status: int) -> AuditEntry:
        method: str = scope["method"]
        principal = self._principal(bearer_of(scope))
        return AuditEntry(
            actor=principal.subject[:128] if principal else "unknown",
            action=f"http.{method.lower()}",
            target=template[:256],
            detail={
                "status": status,
                "path": str(scope["path"])[:1000],
                "role": principal.role.label if principal else None,
            },
            address=CLIENT_ADDRESS.get(),
            request_id=REQUEST_ID.get(),
        )

    def _principal(self, token: str | None) -> Principal | None:
        """Who the token names (verified already: from the cache)."""
        try:
            return self._authenticate(token)
        except AuthenticationFailed:
            return None

    def _authenticate(self, token: str | None) -> Principal:
        """The token verified again with the keys held (on the event loop:
        the OpenID Connect provider is never waited for)."""
        assert self._authenticator is not None
        return self._authenticator.authenticate(token, fetch_keys=False)

    def refused(self, scope: Scope, route: str, /) -> None:
        """A failed sign-in, within the budget."""
        left_out = self.failures.take(time.monotonic())
        if left_out is None or self._writer is None:
            return
        token = bearer_of(scope)
        self._writer.put(
            AuditEntry(
                actor="anonymous",
                action=SIGN_IN_FAILED,
                target=(template_of(scope) if scope.get("route") else route)[:256],
                detail={
                    "reason": self._refusal(token),
                    "fingerprint": fingerprint(token, {}) if token else None,
                    "path": str(scope["path"])[:1000],
                    "unrecorded_before": left_out,
                },
                address=self.proxies.client_of(scope),
                request_id=REQUEST_ID.get(),
            )
        )

    def _refusal(self, token: str | None) -> str:
        """Why the token was refused (within the budget only: one decode)."""
        try:
            self._authenticate(token)
        except AuthenticationFailed as exc:
            return str(exc)[:500]
        return "refused"  # valid now: refused for another reason (expired since)


def bearer_of(scope: Scope) -> str | None:
    """The bearer token of the request's Authorization header, if any."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer":
                return None
            return credentials.strip() or None
    return None
