"""`atalaia demo`: a synthetic fleet through the public API, end to end."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import httpx
import typer
import uvicorn

from atalaia.cli.serve import ensure_admin_token
from atalaia.settings import Settings, load_settings

DEFAULT_URL = "http://127.0.0.1:8000"


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def embedded_server(settings: Settings) -> Iterator[str]:
    """Run the all-in-one platform on a free loopback port for the block."""
    from atalaia.embedded import create_embedded_app

    port = free_port()
    config = uvicorn.Config(
        create_embedded_app(settings), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the embedded server did not start")
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
) -> None:
    """Generate a fleet, ingest, train, promote, stream readings, summarise."""
    from atalaia.demo import DemoError, run_demo

    settings = load_settings()
    token_path, _ = ensure_admin_token(settings)
    token = open(token_path).read().strip()
    target = url or (DEFAULT_URL if _answers(DEFAULT_URL) else None)

    def go(base: str) -> None:
        typer.echo(f"demo against {base}")
        run_demo(
            base, token, sensors=sensors, days=days,
            stream_minutes=stream_minutes, echo=typer.echo,
        )  # fmt: skip

    try:
        if target is not None:
            go(target)
        else:
            with embedded_server(settings) as base:
                go(base)
                typer.echo(
                    "run `atalaia serve` to keep the platform up and see the plots"
                )
    except DemoError as exc:
        typer.echo(f"demo failed: {exc}", err=True)
        raise typer.Exit(1) from None
