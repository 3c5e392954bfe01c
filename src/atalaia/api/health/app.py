"""The health service (port 8003): one consolidated status of the platform."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
from fastapi import APIRouter, FastAPI
from prometheus_client import CollectorRegistry

from atalaia.api.common.app import build_app
from atalaia.api.common.resources import Resources
from atalaia.api.health.routes import router
from atalaia.api.health.state import ProbeState
from atalaia.services.health import ServiceProbe
from atalaia.settings import Settings, load_settings
from atalaia.tls import client_context


def routers() -> list[APIRouter]:
    return [router]


def health_monitor(
    *, embedded: tuple[str, ...] = ()
) -> Callable[[Resources, CollectorRegistry], AbstractAsyncContextManager[ProbeState]]:
    """Probe the services at their configured URLs, except those in this process."""

    @asynccontextmanager
    async def part(
        resources: Resources, _registry: CollectorRegistry
    ) -> AsyncIterator[ProbeState]:
        s = resources.settings
        urls = {"training": s.training_url, "plot": s.plot_url}
        replicas = s.inference_urls or [s.inference_url]
        if len(replicas) == 1:
            urls["inference"] = replicas[0]
        else:  # one probe per replica: `atalaia up` and compose run several
            urls |= {f"inference-{i}": url for i, url in enumerate(replicas, 1)}
        probes = [
            ServiceProbe(n, u)
            for n, u in urls.items()
            if n.partition("-")[0] not in embedded
        ]
        async with httpx.AsyncClient(
            timeout=s.health_probe_timeout_s, verify=client_context(s)
        ) as client:
            yield ProbeState(
                http=client,
                service_probes=probes,
                embedded_services={
                    n: {"status": "up", "url": "embedded"} for n in embedded
                },
            )

    return part


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    return build_app(
        name="health", settings=settings, routers=routers(), parts=[health_monitor()]
    )
