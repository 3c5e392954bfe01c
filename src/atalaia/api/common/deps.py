"""FastAPI dependencies as Annotated aliases."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from types import UnionType
from typing import Annotated, Union, get_args, get_origin

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.types import Scope

from atalaia.api.common.auth import Principal, Role
from atalaia.api.common.resources import Resources
from atalaia.api.common.state import CommonState, state_as
from atalaia.core.access import SERIES_ACCESS, SeriesScope
from atalaia.errors import (
    AtalaiaError,
    InvalidInput,
    PermissionDenied,
    SensorNotFound,
    SeriesNotFound,
)


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
    description=(
        "A token from `atalaia token create` or `.atalaia/admin-token`, or an "
        "access token of the OpenID Connect provider (ATALAIA_OIDC_ISSUER)."
    ),
)


def require(
    role: Role, *, sensor: bool = False, fleet: bool = False
) -> Callable[..., Principal]:
    """A dependency that authenticates the caller, checks their role, counts
    the request against their rate limit (`sensor`: the sensor-traffic one)
    and answers 404 for a series or sensor of the path outside their groups;
    `fleet`: the route spans the whole fleet, refused to a token limited to
    sensor groups (403 `series_access`)."""

    def dependency(
        request: Request,
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
        if principal.groups is not None:
            if fleet:
                raise PermissionDenied(
                    f"{request.url.path} spans the whole fleet: a token limited "
                    "to sensor groups cannot use it",
                    rule=SERIES_ACCESS,
                )
            guard_path(resources.access.scope(principal.groups), request.path_params)
        return principal

    return dependency


async def authorize(scope: Scope, role: Role) -> Principal:
    """`require(role, sensor=True)` for routes outside FastAPI's dependency
    injection (the hot prediction paths, on the event loop: a token not
    verified yet is verified on a worker thread)."""
    token = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                token = credentials.strip()
            break
    state: CommonState = scope["state"]  # by annotation: no call per prediction
    resources = state["resources"]
    principal = resources.authenticator.known(token)
    if principal is None:  # on a worker thread: a key fetch holds up no prediction
        principal = await run_in_threadpool(resources.authenticator.authenticate, token)
    principal.require(role)
    resources.rate_limiter.check_sensor(principal)
    if principal.groups is not None:
        guard_path(resources.access.scope(principal.groups), scope["path_params"])
    return principal


def guard_batch(
    resources: Resources,
    principal: Principal,
    ids: Iterable[str],
    *,
    sensors: bool = False,
) -> None:
    """Refuse a whole batch naming a series (`sensors`: a sensor) outside the
    caller's groups (403 `series_access`, naming the first ones)."""
    scope = scope_of(resources, principal)
    if scope is not None:
        scope.require_all(ids, sensors=sensors)


def scope_of(resources: Resources, principal: Principal) -> SeriesScope | None:
    """The series the caller's groups cover (None: every series)."""
    return resources.access.scope(principal.groups)


def hide_outside(
    resources: Resources,
    principal: Principal,
    series_ids: Iterable[str],
    missing: AtalaiaError,
) -> None:
    """Raise `missing` (the resource's own 404) when the resource names a
    series outside the caller's groups: answered as one that does not exist."""
    scope = scope_of(resources, principal)
    if scope is not None and scope.outside(series_ids):
        raise missing


def guard_path(scope: SeriesScope | None, params: Mapping[str, str]) -> None:
    """Answer a series (or sensor) of the path outside `scope` as one that does
    not exist: 404, whether it exists or not."""
    if scope is None:
        return
    series_id = params.get("series_id")
    if series_id is not None and not scope.covers(series_id):
        raise SeriesNotFound(series_id)
    sensor_id = params.get("sensor_id")
    if sensor_id is not None and not scope.covers_sensor(sensor_id):
        raise SensorNotFound(sensor_id)


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
DataScientist = Annotated[Principal, Depends(require(Role.DATA_SCIENTIST))]
MlEngineer = Annotated[Principal, Depends(require(Role.ML_ENGINEER))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
# Routes over the whole fleet (aggregates, fleet-wide actions): refused to a
# token limited to sensor groups.
FleetViewer = Annotated[Principal, Depends(require(Role.VIEWER, fleet=True))]
FleetEngineer = Annotated[Principal, Depends(require(Role.ML_ENGINEER, fleet=True))]
FleetAdmin = Annotated[Principal, Depends(require(Role.ADMIN, fleet=True))]
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
