"""Prediction with isolation forests beside z-score models: single readings with
every forest in memory and with a tenth of them, columnar batches.

A few weeks of readings (`points` a minute apart, up to START: a daily cycle
with its own base, amplitude and hour of peak, plus noise; fixed seeds) are
fitted as training fits them (`core.fitting.fit_series`, default
hyperparameters): an isolation forest (the version's centre, spread and band,
and its trees) and a z-score model of each week. N series take them in turn;
each forest series has its own artifact, keyed as training keys it, in the
served home's artifact store. Three servers run side by side: the z-score
models, the forests with a memory budget (`ATALAIA_INFERENCE_MODEL_MEMORY_MB`)
holding every one, and the forests with a budget holding a tenth. All are sent
the same requests: single readings, then batches of columns, a minute apart
(the batches after the singles), each value its forest's expected value plus
one training sigma of noise.

Before timing, each server (fresh: no readings kept) answers the first singles
and the first batch, and every answer must equal the library's: the forest's
`score` over its series' readings in the order sent (each is later than those
before it, so the readings the service keeps are the previous ones), the
z-score model's `BandModel.score`. Then one batch holds a reading of every
series (the budget holding every forest then holds them), and the loads run,
the servers in turn (z-score first), `runs` times; the run of median throughput
of each is kept, with the heavy models' cache hits, misses and evictions it
caused (from /metrics).
"""

from __future__ import annotations

import hashlib
import statistics
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace

import httpx
import numpy as np
import orjson
from prometheus_client.parser import text_string_to_metric_families

from atalaia.core import series
from atalaia.core.detectors import forest
from atalaia.core.detectors.period import DAY
from atalaia.core.detectors.phases import PhaseBand
from atalaia.core.fitting import Fit, fit_series
from bench._fleet import series_ids
from bench._servers import Server
from bench._wrk import Request
from bench.predict_bench import (
    ATALAIA,
    DISTINCT_REQUESTS,
    SAMPLES,
    SIDE_BY_SIDE_LOADS,
    START,
    Figures,
    Measured,
    Readings,
    Registry,
    Values,
    Verdict,
    as_columns,
    batch_verdicts,
    check_answers,
    fetch_answers,
    load_cells,
    load_label,
    make_batches,
    make_readings,
    markdown_table,
    measure_once,
    median_measured,
    registry_of,
    serving_atalaia,
    single_requests,
    verdict_of,
)
from bench.reference_app import BATCH, Models
from bench.seasonal_bench import library_verdicts

# Each server: its name, its registry's family, the share of forests its budget holds.
SERVERS = (
    ("zscore", "zscore", 0.0),
    ("forest", forest.NAME, 1.0),
    ("forest_10pct", forest.NAME, 0.1),
)
# Each load: its form, and the connections wrk keeps busy.
LOADS = SIDE_BY_SIDE_LOADS
BUDGET = "ATALAIA_INFERENCE_MODEL_MEMORY_MB"
CACHE = "heavy_model_cache_"
COUNTED = ("hits", "misses", "evictions")
Counts = dict[str, float]


@dataclass(frozen=True)
class _Fleet:
    """The fitted weeks, the registries serving them and the requests sent."""

    forests: list[forest.Forest]  # by week
    registries: dict[str, Registry]  # by family
    singles: Readings
    batches: list[Readings]
    requests: dict[str, list[Request]]  # by form: "single", "columns"

    def forest_of(self, row: int) -> forest.Forest:
        return self.forests[row % len(self.forests)]

    def expected(self, family: str) -> tuple[list[Verdict], list[Verdict]]:
        """The library's verdicts on the checked singles and the first batch."""
        checked = [_head(self.singles, SAMPLES), self.batches[0]]
        ids = [s for ids, _, _ in checked for s in ids]
        timestamps = np.concatenate([ts for _, ts, _ in checked])
        values = np.concatenate([vs for _, _, vs in checked])
        if family == forest.NAME:
            verdicts = self._forest_verdicts(ids, timestamps, values)
        else:
            verdicts = library_verdicts(
                self.registries[family], (ids, timestamps, values)
            )
        cut = len(checked[0][0])
        return verdicts[:cut], verdicts[cut:]

    def _forest_verdicts(
        self, ids: list[str], timestamps: Values, values: Values
    ) -> list[Verdict]:
        if not (np.diff(timestamps) > 0).all():
            raise RuntimeError("the checked readings are not in time order")
        rows = self.registries[forest.NAME].models.rows_of(ids)
        score = np.empty(rows.size)
        for row in np.unique(rows).tolist():
            at = np.flatnonzero(rows == row)
            score[at] = self.forest_of(row).score(timestamps[at], values[at]).score
        return [(s > 1.0, s, 1) for s in score.tolist()]


