"""The all-in-one server: every service's routes in one process and one lifespan."""

from __future__ import annotations

from fastapi import FastAPI

from atalaia.api import health, inference, plot, training
from atalaia.api.common.app import build_app
from atalaia.scheduler import with_scheduler
from atalaia.settings import Settings, load_settings

EMBEDDED = ("training", "inference", "plot")


def create_embedded_app(settings: Settings | None = None) -> FastAPI:
    """SQLite by default, local artifacts, in-process executor and scheduler: all
    APIs, one port."""
    settings = settings or load_settings()
    return build_app(
        name="embedded",
        settings=settings,
        routers=[
            *training.routers(),
            *inference.routers(),
            *plot.routers(),
            *health.routers(),
        ],
        fast_routes=inference.FAST_ROUTES,
        parts=[
            with_scheduler(training.job_executor),
            training.fleet_figures,
            inference.model_serving,
            health.health_monitor(embedded=EMBEDDED),
        ],
        migrate=True,
        console=True,
    )
