"""What tracing costs the hot path.

`tracing`: single predictions (wrk, as `predict-single`) of N z-score models by
the inference service, its runs interleaved in four set-ups of the same
registry: tracing off (no OTEL_* variable); tracing configured as in
production with sampling off (parent-based ratio 0, an OTLP endpoint): the
requests, carrying no trace, are not traced; 1 % of the requests sampled; and
every request sampled. The sampled spans are recorded and exported nowhere:
the recording's cost alone. The target: sampling off ≥ 0.95 × off.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from atalaia.cli.demo import free_port
from atalaia.tracing import requested
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


def set_ups(registry: Registry) -> dict[str, Registry]:
    """The registry served with tracing off, sampling off, 1 % and every request."""
    unsampled = {
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",
    }
    recorded = {"OTEL_TRACES_EXPORTER": "none"}
    percent = {
        **recorded,
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.01",
    }
    sampled = {**recorded, "OTEL_TRACES_SAMPLER": "always_on"}
    env = registry.env
    return {
        "off": registry,
        "unsampled": dataclasses.replace(registry, env={**env, **unsampled}),
        "1pct": dataclasses.replace(registry, env={**env, **percent}),
        "sampled": dataclasses.replace(registry, env={**env, **sampled}),
    }


def tracing_cost(models: int, duration_s: int, runs: int) -> tuple[Figures, str]:
    """Single-predict throughput in each of `set_ups`."""
    if requested():
        raise ValueError("unset the OTEL_* variables: `off` must run without them")
    with filled_registry(models, None) as registry:
        rng = np.random.default_rng(1)
        rows = rng.integers(0, models, DISTINCT_REQUESTS)
        ids, timestamps, values = make_readings(registry, rng, rows, sd=0.39)
        requests = single_requests((ids, timestamps, values))
        measured = interleaved(
            set_ups(registry), requests, CONNECTIONS, duration_s, runs
        )
    off = measured["off"].run.requests_per_s
    ratios = {name: m.run.requests_per_s / off for name, m in measured.items()}
    header = ["tracing", "c", "rps", "p50 ms", "p99 ms", "errors", "cpu s"]
    table_rows = [
        [name, CONNECTIONS, *measured_cells(m)] for name, m in measured.items()
    ]
    verdict = (
        f"sampling off: {ratios['unsampled']:.3f} × off (target ≥ {COST_TARGET}); "
        f"1 % sampled: {ratios['1pct']:.3f} ×; every request: {ratios['sampled']:.3f} ×"
    )
    figures: Figures = {"models": models}
    for name, m in measured.items():
        figures.update(m.figures(f"{name}_"))
    figures["ratio_unsampled"] = ratios["unsampled"]
    figures["ratio_1pct"] = ratios["1pct"]
    figures["ratio_sampled"] = ratios["sampled"]
    return figures, f"{markdown_table([*header, 'wrk cpu s'], table_rows)}\n{verdict}"
