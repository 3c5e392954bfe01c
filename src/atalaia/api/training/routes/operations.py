"""Fleet operations: one promotion or rollback of many series, with its progress."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from atalaia.api.common.deps import (
    FleetEngineer,
    FleetViewer,
    SessionDep,
)
from atalaia.api.common.openapi import error_responses
from atalaia.api.common.params import Text
from atalaia.api.training.operation_schemas import (
    DryRunView,
    OperationAccepted,
    OperationBody,
    OperationPage,
    OperationView,
)
from atalaia.errors import Conflict, InvalidInput, NotFound
from atalaia.services import operations

router = APIRouter(prefix="/operations", tags=["operations"])


@router.post(
    "",
    status_code=202,
    response_model=OperationAccepted | DryRunView,
    responses={
        200: {"model": DryRunView, "description": "A dry run: what it would do"},
        **error_responses(InvalidInput, NotFound),
    },
)
def create_operation(
    body: OperationBody,
    response: Response,
    session: SessionDep,
    principal: FleetEngineer,
) -> OperationAccepted | DryRunView:
    """Queue a promotion or rollback of the selected series (202), or count
    what it would do (`dry_run`: 200)."""
    request = body.request()
    if body.dry_run:
        response.status_code = 200
        found = operations.dry_run(session=session, request=request)
        return DryRunView.of(body.action, found)
    operation = operations.create_operation(
        session=session, request=request, actor=principal.subject
    )
    return OperationAccepted.of(operation)


@router.get("", response_model=OperationPage)
def list_operations(
    session: SessionDep,
    _: FleetViewer,
    cursor: Annotated[
        Text | None, Query(description="`next_cursor` of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> OperationPage:
    """Operations, newest first."""
    found = operations.list_operations(session=session, before=cursor, limit=limit)
    now = datetime.now(UTC)
    return OperationPage(
        operations=[OperationView.of(o, now=now) for o in found],
        next_cursor=found[-1].id if len(found) == limit else None,
    )


@router.get(
    "/{operation_id}",
    response_model=OperationView,
    responses=error_responses(NotFound),
)
def get_operation(
    operation_id: Text, session: SessionDep, _: FleetViewer
) -> OperationView:
    """An operation's progress: done, failed, skipped, remaining, rate, ETA."""
    operation = operations.get_operation(session=session, operation_id=operation_id)
    return OperationView.of(operation, now=datetime.now(UTC))


@router.post(
    "/{operation_id}/cancel",
    response_model=OperationView,
    responses=error_responses(NotFound, Conflict),
)
def cancel_operation(
    operation_id: Text, session: SessionDep, principal: FleetEngineer
) -> OperationView:
    """Stop an operation between two chunks: what was done stays done."""
    operation = operations.cancel_operation(
        session=session, operation_id=operation_id, actor=principal.subject
    )
    return OperationView.of(operation, now=datetime.now(UTC))
