"""OpenTelemetry traces: one trace from the HTTP request through RabbitMQ to a
Celery worker and the database, its ids in the logs, nothing when off, and no
span recorded on predictions the sampler drops."""

from __future__ import annotations

import io
import json
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import uvicorn
from celery.contrib.testing.worker import start_worker
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)

from atalaia import tracing
from atalaia.api.common.auth import Role
from atalaia.api.common.observability import Traces
from atalaia.api.inference import create_app as create_inference_app
from atalaia.api.training import create_app as create_training_app
from atalaia.cli.demo import free_port
from atalaia.cluster import supervisor
from atalaia.cluster.gateway import (
    SERVICES,
    GatewayTls,
    gateway_spec,
    nginx_binary,
    render_nginx_conf,
)
from atalaia.cluster.supervisor import ProcessSpec
from atalaia.logging import configure_logging
from atalaia.settings import Settings
from atalaia.tls import ensure_self_signed
from atalaia.worker import create_worker_app
from fixtures import require_service
from fixtures.api import bearer, inline_body, predict, wait_for
from fixtures.db import truncate_tables
from fixtures.workers import ATALAIA, JOBS, TERMINAL, poll

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
PARENT_OR_OFF = ParentBased(ALWAYS_OFF)
RATIO_HALF = TraceIdRatioBased(0.5)
Traced = Callable[[Sampler], InMemorySpanExporter]


class LogLines(io.TextIOBase):
    """Standard error that also keeps, while `recording`, the JSON lines written.

    Loggers cache their stream on first use: they keep writing through this one
    to the real standard error after the test.
    """

    def __init__(self, stream: io.TextIOBase) -> None:
        self.stream, self.recording = stream, True
        self.events: list[dict[str, Any]] = []
        self._line = ""

    def write(self, text: str) -> int:
        if self.recording:
            *lines, self._line = (self._line + text).split("\n")
            self.events += [json.loads(s) for s in lines if s[:1] == "{"]
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


@contextmanager
def log_lines() -> Iterator[LogLines]:
    """The JSON log events written to standard error meanwhile (entered in the
    test itself: pytest's capture sets `sys.stderr` again before the test runs)."""
    lines = LogLines(sys.stderr)  # type: ignore[arg-type]
    sys.stderr = lines
    try:
        yield lines
    finally:
        sys.stderr, lines.recording = lines.stream, False


@pytest.fixture
def traced() -> Iterator[Traced]:
    """Trace this process with a sampler of the test's choice into memory."""

    def install(sampler: Sampler) -> InMemorySpanExporter:
        exporter = InMemorySpanExporter()
        provider = TracerProvider(sampler=sampler)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracing.install(provider)
        return exporter

    yield install
    tracing.uninstall()


def in_trace(spans: tuple[ReadableSpan, ...], trace_id: str) -> list[ReadableSpan]:
    return [
        s
        for s in spans
        if s.context is not None and f"{s.context.trace_id:032x}" == trace_id
    ]


def ancestors(span: ReadableSpan, spans: list[ReadableSpan]) -> list[str]:
    """The names of `span`'s parents, nearest first."""
    by_id = {s.context.span_id: s for s in spans if s.context is not None}
    names = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


def is_query(span: ReadableSpan) -> bool:
    attributes = span.attributes or {}
    database = "db.system" in attributes or "db.system.name" in attributes
    return span.kind is trace.SpanKind.CLIENT and database


