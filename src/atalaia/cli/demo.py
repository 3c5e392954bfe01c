"""`atalaia demo`: a synthetic fleet through the public API, end to end."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
import uvicorn

from atalaia.api.common.auth import Role
from atalaia.api.common.resources import authenticator_for
from atalaia.cli.failures import CommandFailed
from atalaia.cli.serve import ensure_admin_token
from atalaia.settings import Settings, load_settings

DEFAULT_PORT = 8000
DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_PORT}"
TOKEN_TTL_S = 86_400.0


def _answers(url: str) -> bool:
    import httpx  # only the demo needs it: `atalaia serve` starts without

    try:
        return httpx.get(f"{url}/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def free_port(preferred: int = 0) -> int:
    """`preferred` if nothing listens there, else any free loopback port."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def embedded_server(settings: Settings, port: int = 0) -> Iterator[str]:
    """Run the all-in-one platform on loopback for the block (`port` if free)."""
    from atalaia.embedded import create_embedded_app

    with app_server(create_embedded_app(settings), port) as base:
        yield base


@contextmanager
def app_server(app: Any, port: int = 0) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a thread for the block; yield its URL."""
    port = free_port(port)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def demo(
    url: Annotated[
        str | None,
        typer.Option(help="A running atalaia; default: the local one, else start one."),
    ] = None,
    sensors: Annotated[int, typer.Option(min=1, max=2000)] = 20,
    days: Annotated[float, typer.Option(min=7, help="Days of history per series.")] = 7,
    stream_minutes: Annotated[int, typer.Option(min=1)] = 60,
    prefix: Annotated[
        str | None,
        typer.Option(
            help="Its series' ids start with this (default: demo_); it refuses "
            "to touch a series it did not make."
        ),
    ] = None,
) -> None:
    """Generate a fleet, ingest, train, promote, stream readings, summarise."""
    from atalaia.demo import DEFAULT_PREFIX, DEMO_ACTOR, DemoError, run_demo

    settings = load_settings()
    ensure_admin_token(settings)  # for the plot command the demo prints at its end
    token = authenticator_for(settings).issue(
        subject=DEMO_ACTOR, role=Role.ML_ENGINEER, ttl_s=TOKEN_TTL_S
    )
    target = url or (DEFAULT_URL if _answers(DEFAULT_URL) else None)

    def go(base: str) -> None:
        typer.echo(f"demo against {base}")
        run_demo(
            base, token, sensors=sensors, days=days,
            stream_minutes=stream_minutes, echo=typer.echo,
            prefix=DEFAULT_PREFIX if prefix is None else prefix,
        )  # fmt: skip

    try:
        if target is not None:
            go(target)
        else:
            # On `atalaia serve`'s port when free, so the printed URLs work later.
            quiet = settings.model_copy(update={"log_level": "WARNING"})
            with embedded_server(quiet, port=DEFAULT_PORT) as base:
                go(base)
                typer.echo(
                    "run `atalaia serve` to keep the platform up and see the plots"
                )
    except DemoError as exc:
        raise CommandFailed(f"demo failed: {exc}") from None
