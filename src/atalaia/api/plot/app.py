"""The plot service: `uvicorn atalaia.api.plot.app:create_app --factory`."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from atalaia.api.common.app import build_app
from atalaia.api.plot import routes
from atalaia.settings import Settings, load_settings


def routers() -> list[APIRouter]:
    return [routes.router]


def create_app(settings: Settings | None = None) -> FastAPI:
    """The plot API; it only reads, so it never migrates the database."""
    return build_app(
        name="plot",
        settings=settings or load_settings(),
        routers=routers(),
        migrate=False,
    )
