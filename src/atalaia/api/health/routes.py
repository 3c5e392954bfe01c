"""The consolidated platform status."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from atalaia.api.common.state import CommonState, state_as
from atalaia.api.health.state import ProbeState
from atalaia.services.health import consolidate, probe_all

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    responses={503: {"description": "Unhealthy: a service is down (the same body)"}},
)
async def platform_health(request: Request) -> JSONResponse:
    """Every service and dependency with its status; 503 when a service is down."""
    resources = state_as(CommonState, request)["resources"]
    state = state_as(ProbeState, request)
    services = dict(state["embedded_services"])
    services.update(await probe_all(state["http"], state["service_probes"]))
    dependencies = {}
    for name, check in resources.ready_checks.items():
        ok, detail = await run_in_threadpool(check)
        dependencies[name] = {"ok": ok, "detail": detail}
    body = consolidate(services, dependencies)
    return JSONResponse(body, status_code=503 if body["status"] == "unhealthy" else 200)