def predict_forest(
    models: int,
    forests: int,
    points: int,
    readings: int,
    series_per_request: int,
    duration_s: int,
    runs: int,
) -> tuple[Figures, str]:
    """POST /predict/{id} at c=64 and /predict/batch as columns: z-score models,
    forests all in memory, a tenth of them in memory."""
    weeks = [_training_week(seed, points) for seed in range(forests)]
    fits = fit_series(forest.NAME, {}, weeks)
    with _fleet(models, fits, fit_series("zscore", {}, weeks), readings,
                series_per_request) as fleet:  # fmt: skip
        sizes = [f.nbytes for f in fleet.forests]
        with _servers(fleet, models, max(sizes)) as servers:
            for name, (server, registry) in servers.items():
                _check(fleet, name, server, registry)
                fetch_answers(server, registry.headers, [_every_series(fleet)])
            measured = _measure_alternately(fleet, servers, duration_s, runs)
            _refuse_failures(servers)
    fit_s = statistics.median(float(f.metrics["fit_seconds"]) for f in fits)
    figures: Figures = {
        "models": models, "forests": forests, "points": points,
        "forest_kb": round(statistics.mean(sizes) / 1024), "fit_s": fit_s,
        "readings": readings, "series_per_request": series_per_request,
    }  # fmt: skip
    figures |= _figures(measured, readings)
    return figures, _table(measured, readings)


def _training_week(seed: int, points: int) -> series.Readings:
    """`points` readings a minute apart up to START: a daily cycle with its own
    base, amplitude and hour of peak, plus noise of a tenth of the amplitude."""
    rng = np.random.default_rng(seed)
    timestamps = START - 60.0 * np.arange(points, 0, -1, dtype=np.float64)
    base, amplitude, peak = (
        rng.uniform(0.1, 1.0),
        rng.uniform(0.05, 0.3),
        rng.uniform(0, DAY),
    )
    cycle = np.sin(2 * np.pi * (timestamps - peak) / DAY)
    noise = rng.normal(0, amplitude / 10, points)
    return series.Readings.of(timestamps, base + amplitude * cycle + noise)


@contextmanager
def _fleet(
    n: int,
    forests: Sequence[Fit],
    zscores: Sequence[Fit],
    readings: int,
    series_per_request: int,
) -> Iterator[_Fleet]:
    """Series i takes week i mod the weeks' count, in both registries."""
    ids = series_ids(n)
    weeks = (np.arange(n) % len(forests)).tolist()
    blobs, bands = [_blob(f) for f in forests], [_band(f) for f in forests]
    artifacts = [_artifact(s, blobs[w]) for s, w in zip(ids, weeks, strict=True)]
    with ExitStack() as stack:
        registries = {
            forest.NAME: stack.enter_context(registry_of(
                _models(ids, [forests[w] for w in weeks]), None, forest.NAME,
                [bands[w] for w in weeks], artifacts,
            )),
            "zscore": stack.enter_context(
                registry_of(_models(ids, [zscores[w] for w in weeks]), None)
            ),
        }  # fmt: skip
        yield _requests(
            [forest.Forest.from_bytes(b) for b in blobs],
            registries, readings, series_per_request,
        )  # fmt: skip


def _blob(fit: Fit) -> bytes:
    if fit.artifact is None:
        raise RuntimeError("a forest's fit holds no trees")
    return fit.artifact


def _band(fit: Fit) -> PhaseBand:
    if fit.band is None:
        raise RuntimeError("a training week's forest found no daily cycle")
    return fit.band


def _artifact(series_id: str, blob: bytes) -> tuple[str, bytes]:
    """A forest's key and bytes, as training writes them."""
    return f"models/{series_id}/{hashlib.sha256(blob).hexdigest()[:32]}.npz", blob


def _models(ids: list[str], fits: Sequence[Fit]) -> Models:
    return Models(
        ids,
        np.ones(len(ids), np.int64),
        center=[f.params.center for f in fits],
        scale=[f.params.scale for f in fits],
        threshold=[f.params.threshold for f in fits],
    )


def _requests(
    forests: list[forest.Forest],
    registries: dict[str, Registry],
    readings: int,
    series_per_request: int,
) -> _Fleet:
    """Singles from START, then batches, each value within one training sigma."""
    registry = registries[forest.NAME]
    sd = 1 / forests[0].hyperparameters["threshold_sigma"]  # half-widths
    rng = np.random.default_rng(4)
    rows = rng.integers(0, len(registry.models.ids), DISTINCT_REQUESTS)
    singles = make_readings(registry, rng, rows, sd=sd)
    after = START + 60.0 * DISTINCT_REQUESTS
    batches = make_batches(
        registry, rng, readings, series_per_request, start=after, sd=sd
    )
    requests = {
        "single": single_requests(singles),
        "columns": [Request(BATCH, orjson.dumps(as_columns(b))) for b in batches],
    }
    return _Fleet(forests, registries, singles, batches, requests)


def _head(readings: Readings, n: int) -> Readings:
    ids, timestamps, values = readings
    return ids[:n], timestamps[:n], values[:n]


