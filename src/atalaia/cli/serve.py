"""`atalaia serve`: the all-in-one platform, or one service."""

from __future__ import annotations

import socket
from enum import StrEnum
from typing import Annotated

import typer
import uvicorn
from fastapi import FastAPI

from atalaia.adapters.db.engine import make_engine
from atalaia.api.common.auth import Role
from atalaia.api.common.resources import authenticator_for
from atalaia.cli.failures import DatabaseUnreachable, database_failure, port_failure
from atalaia.cli.token import record_creation
from atalaia.errors import DependencyUnavailable
from atalaia.files import touch_private
from atalaia.settings import Settings, load_settings
from atalaia.tls import MODERN_CIPHERS, TlsFiles, configured, server_files


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
    """The path of the admin token file, written (and recorded in the audit log)
    on first start; (path, created)."""
    path = settings.home / "admin-token"
    if path.exists():
        return str(path), False
    ttl_s = settings.token_ttl_hours * 3600
    token = authenticator_for(settings).issue(
        subject="admin", role=Role.ADMIN, ttl_s=ttl_s
    )
    record_creation(settings, token, "admin", Role.ADMIN, ttl_s, quiet=True)
    touch_private(path)
    path.write_text(token + "\n")
    return str(path), True


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port): taken before anything else starts.

    TCP_NODELAY is set here because connections accepted from a socket handed
    to the server inherit it: without it small answers wait on Nagle's algorithm
    and the client's delayed ACK (a p99 of 20–40 ms at 64 connections).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family)
    except OSError as exc:
        raise port_failure(exc, host=host, port=port, option="--port") from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def check_database(settings: Settings, role: ServiceRole) -> None:
    """Refuse to start on a database the service cannot use. The inference
    service starts without one: it answers from its snapshot meanwhile."""
    engine = make_engine(settings.database_url)
    try:
        with engine.connect():
            pass
    except DependencyUnavailable as exc:
        failure = database_failure(exc)
        if role is not ServiceRole.INFERENCE or not isinstance(
            failure, DatabaseUnreachable
        ):
            raise failure from None
    finally:
        engine.dispose()


class _Server(uvicorn.Server):
    """Says where it serves once it does: bound, and every part started."""

    def __init__(self, config: uvicorn.Config, *, banner: str) -> None:
        super().__init__(config)
        self.banner = banner

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)  # exits (status 3) when the app cannot start
        typer.echo(self.banner, err=True)


def serving_tls(settings: Settings, wanted: bool | None) -> TlsFiles | None:
    """The pair to serve HTTPS with: with --tls the configured or self-signed
    one, with --no-tls none, by default the configured one if any."""
    if wanted is None:
        return configured(settings)
    if not wanted:
        return None
    files, made = server_files(settings)
    if made:
        typer.echo(f"atalaia: made a self-signed certificate {files.cert}", err=True)
    return files


def serve(
    role: Annotated[ServiceRole, typer.Option(help="Which service to run.")] = (
        ServiceRole.EMBEDDED
    ),
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port (default by role).")] = None,
    tls: Annotated[
        bool | None,
        typer.Option(
            "--tls/--no-tls",
            help="Serve HTTPS (default: when ATALAIA_TLS_CERT_FILE is set; --tls "
            "without it: a self-signed certificate under the home folder).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Start the platform: every API in one process by default, or one service."""
    settings = load_settings()
    port = port or DEFAULT_PORTS[role]
    with listen(host, port) as sock:
        check_database(settings, role)
        if settings.auth_enabled and role is ServiceRole.EMBEDDED:
            path, created = ensure_admin_token(settings)
            said = "wrote the admin token to" if created else "the admin token is in"
            typer.echo(f"atalaia: {said} {path}", err=True)
        files = serving_tls(settings, tls)
        config = uvicorn.Config(
            create_role_app(role, settings),
            log_level="warning",
            access_log=False,
            ssl_certfile=None if files is None else files.cert,
            ssl_keyfile=None if files is None else files.key,
            ssl_ciphers=MODERN_CIPHERS,
        )
        scheme = "http" if files is None else "https"
        banner = (
            f"atalaia: {role.value} serving on {scheme}://{host}:{port} (docs: /docs)"
        )
        _Server(config, banner=banner).run(sockets=[sock])
