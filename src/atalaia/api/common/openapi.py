"""The OpenAPI side of errors: one `ErrorView`, and each route's error statuses.

A route's documented errors come from what it can raise: the domain errors its
decorator names (`responses=error_responses(SeriesNotFound)`) plus those its
signature implies, added by `document_errors` once every route is in the app:
a parameter or body can break a rule (422), a bearer token can be missing,
too weak or over its rate limit (401, 403, 429), a database session can find
the database down (503) or a write can meet a concurrent one (409).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field
from starlette.routing import BaseRoute

from atalaia import errors
from atalaia.api.common.deps import BEARER, dependants, get_session, strict_query
from atalaia.api.common.errors import status_of
from atalaia.api.common.params import EPOCH_SECONDS
from atalaia.core.series import TimeRange

Raised = type[errors.AtalaiaError]
Responses = dict[int | str, dict[str, Any]]
_REF = "#/components/schemas/{model}"
(EPOCH_MARK,) = EPOCH_SECONDS

AUTHORIZED: tuple[Raised, ...] = (
    errors.AuthenticationFailed,
    errors.PermissionDenied,
    errors.RateLimited,
)


class ErrorView(BaseModel):
    """Every error answer of every service."""

    model_config = ConfigDict(extra="allow")  # e.g. `rejected`: a list of refusals

    error: str = Field(description="The error's name, e.g. `SeriesNotFound`")
    rule: str = Field(description="The rule or condition broken, in snake_case")
    detail: str = Field(description="What happened, for a person")


ERROR_SCHEMA = {"$ref": "#/components/schemas/ErrorView"}
_FASTAPI_422 = "#/components/schemas/HTTPValidationError"


def _descriptions(raised: Iterable[Raised]) -> dict[int, str]:
    names: dict[int, list[str]] = {}
    for cls in raised:
        names.setdefault(status_of(cls), []).append(f"`{cls.__name__}` (`{cls.rule}`)")
    return {status: ", ".join(entries) for status, entries in sorted(names.items())}


def error_responses(*raised: Raised) -> Responses:
    """A route decorator's `responses=` for the domain errors it can raise."""
    return {
        status: {"model": ErrorView, "description": description}
        for status, description in _descriptions(raised).items()
    }


def error_operation_responses(*raised: Raised) -> dict[str, Any]:
    """The same, as an OpenAPI operation's `responses` (for hand-built operations)."""
    content = {"application/json": {"schema": ERROR_SCHEMA}}
    return {
        str(status): {"description": description, "content": content}
        for status, description in _descriptions(raised).items()
    }


def implied_errors(route: RouteContext) -> list[Raised]:
    """The errors `route`'s parameters and dependencies can raise."""
    found = list(dependants(route.dependant))
    calls = {dependant.call for dependant in found}
    raised: list[Raised] = []
    takes_input = any(
        d.path_params or d.query_params or d.header_params or d.body_params
        for d in found
    )
    if takes_input or route.openapi_extra or strict_query in calls:
        raised.append(errors.InvalidInput)
    if BEARER in calls:
        raised.extend(AUTHORIZED)
    if get_session in calls:
        raised.append(errors.DependencyUnavailable)
        if (route.methods or set()) - {"GET", "HEAD"}:
            raised.append(errors.Conflict)
    return raised


def _merge(responses: dict[str, Any], implied: dict[str, Any]) -> None:
    """Add `implied` to an operation's responses; FastAPI's own 422 is replaced."""
    for status, response in implied.items():
        declared = responses.get(status)
        schema = (declared or {}).get("content", {}).get("application/json", {})
        if declared is None or schema.get("schema", {}).get("$ref") == _FASTAPI_422:
            responses[status] = response
        else:
            declared["description"] += ", " + response["description"]


def document_errors(schema: dict[str, Any], routes: Sequence[BaseRoute]) -> None:
    """Add to each operation of `schema` the errors its route's signature implies."""
    for route in iter_route_contexts(routes):
        documented = isinstance(route.original_route, APIRoute)
        if not documented or not route.include_in_schema:
            continue
        implied = error_operation_responses(*implied_errors(route))
        for method in route.methods or ():
            operation = schema["paths"][route.path_format][method.lower()]
            _merge(operation["responses"], implied)
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["ErrorView"] = ErrorView.model_json_schema(ref_template=_REF)


def bound_timestamps(node: Any, span: TimeRange) -> None:
    """Give every schema marked `EPOCH_SECONDS` the app's timestamp bounds."""
    if isinstance(node, dict):
        if node.pop(EPOCH_MARK, False):
            node.update(minimum=span.low, maximum=span.high)
        for value in node.values():
            bound_timestamps(value, span)
    elif isinstance(node, list):
        for value in node:
            bound_timestamps(value, span)


def install_openapi(app: FastAPI, span: TimeRange) -> None:
    """Document every route's errors, and the timestamp bounds of `span`."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        document_errors(schema, app.routes)
        bound_timestamps(schema, span)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
