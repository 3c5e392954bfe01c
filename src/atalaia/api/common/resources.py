"""The resources a service process opens at start and closes at shutdown."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.cache import RedisLink, SharedCounters
from atalaia.adapters.db.engine import (
    engine_for,
    make_session_factory,
)
from atalaia.adapters.db.migrate import upgrade_database
from atalaia.adapters.storage import artifact_store_for
from atalaia.api.common.auth import Authenticator
from atalaia.api.common.oidc import ClaimMapping, OidcVerifier
from atalaia.api.common.ratelimit import RateLimiter
from atalaia.core.access import AccessGroups
from atalaia.core.ports import ArtifactStore
from atalaia.core.series import TimeRange
from atalaia.errors import DependencyUnavailable
from atalaia.settings import Settings
from atalaia.tls import client_context

# name → () -> (ok, detail); /ready runs them all.
ReadyCheck = Callable[[], tuple[bool, str]]


@dataclass
class Resources:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    artifacts: ArtifactStore
    authenticator: Authenticator
    rate_limiter: RateLimiter
    redis: RedisLink | None = None  # None: Redis is not configured
    ready_checks: dict[str, ReadyCheck] = field(default_factory=dict)
    # Read on every prediction: settings' attributes cost microseconds each.
    time_range: TimeRange = field(init=False)
    access: AccessGroups = field(init=False)  # the configured sensor groups

    def __post_init__(self) -> None:
        self.time_range = self.settings.time_range
        self.access = AccessGroups(self.settings.access_groups)

    def check_database(self) -> tuple[bool, str]:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except DependencyUnavailable as exc:  # named by the driver's error
            return False, f"unreachable: {type(exc.__cause__).__name__}"
        except Exception as exc:
            return False, f"unreachable: {type(exc).__name__}"
        return True, self.engine.dialect.name

    def close(self) -> None:
        self.rate_limiter.stop()
        if self.redis is not None:
            self.redis.close()
        self.engine.dispose()


def authenticator_for(settings: Settings) -> Authenticator:
    return Authenticator(
        settings.resolve_jwt_secret(),
        algorithm=settings.jwt_algorithm,
        enabled=settings.auth_enabled,
        oidc=oidc_verifier_for(settings),
    )


def oidc_verifier_for(settings: Settings) -> OidcVerifier | None:
    """The verifier of the configured OpenID Connect provider's tokens (it
    contacts the provider only when a token or the console needs it)."""
    if not settings.oidc_issuer or not settings.oidc_audience:
        return None
    return OidcVerifier(
        settings.oidc_issuer,
        settings.oidc_audience,
        claims=ClaimMapping(settings.oidc_role_claim, settings.oidc_groups_claim),
        leeway_s=settings.oidc_leeway_s,
        refresh_s=settings.oidc_jwks_refresh_s,
        timeout_s=settings.oidc_timeout_s,
        verify=client_context(settings),
    )


def redis_link_for(settings: Settings) -> RedisLink | None:
    """The Redis of `settings.redis_url`, or None when it is not configured."""
    if not settings.redis_url:
        return None
    return RedisLink(
        settings.redis_url,
        prefix=settings.redis_prefix,
        timeout_s=settings.redis_timeout_s,
        retry_s=settings.redis_retry_s,
    )


def open_resources(settings: Settings, *, migrate: bool) -> Resources:
    """Connect to the database (migrating it first if asked), the artifact store
    and Redis (when configured); start the rate limiter."""
    if migrate:
        upgrade_database(settings.database_url)
    engine = engine_for(settings)
    redis = redis_link_for(settings)
    counters = SharedCounters(redis) if redis is not None else None
    resources = Resources(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        artifacts=artifact_store_for(settings),
        authenticator=authenticator_for(settings),
        rate_limiter=RateLimiter.from_settings(settings, counters),
        redis=redis,
    )
    resources.ready_checks["database"] = resources.check_database
    if redis is not None:
        resources.ready_checks["redis"] = redis.check
    resources.rate_limiter.start()
    return resources
