"""`atalaia ingest mqtt`: live readings from an MQTT broker into the platform."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="Take readings in from a live source.")

DEFAULT_METRICS_PORT = 8005


@app.command("mqtt")
def mqtt(
    host: Annotated[str, typer.Option(help="Interface of /metrics.")] = "127.0.0.1",
    metrics_port: Annotated[
        int, typer.Option(help="Port of /metrics (Prometheus); 0: none.")
    ] = DEFAULT_METRICS_PORT,
) -> None:
    """Subscribe to ATALAIA_MQTT_TOPICS at ATALAIA_MQTT_URL until SIGTERM or
    SIGINT; readings are stored and scored by the inference service."""
    # Imported here: every `atalaia` command (`serve` too) loads this module.
    from prometheus_client import CollectorRegistry, ProcessCollector

    from atalaia.cli.scheduler import serve_metrics
    from atalaia.ingest_bridge import run_bridge
    from atalaia.logging import configure_logging
    from atalaia.settings import load_settings

    settings = load_settings()
    if not settings.mqtt_url or not settings.mqtt_topics:
        typer.echo(
            "atalaia ingest mqtt needs a broker and topics: set ATALAIA_MQTT_URL "
            "(mqtt://host:1883) and ATALAIA_MQTT_TOPICS (plant/+/{sensor}/{axis})",
            err=True,
        )
        raise typer.Exit(2)
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)  # CPU, memory, open files
    if metrics_port:
        serve_metrics(host, metrics_port, registry)
    configure_logging(level=settings.log_level, json=settings.log_json)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    run_bridge(settings, registry, stop)
