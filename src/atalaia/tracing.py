"""OpenTelemetry traces, configured by the standard OTEL_* variables.

Off unless the environment names at least one OTEL_* variable (and
OTEL_SDK_DISABLED is not true): then no provider, exporter or instrumentation
is set up and tracing costs nothing. On, each process names its service
(`training`, `inference`, `plot`, `health`, `serve`, `worker`, `scheduler`;
OTEL_SERVICE_NAME wins) in the `atalaia` namespace; the sampler comes from
OTEL_TRACES_SAMPLER / _ARG, the exporters from OTEL_TRACES_EXPORTER (`otlp`,
the default, over HTTP to OTEL_EXPORTER_OTLP_ENDPOINT; `console`; `none`).
Celery tasks carry the trace in their headers, httpx calls in `traceparent`,
and every statement of an engine passed to `trace_queries` is a span.
"""

from __future__ import annotations

import os
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_NAMESPACE, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import Decision

from atalaia import __version__

if TYPE_CHECKING:
    from sqlalchemy import Engine

NAMESPACE = "atalaia"
_EXPORTERS_GROUP = "opentelemetry_traces_exporter"
# `otlp` is OTLP over HTTP (protobuf): the exporter this package installs.
_EXPORTER_ALIASES = {"otlp": "otlp_proto_http"}
_PROTOCOLS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")

_provider: TracerProvider | None = None


def requested() -> bool:
    """Whether the environment asks for tracing: an OTEL_* variable is set and
    OTEL_SDK_DISABLED is not true."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(name.startswith("OTEL_") for name in os.environ)


def configure_tracing(service: str) -> bool:
    """Trace this process as `service` when the environment asks for it (once
    per process: the first call wins); returns whether tracing is on."""
    if _provider is None and requested():
        provider = provider_from_environment(service)
        trace.set_tracer_provider(provider)
        install(provider)
    return _provider is not None


def provider_from_environment(service: str) -> TracerProvider:
    """A provider named `service` (unless OTEL_SERVICE_NAME says otherwise), its
    sampler from OTEL_TRACES_SAMPLER and its exporters from OTEL_TRACES_EXPORTER."""
    attributes = {SERVICE_NAMESPACE: NAMESPACE, "service.version": __version__}
    if not os.environ.get("OTEL_SERVICE_NAME"):
        attributes[SERVICE_NAME] = service
    provider = TracerProvider(resource=Resource.create(attributes))
    for exporter in exporters_from_environment():
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def exporters_from_environment() -> list[SpanExporter]:
    """The exporters OTEL_TRACES_EXPORTER names (comma-separated; `none`: none)."""
    names = os.environ.get("OTEL_TRACES_EXPORTER", "otlp")
    chosen = [n.strip() for n in names.split(",") if n.strip() not in ("", "none")]
    return [_exporter(name) for name in chosen]


def _exporter(name: str) -> SpanExporter:
    protocol = next((os.environ[p] for p in _PROTOCOLS if os.environ.get(p)), None)
    if name == "otlp" and protocol not in (None, "http/protobuf"):
        raise ValueError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: only http/protobuf is "
            "installed (an OpenTelemetry Collector receives it on port 4318)"
        )
    found = entry_points(group=_EXPORTERS_GROUP, name=_EXPORTER_ALIASES.get(name, name))
    if not found:
        raise ValueError(
            f"OTEL_TRACES_EXPORTER={name}: no such exporter is installed "
            "(otlp, console or none)"
        )
    exporter: SpanExporter = next(iter(found)).load()()
    return exporter


def install(provider: TracerProvider) -> None:
    """Trace this process with `provider`: Celery task headers, httpx calls and the
    engines passed to `trace_queries` from now on."""
    # Imported here: a process that does not trace loads none of them.
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    global _provider
    uninstall()
    CeleryInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    _provider = provider


def uninstall() -> None:
    """Stop tracing Celery and httpx (engines keep their listeners until disposed)."""
    global _provider
    if _provider is None:
        return
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    CeleryInstrumentor().uninstrument()  # type: ignore[no-untyped-call]
    HTTPXClientInstrumentor().uninstrument()
    _provider = None


def tracer(name: str) -> trace.Tracer | None:
    """The tracer `name` of the installed provider; None when tracing is off."""
    return None if _provider is None else _provider.get_tracer(name, __version__)


def samples_roots() -> bool:
    """Whether the installed sampler may record a trace begun in this process.

    Probed with a root span of trace id 0, the one a ratio sampler keeps first:
    always_off and traceidratio 0 (and their parent-based forms) drop it.
    """
    if _provider is None:
        return False
    probe = _provider.sampler.should_sample(Context(), 0, "probe")
    return probe.decision is Decision.RECORD_AND_SAMPLE


def trace_queries(engine: Engine) -> None:
    """A span per statement `engine` runs, when tracing is on."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

    connections = metrics.get_meter(__name__).create_up_down_counter(
        "db.client.connections.usage"
    )
    EngineTracer(tracer("atalaia.db"), engine, connections)  # type: ignore[no-untyped-call]


def flush(timeout_s: float = 5.0) -> None:
    """Export the spans ended so far (a process about to exit)."""
    if _provider is not None:
        _provider.force_flush(round(timeout_s * 1000))
