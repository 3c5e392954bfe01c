"""What a canary costs the hot path.

`canary-cost`: single predictions (wrk, as `predict-single`) of N z-score
models by the inference service, every series the requests hit in a canary
whose candidate answers `percentage` % of its readings, and without any
rollout, their runs interleaved (two registries of the same models). The
canary's requests pay the split (a dict lookup and the reading's draw), the
candidate's scoring for its share, and its counters; the target is ≥ 0.9 ×
the throughput without.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
from sqlalchemy import insert

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.db.repositories import NewRollout, RolloutStore
from atalaia.adapters.db.tables import JobRow, VersionRow
from atalaia.core.rollout import CanaryPlan, Gates
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
COST_TARGET = 0.9


def canary_cost(
    models: int, percentage: float, duration_s: int, runs: int
) -> tuple[Figures, str]:
    """Single-predict throughput with canaries and without (see the module)."""
    with (
        filled_registry(models, None) as plain,
        filled_registry(models, None) as canaried,
    ):
        rng = np.random.default_rng(1)
        rows = rng.integers(0, models, DISTINCT_REQUESTS)
        ids, timestamps, values = make_readings(plain, rng, rows, sd=0.39)
        requests = single_requests((ids, timestamps, values))
        series = sorted(set(ids))
        _start_canaries(canaried, series, percentage)
        shares: list[float] = []

        def check(name: str, server: Server, registry: Registry) -> None:
            if name == "canary":
                shares.append(_candidate_share(server.base_url, registry, requests))

        measured = interleaved(
            {"canary": canaried, "none": plain}, requests, CONNECTIONS, duration_s,
            runs, before=check,
        )  # fmt: skip
    canary, none = measured["canary"], measured["none"]
    share = shares[-1]
    ratio = canary.run.requests_per_s / none.run.requests_per_s
    header = ["rollouts", "c", "rps", "p50 ms", "p99 ms", "errors", "cpu s"]
    table_rows = [
        [mode, CONNECTIONS, *measured_cells(m)]
        for mode, m in (("canary", canary), ("none", none))
    ]
    verdict = (
        f"{len(series)} series in a canary at {percentage:g} % (answered by the "
        f"candidate: {share:.1%} of a pass): {ratio:.3f} × without "
        f"(target ≥ {COST_TARGET})"
    )
    figures: Figures = {
        "models": models,
        "canary_series": len(series),
        "percentage": percentage,
        "candidate_share": round(share, 4),
        **canary.figures("canary_"),
        **none.figures("none_"),
        "ratio": ratio,
    }
    return figures, f"{markdown_table([*header, 'wrk cpu s'], table_rows)}\n{verdict}"


def _start_canaries(
    registry: Registry, series: Sequence[str], percentage: float
) -> None:
    """Version 2 of each of `series` in Staging (a band 5 % wider than v1's),
    in a running canary at `percentage`."""
    models = registry.models
    at = {s: i for i, s in enumerate(models.ids)}
    now = datetime.now(UTC)
    engine = make_engine(registry.env["ATALAIA_DATABASE_URL"])
    sessions = make_session_factory(engine)
    with sessions() as session:
        session.execute(insert(JobRow), [
            {"job_id": f"job-v2-{s}", "series_id": s, "status": "succeeded",
             "algorithm": "zscore", "hyperparameters": {}, "submitted_by": "bench",
             "created_at": now, "attempts": 1}
            for s in series
        ])  # fmt: skip
        session.execute(insert(VersionRow), [
            {"series_id": s, "version": 2, "stage": "staging", "algorithm": "zscore",
             "center": float(models.center[at[s]]),
             "scale": float(models.scale[at[s]]) * 1.05,
             "threshold": float(models.threshold[at[s]]), "metrics": {},
             "reference": {}, "lineage": {}, "job_id": f"job-v2-{s}",
             "created_at": now}
            for s in series
        ])  # fmt: skip
        plan = CanaryPlan(percentage, 15.0, 7_200.0)
        RolloutStore(session).add_many(
            [
                NewRollout(
                    s,
                    "canary",
                    2,
                    1,
                    percentage,
                    plan,
                    Gates(),
                    "",
                    now + timedelta(hours=2),
                    "bench",
                    "",
                )  # fmt: skip
                for s in series
            ],
            at=now,
        )
        session.commit()
    engine.dispose()


def _candidate_share(
    base_url: str, registry: Registry, requests: Sequence[Request]
) -> float:
    """The share of one pass over `requests` the candidates answered (each
    answer checked to name its role)."""
    roles = []
    with httpx.Client(base_url=base_url, headers=registry.headers) as client:
        for request in requests:
            answer = client.post(request.path, content=request.body).json()
            roles.append(answer["model_info"]["role"])
    assert set(roles) <= {"production", "canary"}, set(roles)
    return roles.count("canary") / len(roles)
