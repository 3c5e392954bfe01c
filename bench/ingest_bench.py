"""Ingest with scoring against ingest alone, in one run.

The inference service (as deployed) over a registry of `models` production
z-score models. Requests are bulk ingests (`POST /series/points`, columns) of
one reading for each of `series_per_request` series, a minute after the
previous request's, from two client threads; each value is its model's centre
plus a model sigma of noise (about one reading in a hundred an anomaly, at
thresholds of 2.5 to 4 sigmas). Two loads take turns, `runs`
times each: readings of series with a production model (stored and scored,
their anomalies logged) and readings of as many series without one (stored
only: the same route and the same writes, without the scoring). Each run's
readings are new (no timestamp is sent twice), so every one is inserted. The
median run of each is kept; the target: with scoring ≥ 0.7 × without.
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass
from itertools import count

import httpx
import numpy as np

from atalaia.api.common.auth import Authenticator, Role
from bench._fleet import series_ids
from bench._report import percentiles
from bench._servers import Server
from bench.predict_bench import (
    ATALAIA,
    START,
    Figures,
    filled_registry,
    judge,
    serving_atalaia,
)

BULK = "/api/v1/series/points"
CLIENTS = 2
TARGETS = [("ratio_scored_vs_stored", "≥", 0.7)]


@dataclass(frozen=True, slots=True)
class Load:
    readings_per_s: float
    latencies_s: list[float]
    cpu_s: float  # the server's, over the run
    anomaly_rate: float  # of the readings sent


def ingest(
    models: int, series_per_request: int, duration_s: int, runs: int, url: str | None
) -> tuple[Figures, str]:
    """Median readings/s of each load, their ratio, latency and server CPU."""
    with filled_registry(models, url) as registry:
        token = Authenticator(registry.env["ATALAIA_JWT_SECRET"]).issue(
            subject="bench", role=Role.DATA_SCIENTIST, ttl_s=3600
        )
        headers = {"Authorization": f"Bearer {token}"}
        chosen = np.random.default_rng(3).choice(models, series_per_request, False)
        centre, sigma = registry.models.center[chosen], registry.models.scale[chosen]
        kinds = {
            "scored": [registry.models.ids[i] for i in chosen.tolist()],
            "stored": [f"plain_{s}" for s in series_ids(series_per_request)],
        }
        clock = count()  # each request a minute after the last, for both loads
        loads: dict[str, list[Load]] = {kind: [] for kind in kinds}
        with serving_atalaia(registry, "atalaia", ATALAIA) as server:
            for _ in range(runs):
                for kind, ids in kinds.items():
                    loads[kind].append(
                        _run(server, headers, ids, (centre, sigma), clock, duration_s)
                    )
    medians = {k: _median(v) for k, v in loads.items()}
    figures: Figures = {"models": models, "series_per_request": series_per_request}
    for kind, load in medians.items():
        figures[f"{kind}_readings_per_s"] = round(load.readings_per_s)
        latency = percentiles(load.latencies_s)
        figures |= {f"{kind}_{k}": round(v, 1) for k, v in latency.items()}
        figures[f"{kind}_anomaly_rate"] = round(load.anomaly_rate, 4)
        figures[f"{kind}_cpu_us_per_reading"] = round(
            1e6 * load.cpu_s / (load.readings_per_s * duration_s), 1
        )
    ratio = medians["scored"].readings_per_s / medians["stored"].readings_per_s
    figures["ratio_scored_vs_stored"] = round(ratio, 3)
    verdicts = judge(figures, TARGETS)
    lines = [
        f"{kind}: {figures[f'{kind}_readings_per_s']:,} readings/s, "
        f"p50 {figures[f'{kind}_p50_ms']} ms, "
        f"{figures[f'{kind}_cpu_us_per_reading']} µs of server CPU a reading"
        for kind in kinds
    ]
    return figures, "\n".join([*lines, *verdicts])


def _run(
    server: Server, headers: dict[str, str], ids: list[str],
    normal: tuple[np.ndarray, np.ndarray], clock: count[int], duration_s: float,
) -> Load:  # fmt: skip
    """Bulk ingests from CLIENTS threads for `duration_s`."""
    base_url = server.base_url
    rng = np.random.default_rng(4)
    lock = threading.Lock()
    latencies: list[float] = []
    sent, found = [0], [0]
    deadline = time.monotonic() + duration_s

    def client() -> None:
        with httpx.Client(base_url=base_url, headers=headers, timeout=60) as http:
            while time.monotonic() < deadline:
                with lock:
                    at = START + 60.0 * next(clock)
                body = {
                    "series_id": ids,
                    "timestamp": [at] * len(ids),
                    "value": rng.normal(*normal).tolist(),
                }
                started = time.perf_counter()
                answer = http.post(BULK, json=body)
                took = time.perf_counter() - started
                if answer.status_code != 200:
                    raise RuntimeError(f"ingest answered {answer.status_code}: "
                                       f"{answer.text[:300]}")  # fmt: skip
                with lock:
                    latencies.append(took)
                    sent[0] += len(ids)
                    found[0] += len(answer.json()["anomalies"])

    cpu_before = server.cpu_seconds()
    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    cpu = server.cpu_seconds() - cpu_before
    rate = found[0] / max(sent[0], 1)
    return Load(sent[0] / elapsed, latencies, cpu * duration_s / elapsed, rate)


def _median(loads: list[Load]) -> Load:
    middle = statistics.median_low([load.readings_per_s for load in loads])
    return next(load for load in loads if load.readings_per_s == middle)
