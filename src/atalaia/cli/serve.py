"""`atalaia serve`: the all-in-one platform, or one service."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
import uvicorn
from fastapi import FastAPI

from atalaia.api.common.auth import Role
from atalaia.api.common.resources import authenticator_for
from atalaia.files import touch_private
from atalaia.settings import Settings, load_settings


class ServiceRole(StrEnum):
    EMBEDDED = "embedded"
    TRAINING = "training"
    INFERENCE = "inference"
    PLOT = "plot"
    HEALTH = "health"


DEFAULT_PORTS = {
    ServiceRole.EMBEDDED: 8000,
    ServiceRole.TRAINING: 8000,
    ServiceRole.INFERENCE: 8001,
    ServiceRole.PLOT: 8002,
    ServiceRole.HEALTH: 8003,
}


def create_role_app(role: ServiceRole, settings: Settings) -> FastAPI:
    if role is ServiceRole.EMBEDDED:
        from atalaia.embedded import create_embedded_app

        return create_embedded_app(settings)
    if role is ServiceRole.TRAINING:
        from atalaia.api.training import create_app
    elif role is ServiceRole.INFERENCE:
        from atalaia.api.inference import create_app
    elif role is ServiceRole.PLOT:
        from atalaia.api.plot import create_app
    else:
        from atalaia.api.health import create_app
    return create_app(settings)


def ensure_admin_token(settings: Settings) -> tuple[str, bool]:
    """The path of the admin token file, written on first start; (path, created)."""
    path = settings.home / "admin-token"
    if path.exists():
        return str(path), False
    token = authenticator_for(settings).issue(
        subject="admin", role=Role.ADMIN, ttl_s=settings.token_ttl_hours * 3600
    )
    touch_private(path)
    path.write_text(token + "\n")
    return str(path), True


def serve(
    role: Annotated[ServiceRole, typer.Option(help="Which service to run.")] = (
        ServiceRole.EMBEDDED
    ),
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port (default by role).")] = None,
) -> None:
    """Start the platform: every API in one process by default, or one service."""
    settings = load_settings()
    port = port or DEFAULT_PORTS[role]
    if settings.auth_enabled and role is ServiceRole.EMBEDDED:
        path, created = ensure_admin_token(settings)
        verb = "wrote" if created else "is in"
        typer.echo(f"atalaia: the admin token {verb} {path}", err=True)
    typer.echo(
        f"atalaia {role.value} on http://{host}:{port} (API docs: /docs)", err=True
    )
    uvicorn.run(
        create_role_app(role, settings),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
    )
