"""structlog JSON logging with request_id / trace_id bound per request."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import TextIO, cast

import structlog
from opentelemetry import trace
from structlog.types import EventDict, WrappedLogger

# The id of the request being served, set and cleared by the HTTP edge
# (`RequestIds`): one variable, cheaper per request than structlog's bind/unbind.
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
# The address of the client that made it (behind a trusted proxy, the one the
# proxy names), set and cleared by the HTTP edge (`AuditTrail`); the audit log
# records both with each entry a request makes.
CLIENT_ADDRESS: ContextVar[str | None] = ContextVar("client_address", default=None)


def add_request_id(
    _logger: WrappedLogger, _method: str, event_dict: EventDict
) -> EventDict:
    """Name the request being served, unless the event names one itself."""
    request_id = REQUEST_ID.get()
    if request_id is not None:
        event_dict.setdefault("request_id", request_id)
    return event_dict


class _Stderr:
    """Whatever `sys.stderr` is when a line is written: a logger made while a
    command's output was captured (a test runner's) still writes somewhere
    open once the capture ends."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def add_trace_ids(
    _logger: WrappedLogger, _method: str, event_dict: EventDict
) -> EventDict:
    """Name the trace and span current when the event is logged, if any."""
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        event_dict.setdefault("trace_id", trace.format_trace_id(span.trace_id))
        event_dict.setdefault("span_id", trace.format_span_id(span.span_id))
    return event_dict


def configure_logging(*, level: str = "INFO", json: bool = True) -> None:
    """Route structlog and stdlib logging to stderr, one JSON object per line."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_request_id,
            add_trace_ids,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(cast(TextIO, _Stderr())),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=level.upper(), stream=sys.stderr, format="%(message)s")
    # SQLAlchemy's pools log as their class's module: ours is the translation's.
    pools = ("sqlalchemy", "atalaia.adapters.db.translation")
    for chatty in ("alembic", "httpx", "httpcore", *pools):
        logging.getLogger(chatty).setLevel(logging.WARNING)
