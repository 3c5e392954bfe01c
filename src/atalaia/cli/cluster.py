"""`atalaia up`, `status` and `down`: every service as its own process, locally."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from sqlalchemy.engine import make_url

from atalaia.cli.serve import ServiceRole, check_database, ensure_admin_token
from atalaia.cluster import local
from atalaia.cluster.gateway import nginx_binary
from atalaia.cluster.supervisor import LOOPBACK, Started, StartFailed, alive
from atalaia.settings import Settings, load_settings
from atalaia.tls import client_context, server_files

LOG_TAIL_LINES = 15


def up(
    inference_replicas: Annotated[
        int, typer.Option(min=1, max=20, help="Inference processes.")
    ] = 2,
    workers: Annotated[
        int, typer.Option(min=0, help="Queue workers (only with ATALAIA_BROKER_URL).")
    ] = 2,
    worker_concurrency: Annotated[
        int, typer.Option(min=1, help="Jobs each worker runs at once.")
    ] = 1,
    gateway_port: Annotated[
        int, typer.Option(help="nginx's plain HTTP port (redirects to HTTPS).")
    ] = local.DEFAULT_GATEWAY_PORT,
    gateway_tls_port: Annotated[int, typer.Option(help="nginx's HTTPS port.")] = (
        local.DEFAULT_GATEWAY_TLS_PORT
    ),
    port_offset: Annotated[
        int, typer.Option(help="Added to every service's default port.")
    ] = 0,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for every process to be ready.")
    ] = 60.0,
) -> None:
    """Start training, inference replicas, plot, health, the scheduler, workers
    and the gateway."""
    settings = load_settings()
    if make_url(settings.database_url).get_backend_name() != "postgresql":
        _fail(
            "atalaia up runs several processes on one database: set "
            "ATALAIA_DATABASE_URL to PostgreSQL (postgresql://user@host/db); "
            "`atalaia serve` runs everything in one process on SQLite",
            code=2,
        )
    running = local.ClusterState.load(local.state_path(settings))
    if running is not None and any(alive(p) for p in running.processes):
        _fail("a cluster already runs from this home: `atalaia status`, `atalaia down`")
    options = local.ClusterOptions(
        inference_replicas=inference_replicas,
        workers=_workers(workers, settings),
        worker_concurrency=worker_concurrency,
        port_offset=port_offset,
    )
    specs = local.plan(settings, options)
    conf = https_url = None
    try:
        nginx = nginx_binary()
    except FileNotFoundError as exc:
        typer.echo(f"warning: no gateway: {exc}", err=True)
    else:
        if busy := local.busy_ports([], also=[gateway_tls_port]):
            _fail(f"port in use: {busy[0]} (see --gateway-tls-port)")
        tls, made = server_files(settings)
        said = "made a self-signed certificate" if made else "the certificate is"
        typer.echo(f"gateway TLS: {said} {tls.cert} (key {tls.key})", err=True)
        specs.append(
            local.gateway(
                settings, specs, nginx, gateway_port, tls_port=gateway_tls_port, tls=tls
            )
        )
        conf = local.gateway_conf_path(settings)
        https_url = f"https://{LOOPBACK}:{gateway_tls_port}"
    if busy := local.busy_ports(specs):
        _fail(f"ports in use: {', '.join(map(str, busy))} (see --port-offset)")
    check_database(settings, ServiceRole.TRAINING)  # the admin token is recorded
    token_path, _ = ensure_admin_token(settings)
    typer.echo(f"starting {len(specs)} processes", err=True)
    try:
        state = local.start(
            settings,
            specs,
            timeout_s=timeout,
            gateway_conf=conf,
            gateway_https_url=https_url,
        )
    except StartFailed as exc:
        _fail(f"{exc}\n{_tail(exc.process.log)}")
    for process in sorted(state.processes, key=_order):
        typer.echo(f"{process.name:<12} {process.url or '(no port)':<24} {process.pid}")
    if https_url is not None:
        typer.echo(f"{'https':<12} {https_url}")
    typer.echo(f"logs: {local.log_dir(settings)}")
    typer.echo(f"admin token in {token_path}")


def status(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Checks and log files too.")
    ] = False,
) -> None:
    """Each process (running? ready?) and dependency; exit 1 when one is unhealthy."""
    settings = load_settings()
    state = _state(settings)
    unhealthy = []
    for report in sorted(local.inspect(state), key=lambda r: _order(r.process)):
        p = report.process
        typer.echo(f"{p.name:<12} pid {p.pid:<8} {report.detail:<24} {p.url or ''}")
        if verbose:
            typer.echo(f"{'':<12} log {p.log}")
            if isinstance(report.body, dict):
                for name, check in report.body.get("checks", {}).items():
                    verdict = "ok" if check.get("ok") else "failing"
                    typer.echo(f"{'':<12} {name}: {verdict} ({check.get('detail')})")
        if not report.healthy:
            unhealthy.append(p.name)
    if state.gateway_https_url is not None:
        ok, detail = local.probe_https(
            state.gateway_https_url, client_context(settings)
        )
        typer.echo(f"{'https':<12} {'':<12} {detail:<24} {state.gateway_https_url}")
        if not ok:
            unhealthy.append("https")
    for name, (ok, detail) in local.dependencies(settings, state).items():
        typer.echo(f"{name:<12} {'ok' if ok else 'failing':<37} {detail}")
        if not ok:
            unhealthy.append(name)
    if unhealthy:
        _fail(f"unhealthy: {', '.join(unhealthy)}")


def down(
    timeout: Annotated[
        float, typer.Option(help="Seconds between SIGTERM and SIGKILL.")
    ] = 10.0,
) -> None:
    """Stop every process `atalaia up` started and forget them."""
    settings = load_settings()
    state = _state(settings)
    local.stop(settings, state, timeout_s=timeout)
    typer.echo(f"stopped {len(state.processes)} processes")


def _workers(requested: int, settings: Settings) -> int:
    """`requested` when jobs go through a broker, else none (and says so)."""
    if requested and not settings.broker_url:
        typer.echo(
            "no workers: ATALAIA_BROKER_URL is not set, so the training service "
            "runs jobs in its own executor",
            err=True,
        )
        return 0
    return requested


def _state(settings: Settings) -> local.ClusterState:
    state = local.ClusterState.load(local.state_path(settings))
    if state is None:
        _fail(f"no cluster runs from {settings.home} (`atalaia up` starts one)")
    return state


def _order(process: Started) -> bool:
    """Sort key: the gateway first, then in the order they were started."""
    return process.name != "gateway"


def _tail(log: str) -> str:
    lines = Path(log).read_text(errors="replace").splitlines()
    return "\n".join(lines[-LOG_TAIL_LINES:])


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code)
