"""Prediction with seasonal models beside z-score ones: single readings, columnar
batches and the table in-process.

Two registries of N production models each, with the same series, centres and
spreads (`filled_registry`): z-score models, and seasonal ones with hour-of-week
bands (`bench._fleet.week_bands`). Both receive the same requests: the same
series at random times of a week (so every phase is hit), each value its band's
expected value plus N(0, 0.7) half-widths (~15% anomalies). Before timing,
every single answer and the first batch's answers are checked against the
library (`detection.BandModel.score` on each series' band): the same anomaly
and score, bit for bit. Both servers run side by side, loaded one at a time,
their runs alternated so that a drift of the machine weighs on both alike; the
run of median throughput of each is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import orjson

from atalaia.core.detectors import ModelParams
from atalaia.core.detectors.bands import flat_band
from atalaia.core.detectors.catalog import SEASONAL
from atalaia.core.detectors.period import HOUR, WEEK
from atalaia.core.detectors.phases import PhaseBand
from atalaia.detection import BandModel
from bench._servers import Server
from bench._wrk import Request
from bench.predict_bench import (
    ATALAIA,
    DISTINCT_REQUESTS,
    SIDE_BY_SIDE_LOADS,
    Figures,
    Measured,
    Readings,
    Registry,
    Target,
    Verdict,
    as_columns,
    batch_verdicts,
    check_answers,
    fetch_answers,
    filled_registry,
    judge,
    load_cells,
    load_label,
    make_batches,
    make_readings,
    markdown_table,
    measure_once,
    median_measured,
    serving_atalaia,
    single_requests,
    table_rate,
    verdict_of,
)
from bench.reference_app import BATCH

ALGORITHMS = ("zscore", SEASONAL.name)
# Each load: its form, and the connections wrk keeps busy.
LOADS = SIDE_BY_SIDE_LOADS
TARGETS: list[Target] = [
    ("ratio_single_c64", "≥", 0.8),  # seasonal / z-score requests/s
    ("ratio_columns", "≥", 0.6),  # seasonal / z-score readings/s
]


@dataclass(frozen=True)
class _Side:
    """One registry, the readings sent to it and the requests carrying them."""

    registry: Registry
    singles: Readings
    batches: list[Readings]
    requests: dict[str, list[Request]]  # by form: "single", "columns"

    @classmethod
    def of(cls, registry: Registry, readings: int, series_per_request: int) -> _Side:
        """The same series, times and noise for every registry of a size."""
        rng = np.random.default_rng(3)
        rows = rng.integers(0, len(registry.models.ids), DISTINCT_REQUESTS)
        singles = make_readings(registry, rng, rows, over_week=True)
        batches = make_batches(
            registry, rng, readings, series_per_request, over_week=True
        )
        requests = {
            "single": single_requests(singles),
            "columns": [Request(BATCH, orjson.dumps(as_columns(b))) for b in batches],
        }
        return cls(registry, singles, batches, requests)

    def check(self, server: Server) -> None:
        """Fail unless `server` answers every single reading and the first batch
        as the library does."""
        name, headers = self.registry.algorithm, self.registry.headers
        answers = fetch_answers(server, headers, self.requests["single"])
        check_answers(
            f"{name} single",
            library_verdicts(self.registry, self.singles),
            [verdict_of(a) for a in answers],
        )
        [batch] = fetch_answers(server, headers, self.requests["columns"][:1])
        check_answers(
            f"{name} columns",
            library_verdicts(self.registry, self.batches[0]),
            batch_verdicts(batch),
        )


def predict_seasonal(
    models: int, readings: int, series_per_request: int, duration_s: int, runs: int
) -> tuple[Figures, str]:
    """POST /predict/{id} at c=64 and /predict/batch as columns, z-score and
    seasonal models; `ModelTable.score` in-process."""
    with (
        filled_registry(models, None) as flat,
        filled_registry(models, None, SEASONAL.name) as seasonal,
    ):
        sides = [_Side.of(r, readings, series_per_request) for r in (flat, seasonal)]
        in_process = {
            side.registry.algorithm: table_rate(
                side.registry, side.batches, duration_s / 5, runs
            )
            for side in sides
        }
        with (
            serving_atalaia(flat, flat.algorithm, ATALAIA) as flat_server,
            serving_atalaia(seasonal, seasonal.algorithm, ATALAIA) as seasonal_server,
        ):
            servers = [flat_server, seasonal_server]
            for side, server in zip(sides, servers, strict=True):
                side.check(server)
            measured = _measure_alternately(sides, servers, duration_s, runs)
    figures = _figures(models, readings, series_per_request, measured, in_process)
    figures["hours_of_week_hit"] = _hours_hit(sides[1])
    verdicts = judge(figures, TARGETS)
    return figures, _table(measured, readings, figures, verdicts)


def _measure_alternately(
    sides: Sequence[_Side], servers: Sequence[Server], duration_s: int, runs: int
) -> dict[tuple[str, str], Measured]:
    """(algorithm, form) → the run of median throughput of `runs`, the servers
    loaded in turn (single readings first, z-score first)."""
    done: dict[tuple[str, str], list[Measured]] = {}
    for _ in range(runs):
        for form, connections in LOADS:
            for side, server in zip(sides, servers, strict=True):
                run = measure_once(
                    server,
                    side.requests[form],
                    connections,
                    duration_s,
                    side.registry.headers,
                )
                done.setdefault((side.registry.algorithm, form), []).append(run)
    return {key: median_measured(runs) for key, runs in done.items()}


def _hours_hit(side: _Side) -> int:
    """How many hours of the week the checked readings fall in."""
    times = np.concatenate([side.singles[1], side.batches[0][1]])
    return int(np.unique(np.mod(times, WEEK) // HOUR).size)


def library_model(registry: Registry, row: int) -> BandModel:
    """The library's model of the series at `row`, as its registry holds it."""
    if registry.bands is not None:
        band: PhaseBand = registry.bands[row]
    else:
        m = registry.models
        params = ModelParams(
            float(m.center[row]), float(m.scale[row]), float(m.threshold[row])
        )
        band = flat_band(params)
    return BandModel(registry.algorithm, {}, band)


