"""The fleet at a glance: what is wrong in the plant right now."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request

from atalaia.api.common.deps import ResourcesDep, SessionDep, Viewer
from atalaia.api.common.state import state_as
from atalaia.api.training.incident_schemas import FleetStatusView
from atalaia.api.training.state import FleetState
from atalaia.services import fleet
from atalaia.services.fleet import GroupRates

router = APIRouter(prefix="/fleet", tags=["incidents"])

TOP = 10  # live incidents shown, highest peak score first


def get_group_rates(request: Request) -> GroupRates:
    return state_as(FleetState, request)["group_rates"]


@router.get("/status", response_model=FleetStatusView)
def fleet_status(
    session: SessionDep,
    resources: ResourcesDep,
    rates: Annotated[GroupRates, Depends(get_group_rates)],
    background: BackgroundTasks,
    _: Viewer,
    groups: Annotated[
        int, Query(ge=1, le=10_000, description="Sensor groups shown, at most")
    ] = 100,
) -> FleetStatusView:
    """Live incidents by severity and kind, the sensors anomalous now, each
    sensor group's live incidents and anomaly rate, the worst live incidents."""
    kept, stale = rates.current()
    if stale:
        background.add_task(rates.refresh)  # after this answer: it waits for none
    status = fleet.fleet_status(
        session,
        rates=kept,
        at=time.time(),
        anomalous_within_s=resources.settings.incident_gap_s,
        groups=groups,
        top=TOP,
    )
    return FleetStatusView.of(status)