@pytest.mark.postgres
def test_a_training_job_is_one_trace_from_the_request_to_the_worker(
    traced: Traced,
    make_settings: Callable[..., Settings],
    postgres_database: str,
    rabbitmq_url: str,
    queue_name: str,
) -> None:
    exporter = traced(ALWAYS_ON)
    truncate_tables(postgres_database)
    settings = make_settings(
        postgres_database,
        broker_url=rabbitmq_url,
        training_queue=queue_name,
        training_min_interval_s=0,
        log_json=True,
    )
    headers = {**bearer(settings, Role.ADMIN), "traceparent": TRACEPARENT}
    with (
        log_lines() as logged,
        TestClient(create_training_app(settings)) as client,
        start_worker(
            create_worker_app(settings), pool="solo", perform_ping_check=False
        ),
    ):
        submitted = client.post(
            "/api/v1/training/sensor_001_radial", json=inline_body(), headers=headers
        )
        assert submitted.status_code == 202, submitted.text
        job_url = f"{JOBS}/{submitted.json()['job_id']}"
        plain = bearer(settings, Role.ADMIN)  # polls outside the trace
        status = poll(
            lambda: (
                {client.get(job_url, headers=plain).json()["status"]} & {*TERMINAL}
                or None
            ),
            "the job ending",
        )
    assert status == {"succeeded"}

    spans = in_trace(exporter.get_finished_spans(), CALLER_TRACE)
    names = {s.name for s in spans}
    request = "POST /training/{series_id}"  # the route template, as in the metrics
    assert {request, "apply_async/training.run_chunk", "run/training.run_chunk"} <= (
        names
    )
    run = next(s for s in spans if s.name == "run/training.run_chunk")
    assert ancestors(run, spans)[-2:] == ["apply_async/training.run_chunk", request]
    entry = next(s for s in spans if s.name == request)
    assert entry.parent is not None
    assert entry.parent.is_remote
    assert f"{entry.parent.span_id:016x}" == CALLER_SPAN
    worker_queries = [
        s for s in spans if is_query(s) and run.name in ancestors(s, spans)
    ]
    assert worker_queries, "no database span under the worker's run"
    assert any(is_query(s) and request in ancestors(s, spans) for s in spans)

    events = logged.events
    chunk_done = next(e for e in events if e["event"] == "worker.chunk_done")
    assert chunk_done["trace_id"] == CALLER_TRACE
    assert chunk_done["span_id"] == f"{run.context.span_id:016x}"


def run_exported(log: Path) -> str | None:
    """The worker's log once it shows the task's span."""
    text = log.read_text()
    return text if "run/training.run_chunk" in text else None


