"""The resources a service process opens at start and closes at shutdown."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.db.migrate import upgrade_database
from atalaia.adapters.storage import LocalArtifactStore
from atalaia.api.common.auth import Authenticator
from atalaia.settings import Settings

# name → () -> (ok, detail); /ready runs them all.
ReadyCheck = Callable[[], tuple[bool, str]]


@dataclass
class Resources:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    artifacts: LocalArtifactStore
    authenticator: Authenticator
    ready_checks: dict[str, ReadyCheck] = field(default_factory=dict)

    def check_database(self) -> tuple[bool, str]:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            return False, f"unreachable: {type(exc).__name__}"
        return True, self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()


def authenticator_for(settings: Settings) -> Authenticator:
    return Authenticator(
        settings.resolve_jwt_secret(),
        algorithm=settings.jwt_algorithm,
        enabled=settings.auth_enabled,
    )


def open_resources(settings: Settings, *, migrate: bool) -> Resources:
    """Connect to the database (migrating it first if asked) and the artifact store."""
    if migrate:
        upgrade_database(settings.database_url)
    engine = make_engine(settings.database_url)
    resources = Resources(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        artifacts=LocalArtifactStore(settings.artifacts_path),
        authenticator=authenticator_for(settings),
    )
    resources.ready_checks["database"] = resources.check_database
    return resources