def _every_series(fleet: _Fleet) -> Request:
    """A batch of one reading of each series, after every reading sent before."""
    registry = fleet.registries[forest.NAME]
    rows = np.arange(len(registry.models.ids))
    later = START + 60.0 * (DISTINCT_REQUESTS + len(fleet.batches[0][0]))
    readings = make_readings(registry, np.random.default_rng(5), rows, start=later)
    return Request(BATCH, orjson.dumps(as_columns(readings)))


@contextmanager
def _servers(
    fleet: _Fleet, models: int, forest_bytes: int
) -> Iterator[dict[str, tuple[Server, Registry]]]:
    """Every server of SERVERS, started; its registry carries its budget."""
    with ExitStack() as stack:
        servers = {}
        for name, family, share in SERVERS:
            registry = fleet.registries[family]
            if family == forest.NAME:
                held = max(round(models * share), 1)
                budget = {BUDGET: repr(held * forest_bytes / 2**20)}
                registry = replace(registry, env={**registry.env, **budget})
            server = stack.enter_context(serving_atalaia(registry, name, ATALAIA))
            servers[name] = server, registry
        yield servers


def _check(fleet: _Fleet, name: str, server: Server, registry: Registry) -> None:
    """Fail unless `server` answers the first singles and batch as the library."""
    singles, batch = fleet.expected(registry.algorithm)
    requests = fleet.requests
    answers = fetch_answers(server, registry.headers, requests["single"][:SAMPLES])
    check_answers(f"{name} single", singles, [verdict_of(a) for a in answers])
    [answer] = fetch_answers(server, registry.headers, requests["columns"][:1])
    check_answers(f"{name} columns", batch, batch_verdicts(answer))


def cache_counts(server: Server) -> Counts:
    """The heavy models' cache figures in the server's /metrics, by name."""
    text = httpx.get(server.base_url + "/metrics", timeout=30).text
    return {
        family.name.removeprefix(CACHE): family.samples[0].value
        for family in text_string_to_metric_families(text)
        if family.name.startswith(CACHE)
    }


def _measure_alternately(
    fleet: _Fleet,
    servers: Mapping[str, tuple[Server, Registry]],
    duration_s: int,
    runs: int,
) -> dict[tuple[str, str], tuple[Measured, Counts]]:
    """(server, form) → the run of median throughput of `runs`, and the cache's
    counts during it; the servers loaded in turn."""
    done: dict[tuple[str, str], list[tuple[Measured, Counts]]] = {}
    for _ in range(runs):
        for form, connections in LOADS:
            for name, (server, registry) in servers.items():
                before = cache_counts(server)
                run = measure_once(server, fleet.requests[form], connections,
                                   duration_s, registry.headers)  # fmt: skip
                after = cache_counts(server)
                counts = {k: after[k] - before[k] for k in COUNTED}
                done.setdefault((name, form), []).append((run, counts))
    kept = {}
    for key, pairs in done.items():
        median = median_measured([run for run, _ in pairs])
        kept[key] = next(pair for pair in pairs if pair[0] is median)
    return kept


def _refuse_failures(servers: Mapping[str, tuple[Server, Registry]]) -> None:
    """Fail when a forest could not be read: its band answered instead."""
    for name, (server, _) in servers.items():
        failures = cache_counts(server)["load_failures"]
        if failures:
            raise RuntimeError(f"{name}: {failures:g} forests could not be read")


def _figures(
    measured: Mapping[tuple[str, str], tuple[Measured, Counts]], readings: int
) -> Figures:
    figures: Figures = {}
    for (name, form), (m, counts) in measured.items():
        prefix = f"{name}_{load_label(form)}_"
        if form == "columns":
            figures[f"{prefix}readings_per_s"] = round(m.run.requests_per_s * readings)
        figures.update(m.figures(prefix))
        if name != "zscore":
            figures.update({f"{prefix}{k}": int(v) for k, v in counts.items()})
    rps = {key: m.run.requests_per_s for key, (m, _) in measured.items()}
    for form in ("single", "columns"):
        label = "single_c64" if form == "single" else form
        figures[f"ratio_{label}"] = rps["forest", form] / rps["zscore", form]
        figures[f"ratio_{label}_10pct"] = (
            rps["forest_10pct", form] / rps["zscore", form]
        )
    return figures


def _table(
    measured: Mapping[tuple[str, str], tuple[Measured, Counts]], readings: int
) -> str:
    header = ["server", "load", "readings/s", "rps", "p50 ms", "p99 ms", "errors"]
    header += ["cpu s", "wrk cpu s", *COUNTED]
    rows = [
        [
            *load_cells(name, form, m, readings),
            *(int(counts[k]) if name != "zscore" else "" for k in COUNTED),
        ]
        for (name, form), (m, counts) in measured.items()
    ]
    return markdown_table(header, rows)
