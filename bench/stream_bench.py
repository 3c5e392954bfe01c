"""Streaming models in the serving path, in process (no HTTP in between): what
a `forecast` fleet costs against a `zscore` one in the same run.

- single: one reading a call (`score_one`), random series, each reading fresh;
- columns: batches of `batch` readings of distinct series (`score_batch`);
- fleet: one reading of every series (a minute of the fleet at one reading a
  series a minute) in batches, its CPU time as a share of one core's minute;
- state: the bytes of the fleet's streaming state in memory;
- rebuild: the fleet's state rebuilt from `depth` readings a series given in
  memory (the query to PostgreSQL apart), seconds; with `url` (a fresh
  PostgreSQL database), `depth` readings of every series stored there first,
  and the fleet rebuilt from them as a replica does at start
  (`rebuild_cold`), seconds.

The fleet's models are copies of a few fitted ones under other series ids:
scoring costs the same whatever the numbers are.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from atalaia.adapters.db.repositories import ReadingStore
from atalaia.adapters.db.serving import DatabaseServingStore
from atalaia.core.fitting import fit_series
from atalaia.core.series import Readings
from atalaia.core.serving import ServedModel
from atalaia.services.inference import data_plane
from atalaia.services.inference.candidates import Candidates
from atalaia.services.inference.heavy import HeavyModels
from atalaia.services.inference.streams import Cold, SeriesStreams, rebuild_cold
from atalaia.services.model_table import ModelTable, Source
from bench._fleet import database, series_ids

STEP = 60.0
FITTED = 20  # distinct models copied across the fleet


class _Serving:
    """The data plane's view of a predictor: a table and its streams (and
    no rollout's candidate)."""

    def __init__(self, table: ModelTable) -> None:
        self.table = table
        self.heavy = HeavyModels(load=None, budget_bytes=0)
        self.streams = SeriesStreams()
        self.candidates = Candidates(self.heavy)

    def due_lookups(self, _unknown: object) -> set[str]:
        return set()  # every series is in the table

    def look_up(self, _series_ids: object) -> dict[str, Source]:
        return {}


def _fitted(algorithm: str, rng: np.random.Generator) -> list[ServedModel]:
    models = []
    for i in range(FITTED):
        t = 1.7e9 + STEP * np.arange(20_000)
        v = 10 + np.sin(2 * np.pi * t / 86_400) + rng.normal(0, 0.3, t.size)
        [fit] = fit_series(algorithm, {}, [Readings.of(t, v)])
        p = fit.params
        band = fit.band.to_bytes() if fit.band is not None else None
        models.append(ServedModel(f"m{i}", 1, algorithm, p.center, p.scale,
                                  p.threshold, band, stream=fit.stream))  # fmt: skip
    return models


def _fleet(algorithm: str, ids: list[str], rng: np.random.Generator) -> _Serving:
    fitted = _fitted(algorithm, rng)
    table = ModelTable()
    table.set_models(
        [
            ServedModel(
                sid,
                1,
                algorithm,
                m.center,
                m.scale,
                m.threshold,
                m.band,
                stream=m.stream,
            )  # fmt: skip
            for sid, m in zip(
                ids, (fitted[i % FITTED] for i in range(len(ids))), strict=True
            )
        ],
        Source.MEMORY,
    )
    serving = _Serving(table)
    serving.streams.start_all(table)
    cold = serving.streams.cold(table, len(ids))
    serving.streams.rebuild(table, cold, {})
    return serving


