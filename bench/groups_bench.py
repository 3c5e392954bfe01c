"""What sensor groups cost the hot path.

`groups-cost`: single predictions (wrk, as `predict-single`) of N z-score
models by the inference service, with a token limited to a sensor group and
with an unlimited one, their runs interleaved (the same registry and
settings). The group holds `patterns` patterns, the last one covering every
series, so that each limited request pays the whole check (one regular
expression, compiled once for the token's groups) and is answered as the
unlimited one is; the target is ≥ 0.95 × the unlimited throughput.
"""

from __future__ import annotations

import json
from dataclasses import replace

import httpx
import numpy as np

from atalaia.api.common.auth import Authenticator, Role
from bench._servers import Server
from bench._wrk import Request
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

CONNECTIONS = 64
COST_TARGET = 0.95
GROUP = "fleet"


def group_patterns(n: int) -> list[str]:
    """`n` patterns: `n - 1` sites' that match no bench series, then one
    covering every series (`sensor_*`)."""
    return [f"site{i:03d}-line?-*" for i in range(n - 1)] + ["sensor_*"]


def groups_cost(
    models: int, patterns: int, duration_s: int, runs: int
) -> tuple[Figures, str]:
    """Single-predict throughput with a group-limited token and an unlimited
    one (see the module)."""
    with filled_registry(models, None) as registry:
        groups = {GROUP: group_patterns(patterns)}
        env = {**registry.env, "ATALAIA_ACCESS_GROUPS": json.dumps(groups)}
        token = Authenticator(registry.env["ATALAIA_JWT_SECRET"]).issue(
            subject="bench", role=Role.VIEWER, ttl_s=3600, groups=frozenset({GROUP})
        )
        limited = replace(
            registry, env=env, headers={"Authorization": f"Bearer {token}"}
        )
        unlimited = replace(registry, env=env)
        rng = np.random.default_rng(1)
        rows = rng.integers(0, models, DISTINCT_REQUESTS)
        ids, timestamps, values = make_readings(registry, rng, rows, sd=0.39)
        requests = single_requests((ids, timestamps, values))

        def check(_name: str, server: Server, served: Registry) -> None:
            _answered(server, served, requests[0])

        measured = interleaved(
            {"limited": limited, "unlimited": unlimited}, requests, CONNECTIONS,
            duration_s, runs, before=check,
        )  # fmt: skip
    ltd, free = measured["limited"], measured["unlimited"]
    ratio = ltd.run.requests_per_s / free.run.requests_per_s
    header = ["token", "c", "rps", "p50 ms", "p99 ms", "errors", "cpu s"]
    table_rows = [
        [mode, CONNECTIONS, *measured_cells(m)]
        for mode, m in (("limited", ltd), ("unlimited", free))
    ]
    verdict = (
        f"a token limited to a group of {patterns} patterns: {ratio:.3f} × an "
        f"unlimited one (target ≥ {COST_TARGET})"
    )
    figures: Figures = {
        "models": models,
        "patterns": patterns,
        **ltd.figures("limited_"),
        **free.figures("unlimited_"),
        "ratio": ratio,
    }
    return figures, f"{markdown_table([*header, 'wrk cpu s'], table_rows)}\n{verdict}"


def _answered(server: Server, registry: Registry, request: Request) -> None:
    """Fail unless the token's prediction is answered (not refused)."""
    response = httpx.post(
        server.base_url + request.path,
        content=request.body,
        headers={**registry.headers, "Content-Type": "application/json"},
    )
    if response.status_code != 200:
        raise RuntimeError(f"prediction refused: {response.text}")
