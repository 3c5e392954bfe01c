"""The one place that maps atalaia errors to HTTP statuses and JSON bodies."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from atalaia import errors
from atalaia.api.common.params import NAMED_RULES

log = structlog.get_logger()

STATUS: dict[type[errors.AtalaiaError], int] = {
    errors.InvalidInput: 422,
    errors.PayloadTooLarge: 413,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.RateLimited: 429,
    errors.AuthenticationFailed: 401,
    errors.PermissionDenied: 403,
    errors.DependencyUnavailable: 503,
}


def status_of(exc: errors.AtalaiaError | type[errors.AtalaiaError]) -> int:
    for cls in (exc if isinstance(exc, type) else type(exc)).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_response(exc: errors.AtalaiaError) -> JSONResponse:
    status = status_of(exc)
    body: dict[str, Any] = {
        "error": type(exc).__name__,
        "rule": exc.rule,
        "detail": exc.detail,
    }
    headers: dict[str, str] = {}
    if isinstance(exc, errors.RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, errors.BatchRefused | errors.BatchRateLimited):
        body["rejected"] = exc.rejected
    if isinstance(exc, errors.InvalidAssets):
        body["errors"] = exc.errors
    if isinstance(exc, errors.UnfitData):
        body["findings"] = exc.findings
    if isinstance(exc, errors.AuthenticationFailed):
        headers["WWW-Authenticate"] = "Bearer"
    _log_error(status, body["error"], exc)
    return JSONResponse(body, status_code=status, headers=headers)


def _log_error(status: int, error: str, exc: errors.AtalaiaError) -> None:
    """4xx at info, 5xx at error; with the first line of what caused it (a
    driver's error, say), which the answer does not show."""
    fields: dict[str, Any] = {"status": status, "error": error, "detail": exc.detail}
    if exc.origin:
        fields["origin"] = exc.origin
    (log.error if status >= 500 else log.info)("http.error", **fields)


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()))
    return f"{where}: {error.get('msg', 'invalid')}"


async def _on_atalaia_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.AtalaiaError)
    return error_response(exc)


async def _on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [_describe(e) for e in exc.errors()]
    rules = [e["type"] for e in exc.errors() if e["type"] in NAMED_RULES]
    rule = rules[0] if rules else "request_schema"
    wrapped = errors.InvalidInput("; ".join(problems[:5]), rule=rule)
    return error_response(wrapped)


async def _on_unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.error("http.unhandled", error=type(exc).__name__, exc_info=exc)
    body = {
        "error": "InternalError",
        "rule": errors.AtalaiaError.rule,
        "detail": "unexpected error; see the server log",
    }
    return JSONResponse(body, status_code=500)


# Starlette's own answers (no route, wrong method): named like atalaia's errors.
_HTTP_ERRORS = {
    404: ("NotFound", "route_exists"),
    405: ("MethodNotAllowed", "method_allowed"),
}


def http_error_body(status: int, detail: str) -> dict[str, str]:
    """The error body of a status the router answers by itself."""
    error, rule = _HTTP_ERRORS.get(status, ("HTTPError", "http_protocol"))
    return {"error": error, "rule": rule, "detail": detail}


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:  # FastAPI's "error parsing the body": bad JSON
        return error_response(
            errors.InvalidInput(f"body: {exc.detail}", rule="request_schema")
        )
    detail = {
        404: f"no route at {request.url.path}",
        405: f"{request.method} is not allowed at {request.url.path}; "
        f"allowed: {(exc.headers or {}).get('Allow', '')}",
    }.get(exc.status_code, str(exc.detail))
    log.info("http.error", status=exc.status_code, detail=detail)
    body = http_error_body(exc.status_code, detail)
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.AtalaiaError, _on_atalaia_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
