"""Every process of the platform on one machine, on loopback: plan, start, inspect.

Ports follow `atalaia serve`'s defaults shifted by `port_offset`; inference
replica i (from 0) listens on 8001 + 10·i (8001, 8011, 8021, …); the scheduler
exports its metrics on 8004, the MQTT bridge (when ATALAIA_MQTT_URL and
ATALAIA_MQTT_TOPICS are set) on 8005; it sends readings to the first replica.
What `start` ran is written to `<home>/cluster/state.json`, read back by
`status` and `down`. The services listen on loopback in plain HTTP; the gateway
serves HTTPS (and redirects its HTTP port there).
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from atalaia.adapters.db.migrate import upgrade_database
from atalaia.api.common.resources import open_resources
from atalaia.cli.ingest import DEFAULT_METRICS_PORT as MQTT_METRICS_PORT
from atalaia.cli.scheduler import DEFAULT_METRICS_PORT
from atalaia.cli.serve import DEFAULT_PORTS, ServiceRole
from atalaia.cluster import supervisor
from atalaia.cluster.gateway import GatewayTls, gateway_spec, render_nginx_conf
from atalaia.cluster.supervisor import LOOPBACK, ProcessSpec, Started
from atalaia.files import make_private_dir
from atalaia.settings import Settings
from atalaia.tls import TlsFiles

REPLICA_PORT_STEP = 10
DEFAULT_GATEWAY_PORT = 8080
DEFAULT_GATEWAY_TLS_PORT = 8443


@dataclass(frozen=True, slots=True)
class ClusterOptions:
    inference_replicas: int = 2
    workers: int = 0  # queue workers; only with a broker
    worker_concurrency: int = 1
    port_offset: int = 0


@dataclass(slots=True)
class ClusterState:
    """What `start` ran: written as JSON, readable only by its owner."""

    database_url: str
    processes: list[Started] = field(default_factory=list)
    gateway_conf: str | None = None
    gateway_https_url: str | None = None

    def save(self, path: Path) -> None:
        make_private_dir(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(asdict(self), out, indent=2)

    @classmethod
    def load(cls, path: Path) -> ClusterState | None:
        if not path.exists():
            return None
        raw: dict[str, Any] = json.loads(path.read_text())
        raw["processes"] = [Started(**p) for p in raw["processes"]]
        return cls(**raw)


@dataclass(frozen=True, slots=True)
class ProcessReport:
    process: Started
    running: bool
    ready: bool | None  # None: the process has no readiness URL
    detail: str
    body: object = None

    @property
    def healthy(self) -> bool:
        return self.running and self.ready is not False


def cluster_dir(settings: Settings) -> Path:
    return settings.home.resolve() / "cluster"


def state_path(settings: Settings) -> Path:
    return cluster_dir(settings) / "state.json"


def log_dir(settings: Settings) -> Path:
    return cluster_dir(settings) / "logs"


def gateway_conf_path(settings: Settings) -> Path:
    return cluster_dir(settings) / "gateway" / "nginx.conf"


def atalaia_command() -> tuple[str, ...]:
    """The `atalaia` script of this interpreter's environment."""
    script = Path(sys.executable).with_name("atalaia")
    if script.exists():
        return (str(script),)
    return (sys.executable, "-c", "from atalaia.cli import main; main()")


def plan(settings: Settings, options: ClusterOptions) -> list[ProcessSpec]:
    """The services, the scheduler, the MQTT bridge (when configured), then the
    queue workers, each told where the others are."""
    off = options.port_offset

    def url(port: int) -> str:
        return f"http://{LOOPBACK}:{port}"

    ports = {
        "training": DEFAULT_PORTS[ServiceRole.TRAINING] + off,
        **{
            f"inference-{i + 1}": DEFAULT_PORTS[ServiceRole.INFERENCE]
            + off
            + REPLICA_PORT_STEP * i
            for i in range(options.inference_replicas)
        },
        "plot": DEFAULT_PORTS[ServiceRole.PLOT] + off,
        "health": DEFAULT_PORTS[ServiceRole.HEALTH] + off,
    }
    replicas = [url(p) for n, p in ports.items() if n.startswith("inference-")]
    env = {
        "ATALAIA_HOME": str(settings.home.resolve()),
        "ATALAIA_DATABASE_URL": settings.database_url,
        "ATALAIA_TRAINING_URL": url(ports["training"]),
        "ATALAIA_INFERENCE_URL": replicas[0],
        "ATALAIA_INFERENCE_URLS": ",".join(replicas),
        "ATALAIA_PLOT_URL": url(ports["plot"]),
    }
    command = atalaia_command()
    specs = [
        ProcessSpec(
            name=name,
            # Plain HTTP on loopback behind the gateway, whatever the TLS settings.
            argv=(*command, "serve", "--no-tls", "--role", name.partition("-")[0])
            + ("--port", str(port)),
            port=port,
            env=env,
        )
        for name, port in ports.items()
    ]
    scheduler_port = DEFAULT_METRICS_PORT + off
    specs.append(
        ProcessSpec(
            name="scheduler",
            argv=(*command, "scheduler", "--metrics-port", str(scheduler_port)),
            port=scheduler_port,
            ready_path="/metrics",  # it serves no API: up once it exports metrics
            env=env,
        )
    )
    if settings.mqtt_url and settings.mqtt_topics:
        bridge_port = MQTT_METRICS_PORT + off
        specs.append(
            ProcessSpec(
                name="mqtt",
                argv=(*command, "ingest", "mqtt", "--metrics-port", str(bridge_port)),
                port=bridge_port,
                ready_path="/metrics",
                env=env,
            )
        )
    specs += [
        ProcessSpec(
            name=f"worker-{i + 1}",
            argv=(*command, "worker", "--concurrency", str(options.worker_concurrency)),
            env=env,
        )
        for i in range(options.workers)
    ]
    return specs