@pytest.mark.postgres
def test_a_worker_process_exports_its_part_of_the_trace(
    traced: Traced,
    make_settings: Callable[..., Settings],
    postgres_database: str,
    rabbitmq_url: str,
    queue_name: str,
    tmp_path: Path,
) -> None:
    traced(ALWAYS_ON)  # the training API's side, in this process
    truncate_tables(postgres_database)
    settings = make_settings(
        postgres_database,
        broker_url=rabbitmq_url,
        training_queue=queue_name,
        training_min_interval_s=0,
    )
    env = {
        "ATALAIA_HOME": str(settings.home),
        "ATALAIA_DATABASE_URL": settings.database_url,
        "ATALAIA_BROKER_URL": rabbitmq_url,
        "ATALAIA_TRAINING_QUEUE": queue_name,
        "OTEL_TRACES_EXPORTER": "console",  # to the log, as JSON
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    argv = (str(ATALAIA), "worker", "--concurrency", "1")
    worker = supervisor.spawn(ProcessSpec("worker", argv, env=env), tmp_path)
    headers = {**bearer(settings, Role.ADMIN), "traceparent": TRACEPARENT}
    try:
        with TestClient(create_training_app(settings)) as client:
            submitted = client.post(
                "/api/v1/training/sensor_001_radial",
                json=inline_body(),
                headers=headers,
            )
            assert submitted.status_code == 202, submitted.text
        text = poll(lambda: run_exported(Path(worker.log)), "the worker's span")
    finally:
        supervisor.stop([worker], timeout_s=10)

    exported = text.count(f'"trace_id": "0x{CALLER_TRACE}"')
    assert exported >= 2  # the task's run and its statements at least
    assert '"service.name": "worker"' in text
    logged = [json.loads(line) for line in text.splitlines() if line[:2] == '{"']
    chunk_done = next(e for e in logged if e["event"] == "worker.chunk_done")
    assert chunk_done["trace_id"] == CALLER_TRACE


@contextmanager
def served(app: object, port: int) -> Iterator[None]:
    """`app` served by uvicorn on a thread of this process (its spans are ours)."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None)  # type: ignore[arg-type]
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or None)
        yield
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def gateway_to(
    training_port: int, folder: Path
) -> Iterator[tuple[str, ssl.SSLContext]]:
    """The platform's nginx gateway, the training service at `training_port`
    (nothing listens for the others); yields its HTTPS URL and a client
    context trusting its self-signed certificate."""
    unused = [f"127.0.0.1:{free_port()}"]
    upstreams = dict.fromkeys(SERVICES, unused)
    upstreams["training"] = [f"127.0.0.1:{training_port}"]
    conf, port, tls_port = folder / "nginx.conf", free_port(), free_port()
    files = ensure_self_signed(folder)[0]
    conf.write_text(
        render_nginx_conf(
            upstreams,
            listen=f"127.0.0.1:{port}",
            tls=GatewayTls(
                f"127.0.0.1:{tls_port}", str(files.cert), str(files.key), tls_port
            ),
            runtime_dir=str(folder),
            access_log=str(folder / "access.log"),
            user="root" if os.geteuid() == 0 else None,
        )
    )
    started = supervisor.spawn(
        gateway_spec(require_service("nginx", nginx_binary), conf, port), folder
    )
    try:
        supervisor.wait_ready([started], timeout_s=10)
        trusting = ssl.create_default_context(cafile=files.cert)
        yield f"https://127.0.0.1:{tls_port}", trusting
    finally:
        supervisor.stop([started])


def test_the_gateway_passes_the_trace_and_its_request_id_on(
    traced: Traced, settings: Settings, tmp_path: Path
) -> None:
    exporter = traced(ALWAYS_ON)
    caller = tracing.tracer("test")
    assert caller is not None
    port = free_port()
    with (
        served(create_training_app(settings), port),
        gateway_to(port, tmp_path) as (gateway, trusting),
        caller.start_as_current_span("caller") as calling,
    ):
        answer = httpx.post(  # instrumented: sends `traceparent`
            f"{gateway}/api/v1/training/sensor_001_radial",
            json=inline_body(),
            headers=bearer(settings, Role.DATA_SCIENTIST),
            timeout=30,
            verify=trusting,
        )
    assert answer.status_code == 202, answer.text

    caller_trace = f"{calling.get_span_context().trace_id:032x}"
    spans = in_trace(exporter.get_finished_spans(), caller_trace)
    request = next(s for s in spans if s.kind is trace.SpanKind.SERVER)
    assert ancestors(request, spans) == ["POST", "caller"]  # httpx's span, then ours
    # nginx's own request id, sent on and back: the access log's key to the trace
    assert request.attributes is not None
    assert request.attributes["atalaia.request_id"] == answer.headers["x-request-id"]
    assert len(answer.headers["x-request-id"]) == 32


def test_log_lines_name_the_current_trace_and_span() -> None:
    provider = TracerProvider(sampler=ALWAYS_ON)
    with log_lines() as logged:
        configure_logging(json=True)
        log = structlog.get_logger()
        log.info("outside")
        with provider.get_tracer("test").start_as_current_span("inside") as span:
            log.info("inside")
    context = span.get_span_context()

    outside, inside = logged.events
    assert "trace_id" not in outside
    assert inside["trace_id"] == f"{context.trace_id:032x}"
    assert inside["span_id"] == f"{context.span_id:016x}"


UNSAMPLED_PARENT = f"00-{CALLER_TRACE}-{CALLER_SPAN}-00"


@pytest.mark.parametrize(
    ("sampler", "traceparent", "recorded"),
    [
        (ALWAYS_OFF, None, 0),
        (PARENT_OR_OFF, None, 0),
        (PARENT_OR_OFF, UNSAMPLED_PARENT, 0),
        (PARENT_OR_OFF, TRACEPARENT, 3),  # the caller's sampled trace goes on
        (RATIO_HALF, None, None),  # about half (the sampler's own draw)
        (ALWAYS_ON, None, 3),
    ],
)
def test_predictions_record_spans_only_when_sampled(
    traced: Traced,
    settings: Settings,
    sampler: Sampler,
    traceparent: str | None,
    recorded: int | None,
) -> None:
    exporter = traced(sampler)
    headers = bearer(settings, Role.VIEWER)
    if traceparent is not None:
        headers["traceparent"] = traceparent
    with TestClient(create_inference_app(settings)) as client:
        for n in range(3 if recorded is not None else 200):
            predict(client, headers, timestamp=1_733_700_000.0 + n)

    predictions = [
        s
        for s in exporter.get_finished_spans()
        if s.name == "POST /api/v1/predict/{series_id}"
    ]
    if recorded is None:
        assert 60 < len(predictions) < 140
    else:
        assert len(predictions) == recorded


def test_a_sampler_that_starts_no_trace_is_told_apart(traced: Traced) -> None:
    started = {}
    for name, sampler in [
        ("always_off", ALWAYS_OFF),
        ("parent or off", PARENT_OR_OFF),
        ("ratio 0", ParentBased(TraceIdRatioBased(0))),
        ("ratio 1e-6", ParentBased(TraceIdRatioBased(1e-6))),
        ("always_on", ALWAYS_ON),
    ]:
        traced(sampler)
        started[name] = tracing.samples_roots()

    assert started == {
        "always_off": False,
        "parent or off": False,
        "ratio 0": False,
        "ratio 1e-6": True,
        "always_on": True,
    }


def test_without_an_otel_variable_nothing_is_traced(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        monkeypatch.delenv(name)
    app = create_inference_app(settings)

    assert tracing.tracer("any") is None
    assert not any(isinstance(step, Traces) for step in app.edge.steps)  # type: ignore[attr-defined]
    assert type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider"


# A process configured by its environment alone: builds the inference app,
# answers predictions and prints what its console exporter wrote at exit.
_PROCESS = """
import sys
from fastapi.testclient import TestClient
from atalaia.api.common.auth import Role
from atalaia.api.inference import create_app
from atalaia.settings import Settings
from fixtures.api import bearer, predict

settings = Settings(home=sys.argv[1], database_url=sys.argv[2], log_json=False)
with TestClient(create_app(settings)) as client:
    for n in range(3):
        predict(client, bearer(settings, Role.VIEWER), timestamp=1733700000.0 + n)
"""


@pytest.mark.parametrize(("sampler", "exported"), [("always_off", 0), ("always_on", 3)])
def test_the_otel_variables_configure_the_process(
    tmp_path: Path, sampler: str, exported: int
) -> None:
    env = {n: v for n, v in os.environ.items() if not n.startswith("OTEL_")}
    env |= {
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_TRACES_SAMPLER": sampler,
        "PYTHONPATH": str(Path(__file__).parent),
    }
    database = f"sqlite:///{tmp_path / 'atalaia.db'}"
    done = subprocess.run(
        [sys.executable, "-c", _PROCESS, str(tmp_path / "home"), database],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    assert done.stdout.count('"name": "POST /api/v1/predict/{series_id}"') == exported
    if exported:
        assert '"service.name": "inference"' in done.stdout
        assert '"service.namespace": "atalaia"' in done.stdout


def test_an_unknown_exporter_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "jaeger")
    with pytest.raises(ValueError, match="OTEL_TRACES_EXPORTER=jaeger"):
        tracing.exporters_from_environment()


@pytest.mark.parametrize(
    ("variables", "on"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "x"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_TRACES_SAMPLER": "always_on", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_any_otel_variable_asks_for_tracing_unless_the_sdk_is_disabled(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], on: bool
) -> None:
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        monkeypatch.delenv(name)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)

    assert tracing.requested() is on


def test_otlp_over_grpc_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    with pytest.raises(ValueError, match="only http/protobuf"):
        tracing.exporters_from_environment()
