"""The request state is what the lifespan parts' TypedDicts declare."""

from __future__ import annotations

from fastapi.testclient import TestClient

from atalaia.api.common.state import CommonState
from atalaia.api.health.state import ProbeState
from atalaia.api.inference.state import ServingState
from atalaia.api.training.state import FleetState, JobsState
from atalaia.embedded import create_embedded_app
from atalaia.settings import Settings

# What the embedded platform's lifespan merges: every part there is.
PARTS = (CommonState, JobsState, FleetState, ServingState, ProbeState)


def test_no_two_parts_yield_the_same_key() -> None:
    """The lifespan merges the parts' states: a shared key would be overwritten."""
    keys = [key for part in PARTS for key in part.__required_keys__]

    assert len(keys) == len(set(keys))


def test_the_state_holds_every_key_the_parts_declare(settings: Settings) -> None:
    with TestClient(create_embedded_app(settings)) as client:
        state = client.app_state

    assert set(state) == {key for part in PARTS for key in part.__required_keys__}
