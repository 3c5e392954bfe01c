"""Probe services and dependencies, and consolidate one platform status."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True, slots=True)
class ServiceProbe:
    """A service reached over HTTP; its /ready answer is its health."""

    name: str
    url: str

    async def check(self, client: httpx.AsyncClient) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            response = await client.get(f"{self.url.rstrip('/')}/ready")
        except httpx.HTTPError as exc:
            return {"status": "down", "url": self.url, "detail": type(exc).__name__}
        latency_ms = round((time.perf_counter() - started) * 1000, 2)
        try:
            body = response.json()
        except ValueError:
            body = {}
        return {
            "status": "up" if response.status_code == 200 else "degraded",
            "url": self.url,
            "latency_ms": latency_ms,
            "checks": body.get("checks", {}),
        }


async def probe_all(
    client: httpx.AsyncClient, probes: list[ServiceProbe]
) -> dict[str, dict[str, Any]]:
    results = await asyncio.gather(*(p.check(client) for p in probes))
    return {p.name: r for p, r in zip(probes, results, strict=True)}


def consolidate(
    services: dict[str, dict[str, Any]], dependencies: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """healthy: all up; degraded: something impaired but the platform answers;
    unhealthy: a service is down."""
    statuses = [s["status"] for s in services.values()]
    if "down" in statuses:
        overall = "unhealthy"
    elif "degraded" in statuses or not all(d["ok"] for d in dependencies.values()):
        overall = "degraded"
    else:
        overall = "healthy"
    return {"status": overall, "services": services, "dependencies": dependencies}
