"""What the training service adds to the request state."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import TypedDict

from prometheus_client import CollectorRegistry

from atalaia.adapters.db.write_turns import WriteTurns
from atalaia.api.common.resources import Resources
from atalaia.core.ports import JobQueue
from atalaia.services.fleet import GroupRates
from atalaia.services.fleet_grid import FleetGrids


class JobsState(TypedDict):
    """Where training jobs go (the broker or this process's executor), and the
    write turns its jobs take behind requests (embedded, SQLite; else None)."""

    job_queue: JobQueue
    write_turns: WriteTurns | None


# A part of the training app that yields where its jobs go (`JobsState`).
JobsPart = Callable[
    [Resources, CollectorRegistry], AbstractAsyncContextManager[JobsState]
]


class FleetState(TypedDict):
    """The sensor groups' anomaly rates (`/fleet/status`) and every sensor's
    state (`/fleet/sensors`), each kept a few seconds."""

    group_rates: GroupRates
    fleet_grids: FleetGrids
