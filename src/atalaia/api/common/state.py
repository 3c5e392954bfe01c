"""The request state, typed: one TypedDict for what each part of an app adds.

An app's lifespan merges the shared resources (`CommonState`) with what each of
its parts yields (a TypedDict of the part's own, e.g. the inference service's
`ServingState`); routes read it through `state_as`, so the type checker knows
each entry, on the FastAPI routes and on the fast ones alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict, TypeVar

from starlette.requests import HTTPConnection
from starlette.types import Scope

from atalaia.api.common.resources import Resources

State = TypeVar("State", bound=Mapping[str, object])


class CommonState(TypedDict):
    """What every app's lifespan adds: the shared resources."""

    resources: Resources


def state_as(_kind: type[State], holder: HTTPConnection | Scope) -> State:
    """The request state of `holder` (a request, or a fast route's scope), read
    as `_kind`: the TypedDict of the part whose entries the caller reads."""
    scope = holder.scope if isinstance(holder, HTTPConnection) else holder
    state: State = scope["state"]
    return state