def gateway(
    settings: Settings,
    specs: Sequence[ProcessSpec],
    nginx: str,
    port: int,
    *,
    tls_port: int,
    tls: TlsFiles,
) -> ProcessSpec:
    """Render nginx.conf for `specs` under the cluster folder; nginx's spec
    (ready when its plain HTTP `port` answers /ready)."""
    conf = gateway_conf_path(settings)
    for needed in (conf.parent, log_dir(settings)):
        make_private_dir(needed)
    upstreams: dict[str, list[str]] = {}
    for spec in specs:
        if spec.port is not None:
            service = spec.name.partition("-")[0]
            upstreams.setdefault(service, []).append(f"{LOOPBACK}:{spec.port}")
    conf.write_text(
        render_nginx_conf(
            upstreams,
            listen=f"{LOOPBACK}:{port}",
            tls=GatewayTls(
                listen=f"{LOOPBACK}:{tls_port}",
                cert_file=str(tls.cert.resolve()),
                key_file=str(tls.key.resolve()),
                public_port=tls_port,
            ),
            runtime_dir=str(conf.parent),
            access_log=str(log_dir(settings) / "gateway-access.log"),
            # Else nginx run by root serves as `nobody`, who may not enter `home`.
            user="root" if os.geteuid() == 0 else None,
        )
    )
    return gateway_spec(nginx, conf, port)


def busy_ports(specs: Sequence[ProcessSpec], also: Sequence[int] = ()) -> list[int]:
    """The ports of `specs`, and `also`, on which something already listens."""
    busy = []
    for port in [*(s.port for s in specs if s.port is not None), *also]:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                busy.append(port)
    return busy


def start(
    settings: Settings,
    specs: Sequence[ProcessSpec],
    *,
    timeout_s: float,
    gateway_conf: Path | None = None,
    gateway_https_url: str | None = None,
) -> ClusterState:
    """Migrate the database, start `specs`, record them, wait until all are ready.

    On any failure every process started is stopped and the state removed.
    """
    upgrade_database(settings.database_url)
    state = ClusterState(
        database_url=settings.database_url,
        gateway_conf=None if gateway_conf is None else str(gateway_conf),
        gateway_https_url=gateway_https_url,
    )
    try:
        for spec in specs:
            state.processes.append(supervisor.spawn(spec, log_dir(settings)))
            state.save(state_path(settings))  # `down` finds them even if we die
        supervisor.wait_ready(state.processes, timeout_s)
    except BaseException:
        stop(settings, state)
        raise
    return state


def stop(settings: Settings, state: ClusterState, timeout_s: float = 10.0) -> None:
    """Stop the gateway, then the workers, then the services; forget the state."""
    supervisor.stop(list(reversed(state.processes)), timeout_s)
    state_path(settings).unlink(missing_ok=True)


def inspect(state: ClusterState) -> list[ProcessReport]:
    """Each process: running? and, for those with a port, does /ready answer 200?"""
    reports = []
    for process in state.processes:
        if not supervisor.alive(process):
            reports.append(ProcessReport(process, False, False, "not running"))
        elif process.ready_url is None:
            reports.append(ProcessReport(process, True, None, "running"))
        else:
            ok, detail, body = supervisor.probe(process.ready_url)
            summary = "ready" if ok else f"not ready ({detail})"
            reports.append(ProcessReport(process, True, ok, summary, body))
    return reports


def probe_https(url: str, context: ssl.SSLContext) -> tuple[bool, str]:
    """GET `url`/ready over TLS verified by `context`: (answered 200, the TLS
    version and status, or why it failed)."""
    try:
        with (
            httpx.Client(verify=context, timeout=2.0) as client,
            client.stream("GET", f"{url}/ready") as answer,
        ):
            tls = answer.extensions["network_stream"].get_extra_info("ssl_object")
            detail = f"{tls.version()}, HTTP {answer.status_code}"
    except httpx.HTTPError as exc:
        return False, f"{type(exc).__name__}: {exc}"
    return answer.status_code == 200, detail


def dependencies(
    settings: Settings, state: ClusterState
) -> dict[str, tuple[bool, str]]:
    """The services' own readiness checks (database, …), run from here."""
    on_cluster = settings.model_copy(update={"database_url": state.database_url})
    resources = open_resources(on_cluster, migrate=False)
    try:
        return {name: check() for name, check in resources.ready_checks.items()}
    finally:
        resources.close()
