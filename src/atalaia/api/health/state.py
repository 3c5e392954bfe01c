"""What the health service adds to the request state."""

from __future__ import annotations

from typing import Any, TypedDict

import httpx

from atalaia.services.health import ServiceProbe


class ProbeState(TypedDict):
    """The client that probes the other services, their probes, and the status
    of the services embedded in this process (not probed over HTTP)."""

    http: httpx.AsyncClient
    service_probes: list[ServiceProbe]
    embedded_services: dict[str, dict[str, Any]]