def streaming(
    models: int, batch: int, single: int, depth: int, runs: int, url: str | None
) -> dict[str, float]:
    rng = np.random.default_rng(0)
    ids = series_ids(models)
    fleets = {name: _fleet(name, ids, rng) for name in ("zscore", "forecast")}
    clock = dict.fromkeys(fleets, 2000000000.0)  # each fleet's next reading time
    figures: dict[str, float] = {"models": float(models)}

    def one(name: str) -> float:
        serving, picks = fleets[name], rng.integers(0, models, single)
        chosen = [ids[i] for i in picks.tolist()]
        values = rng.normal(10, 0.3, single).tolist()
        started = time.perf_counter()
        for k, (sid, value) in enumerate(zip(chosen, values, strict=True)):
            data_plane.score_one(serving, sid, clock[name] + k, value)
        clock[name] += single
        return (time.perf_counter() - started) / single

    def columns(name: str) -> float:
        serving = fleets[name]
        picks = rng.choice(models, batch, replace=False)
        chosen = [ids[i] for i in picks.tolist()]
        values = rng.normal(10, 0.3, batch)
        started = time.perf_counter()
        for _ in range(20):
            clock[name] += 1
            data_plane.score_batch(serving, chosen, np.full(batch, clock[name]), values)
        return (time.perf_counter() - started) / (20 * batch)

    for _ in range(runs):  # interleaved: both fleets see the same machine
        for name in fleets:
            for kind, run in (("single", one), ("columns", columns)):
                key = f"{kind}_{name}_us"
                figures[key] = min(figures.get(key, np.inf), run(name) * 1e6)
    figures["single_ratio"] = (
        figures["single_zscore_us"] / figures["single_forecast_us"]
    )
    figures["columns_ratio"] = (
        figures["columns_zscore_us"] / figures["columns_forecast_us"]
    )
    figures["fleet_minute_core_share"] = _fleet_minute(
        fleets["forecast"], ids, batch, rng
    )
    figures["state_mb"] = _state_bytes(fleets["forecast"]) / 1e6
    figures["rebuild_s"] = _rebuild(fleets["forecast"].table, ids, depth, rng)
    if url is not None:
        figures["rebuild_from_database_s"] = _rebuild_from_database(
            fleets["forecast"].table, ids, depth, url, rng
        )
    return figures


def _fleet_minute(
    serving: _Serving, ids: list[str], batch: int, rng: np.random.Generator
) -> float:
    """CPU seconds to score one reading of every series, over 60 s."""
    order = rng.permutation(len(ids))
    values = rng.normal(10, 0.3, len(ids))
    t = 3e9
    started = time.process_time()
    for start in range(0, len(ids), batch):
        part = order[start : start + batch]
        data_plane.score_batch(serving, [ids[i] for i in part.tolist()],
                               np.full(part.size, t), values[part])  # fmt: skip
    return (time.process_time() - started) / 60.0


def _state_bytes(serving: _Serving) -> float:
    return float(serving.streams.nbytes())


def _rebuild(
    table: ModelTable, ids: list[str], depth: int, rng: np.random.Generator
) -> float:
    """Seconds to rebuild the whole fleet from `depth` readings a series."""
    serving = _Serving(table)
    serving.streams.start_all(table)
    cold = serving.streams.cold(table, len(ids))
    t = 4e9 + STEP * np.arange(depth)
    found = {sid: Readings.of(t, rng.normal(10, 0.3, depth)) for sid in ids}
    started = time.perf_counter()
    serving.streams.rebuild(table, Cold(cold.ids, cold.versions, cold.until), found)
    return time.perf_counter() - started


def _rebuild_from_database(
    table: ModelTable, ids: list[str], depth: int, url: str, rng: np.random.Generator
) -> float:
    """Seconds to rebuild the whole fleet from `depth` readings a series
    stored in the database at `url` (stored first, not timed)."""
    with tempfile.TemporaryDirectory() as home:
        engine = create_engine(database(Path(home), url))
    sessions = sessionmaker(engine)
    t = 5e9 + STEP * np.arange(depth)
    for start in range(0, len(ids), 10_000):
        with sessions() as session:
            batch = {
                sid: Readings.of(t, rng.normal(10, 0.3, depth))
                for sid in ids[start : start + 10_000]
            }
            ReadingStore(session).append_many(batch)
            session.commit()
    streams = SeriesStreams()
    streams.start_all(table)
    started = time.perf_counter()
    rebuild_cold(streams, lambda: table, DatabaseServingStore(sessions))
    seconds = time.perf_counter() - started
    engine.dispose()
    return seconds