def library_verdicts(registry: Registry, readings: Readings) -> list[Verdict]:
    """(anomaly, anomaly_score, version) of each reading, by the library's model
    of its series."""
    ids, timestamps, values = readings
    rows = registry.models.rows_of(ids)
    anomaly = np.zeros(rows.size, np.bool_)
    score = np.zeros(rows.size)
    for row in np.unique(rows).tolist():
        at = np.flatnonzero(rows == row)
        result = library_model(registry, row).score(timestamps[at], values[at])
        anomaly[at], score[at] = result.anomaly, result.anomaly_score
    version = registry.models.version[rows].tolist()
    return list(zip(anomaly.tolist(), score.tolist(), version, strict=True))


def _figures(
    models: int,
    readings: int,
    series_per_request: int,
    measured: dict[tuple[str, str], Measured],
    in_process: dict[str, float],
) -> Figures:
    figures: Figures = {
        "models": models,
        "readings": readings,
        "series_per_request": series_per_request,
    }
    for (name, form), m in measured.items():
        prefix = f"{name}_{load_label(form)}_"
        if form == "columns":
            figures[f"{prefix}readings_per_s"] = round(m.run.requests_per_s * readings)
        figures.update(m.figures(prefix))
    for name, per_s in in_process.items():
        figures[f"{name}_inproc_readings_per_s"] = round(per_s)
    rps = {key: m.run.requests_per_s for key, m in measured.items()}
    zscore, seasonal = ALGORITHMS
    figures["ratio_single_c64"] = rps[seasonal, "single"] / rps[zscore, "single"]
    figures["ratio_columns"] = rps[seasonal, "columns"] / rps[zscore, "columns"]
    figures["ratio_inproc"] = in_process[seasonal] / in_process[zscore]
    return figures


def _table(
    measured: dict[tuple[str, str], Measured],
    readings: int,
    figures: Figures,
    verdicts: Sequence[str],
) -> str:
    header = ["models", "load", "readings/s", "rps", "p50 ms", "p99 ms", "errors"]
    rows = [
        [
            *load_cells(name, form, m, readings),
        ]
        for (name, form), m in measured.items()
    ]
    zscore, seasonal = ALGORITHMS
    return "\n".join([
        markdown_table([*header, "cpu s", "wrk cpu s"], rows),
        f"in-process ModelTable.score, {readings:,} readings a call: "
        f"{zscore} {figures[f'{zscore}_inproc_readings_per_s']:,} readings/s, "
        f"{seasonal} {figures[f'{seasonal}_inproc_readings_per_s']:,} "
        f"({figures['ratio_inproc']:.2f}×)",
        *verdicts,
    ])  # fmt: skip
