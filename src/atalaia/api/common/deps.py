"""FastAPI dependencies as Annotated aliases."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator
from types import UnionType
from typing import Annotated, Union, get_args, get_origin

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.types import Scope

from atalaia.api.common.auth import Principal, Role
from atalaia.api.common.resources import Resources
from atalaia.api.common.state import CommonState, state_as
from atalaia.errors import InvalidInput


def get_resources(request: Request) -> Resources:
    return state_as(CommonState, request)["resources"]


ResourcesDep = Annotated[Resources, Depends(get_resources)]


def get_session(resources: ResourcesDep) -> Iterator[Session]:
    with resources.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


# Declares the scheme in OpenAPI (the /docs "Authorize" button); a missing or
# non-Bearer header reaches `authenticate` as no token, which answers 401.
BEARER = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    description="A token from `atalaia token create` or `.atalaia/admin-token`.",
)


def require(role: Role, *, sensor: bool = False) -> Callable[..., Principal]:
    """A dependency that authenticates the caller, checks their role and counts
    the request against their rate limit (`sensor`: the sensor-traffic one)."""

    def dependency(
        resources: ResourcesDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> Principal:
        token = credentials.credentials if credentials else None
        principal = resources.authenticator.authenticate(token)
        principal.require(role)
        if sensor:
            resources.rate_limiter.check_sensor(principal)
        else:
            resources.rate_limiter.check(principal)
        return principal

    return dependency


def authorize(scope: Scope, role: Role) -> Principal:
    """`require(role, sensor=True)` for routes outside FastAPI's dependency
    injection (the hot prediction paths)."""
    token = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                token = credentials.strip()
            break
    state: CommonState = scope["state"]  # by annotation: no call per prediction
    resources = state["resources"]
    principal = resources.authenticator.authenticate(token)
    principal.require(role)
    resources.rate_limiter.check_sensor(principal)
    return principal


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
DataScientist = Annotated[Principal, Depends(require(Role.DATA_SCIENTIST))]
MlEngineer = Annotated[Principal, Depends(require(Role.ML_ENGINEER))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
# Sensor traffic (readings ingested): the sensor rate limit, not the management one.
SensorWriter = Annotated[Principal, Depends(require(Role.DATA_SCIENTIST, sensor=True))]


def dependants(dependant: Dependant) -> Iterator[Dependant]:
    """`dependant` and every dependency below it."""
    yield dependant
    for sub in dependant.dependencies:
        yield from dependants(sub)


def strict_query(request: Request) -> None:
    """Refuse a query parameter the route does not take, or one given twice
    (unless it takes a list: `?state=open&state=acknowledged`): a typo
    (`?limt=10`) would otherwise be ignored without a word."""
    if not request.scope["query_string"]:
        return  # most requests: nothing to check, no dependency tree to walk
    route = request.scope.get("route")
    params = [
        param
        for dependant in dependants(getattr(route, "dependant", Dependant()))
        for param in dependant.query_params
    ]
    check_query_names(
        (key for key, _ in request.query_params.multi_items()),
        {param.alias for param in params},
        repeatable={p.alias for p in params if _is_list(p.field_info.annotation)},
    )


def _is_list(annotation: object) -> bool:
    """Whether a parameter of this type takes a list (`list[X] | None` does)."""
    if get_origin(annotation) in (Union, UnionType):
        return any(_is_list(arg) for arg in get_args(annotation))
    return get_origin(annotation) in (list, set, frozenset, tuple)


def check_query_names(
    names: Iterable[str],
    taken: Collection[str],
    *,
    repeatable: Collection[str] = (),
) -> None:
    """Raise InvalidInput (`query_parameters`) for a name not in `taken`, or
    repeated and not in `repeatable`."""
    counts = Counter(names)
    wrong = sorted(
        k
        for k, n in counts.items()
        if k not in taken or (n > 1 and k not in repeatable)
    )
    if wrong:
        but = f" but {', '.join(sorted(repeatable))}" if repeatable else ""
        raise InvalidInput(
            f"query parameters {', '.join(wrong)} are unknown here or given twice; "
            f"this route takes {', '.join(sorted(taken)) or 'none'}, each once{but}",
            rule="query_parameters",
        )
