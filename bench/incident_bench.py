"""Incidents on the hot path, and from a reading to its notification.

`incident-cost`: single predictions (wrk, as `predict-single`) of N z-score
models at a 1 % anomaly rate, by the inference service with incidents
recorded and without (`ATALAIA_INCIDENTS_ENABLED=false`), their runs
interleaved; the target is ≥ 0.9 × the throughput without.

`incident-latency`: the embedded platform (`atalaia serve`: inference, the
alerter, one process) with a rule sending every incident to a webhook this
benchmark listens on; one anomalous reading of a new sensor at a time, every
`interval_s`, each opening an incident; the time from sending the reading to
the webhook receiving its notification, p50 / p99 / max (target p99 ≤ 2 s).
The channel's rate limit is lifted: the point is the path, not the limit.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import numpy as np

from bench._servers import atalaia_serve, free_port, serve
from bench.predict_bench import (
    DISTINCT_REQUESTS,
    Figures,
    Registry,
    filled_registry,
    interleaved,
    make_readings,
    markdown_table,
    measured_cells,
    single_requests,
)
from bench.reference_app import PREDICT

ANOMALY_SD = 0.39  # half-widths: |N(0, 0.39)| > 1 for 1 % of readings
CONNECTIONS = 64
COST_TARGET = 0.9
LATENCY_TARGET_S = 2.0


def incident_cost(
    models: int, duration_s: int, runs: int, url: str | None
) -> tuple[Figures, str]:
    """Single-predict throughput with incidents and without (see the module)."""
    with filled_registry(models, url) as registry:
        rng = np.random.default_rng(1)
        rows = rng.integers(0, models, DISTINCT_REQUESTS)
        ids, timestamps, values = make_readings(registry, rng, rows, sd=ANOMALY_SD)
        expected, spread = registry.band_at(rows, timestamps)
        share = float(np.mean(np.abs(values - expected) > spread))
        requests = single_requests((ids, timestamps, values))
        servers = {
            mode: _with_env(registry, ATALAIA_INCIDENTS_ENABLED=str(mode == "on"))
            for mode in ("on", "off")
        }
        measured = interleaved(servers, requests, CONNECTIONS, duration_s, runs)
    on, off = measured["on"], measured["off"]
    ratio = on.run.requests_per_s / off.run.requests_per_s
    header = ["incidents", "c", "rps", "p50 ms", "p99 ms", "errors", "cpu s"]
    table_rows = [
        [mode, CONNECTIONS, *measured_cells(m)]
        for mode, m in (("on", on), ("off", off))
    ]
    verdict = f"with incidents: {ratio:.3f} × without (target ≥ {COST_TARGET})"
    figures: Figures = {
        "models": models,
        "anomaly_share": round(share, 4),
        **on.figures("on_"),
        **off.figures("off_"),
        "ratio": ratio,
    }
    return figures, f"{markdown_table([*header, 'wrk cpu s'], table_rows)}\n{verdict}"


def _with_env(registry: Registry, **env: str) -> Registry:
    return dataclasses.replace(registry, env={**registry.env, **env})


def incident_latency(
    models: int, incidents: int, interval_s: float
) -> tuple[Figures, str]:
    """Reading sent → its incident's notification received (see the module)."""
    if 3 * incidents > models:
        raise ValueError(f"{incidents} incidents need {3 * incidents} models")
    with filled_registry(models, None) as registry, _webhook() as hook:
        rules = registry.folder / "alerts.yaml"
        channel = {"name": "bench", "type": "webhook", "target": hook.url}
        rules.write_text(  # every incident is told: no rate limit in the way
            json.dumps({
                "channels": [channel | {"rate_per_min": 10_000}],
                "rules": [{"name": "all", "channels": ["bench"]}],
            })
        )  # fmt: skip
        env = {**registry.env, "ATALAIA_ALERT_RULES_FILE": str(rules)}
        port = free_port()
        log = registry.folder / "serve.log"
        with (
            serve(
                atalaia_serve(port),
                port=port,
                ready_path="/ready",
                env=env,
                log_path=log,
            ) as server,
            httpx.Client(base_url=server.base_url, headers=registry.headers) as client,
        ):
            sent: dict[str, float] = {}
            m = registry.models
            for n in range(incidents):
                i = 3 * n  # one axis of each sensor: an incident each
                series = m.ids[i]
                value = float(m.center[i] + 10 * m.scale[i] * m.threshold[i])
                sent[series] = time.time()
                answer = client.post(
                    PREDICT + series, json={"timestamp": START + n, "value": value}
                ).json()
                assert answer["anomaly"], answer
                time.sleep(interval_s)
            deadline = time.monotonic() + 60.0
            while len(hook.arrived) < incidents and time.monotonic() < deadline:
                time.sleep(0.05)
    latencies = sorted(hook.arrived[s] - sent[s] for s in sent if s in hook.arrived)
    if len(latencies) < incidents:
        raise RuntimeError(f"{incidents - len(latencies)} notifications never came")
    p99 = float(np.quantile(latencies, 0.99))
    verdict = (
        f"{incidents} incidents, one every {interval_s} s: reading → webhook p50 "
        f"{statistics.median(latencies):.3f} s, p99 {p99:.3f} s, max "
        f"{latencies[-1]:.3f} s (target p99 ≤ {LATENCY_TARGET_S} s)"
    )
    return {
        "incidents": incidents,
        "interval_s": interval_s,
        "latency_p50_s": statistics.median(latencies),
        "latency_p99_s": p99,
        "latency_max_s": latencies[-1],
    }, verdict


START = 1_733_011_200.0


class _Hook(ThreadingHTTPServer):
    """Notes when each incident's notification arrived, by its peak's series."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Arrival)
        self.arrived: dict[str, float] = {}
        self.url = f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Arrival(BaseHTTPRequestHandler):
    server: _Hook

    def do_POST(self) -> None:
        at = time.time()
        body: dict[str, Any] = json.loads(
            self.rfile.read(int(self.headers["Content-Length"]))
        )
        incident = body.get("data", {}).get("incident", {})
        if body.get("event") == "incident.opened":
            self.server.arrived.setdefault(str(incident["peak"]["series_id"]), at)
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def _webhook() -> Iterator[_Hook]:
    hook = _Hook()
    threading.Thread(target=hook.serve_forever, args=(0.01,), daemon=True).start()
    try:
        yield hook
    finally:
        hook.shutdown()
        hook.server_close()
