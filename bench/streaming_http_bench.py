"""Prediction with streaming (`forecast`) models beside z-score ones, over HTTP:
single readings and columnar batches, every reading fresh.

Two registries of the same N series: `forecast` models, copies of FITTED ones
fitted on two weeks of one-minute readings with a daily cycle (each version's
band and packed stream written as training registers them), and `zscore`
ones fitted on the same readings. Both servers run side by side; the
forecast one's state is rebuilt in the background after it starts (nothing
is stored: every series is warm once the rebuild has passed over it), and
the benchmark waits until a sample of series spread over the fleet answer
`state: "warm"`. A few answers of each are checked before the runs and again
after them (their `type`, their `state`, none stale: the clock is past every
timestamp wrk sent).

Every reading is fresh: wrk's Lua makes each body as it is sent, its
timestamp one second after the previous request's (one clock for the whole
benchmark, each run starting past every timestamp sent before), its value the
daily cycle at that time plus noise. A stale reading would be scored without
advancing its series' state, a cheaper path. A single reading goes to one of
up to SINGLE_SERIES series in turn; a batch holds `readings` distinct series
at one timestamp (BATCHES bodies of disjoint series, so that two requests in
flight never share a series). The servers are loaded in turn, runs
alternated; the run of median throughput of each is kept.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import numpy as np
import orjson

from atalaia.core.fitting import Fit, fit_series
from atalaia.core.series import Readings
from bench._fleet import series_ids
from bench._servers import Server
from bench._wrk import Request, lua_string, run_lua
from bench.predict_bench import (
    ATALAIA,
    BATCHES,
    SIDE_BY_SIDE_LOADS,
    START,
    Figures,
    Measured,
    Registry,
    Target,
    fetch_answers,
    judge,
    load_cells,
    load_label,
    markdown_table,
    measured,
    median_measured,
    registry_of,
    serving_atalaia,
)
from bench.reference_app import BATCH, PREDICT, Models

ALGORITHMS = ("zscore", "forecast")
FITTED = 20  # distinct models copied across each fleet
STEP = 60.0
TRAINING = 20_160  # readings fitted on: two weeks, a minute apart
DAY = 86_400.0
LEVEL, AMPLITUDE, NOISE = 10.0, 1.0, 0.3  # of every series' readings
NOISES = 1_009  # noise values wrk's Lua cycles through
SINGLE_SERIES = 20_000
CHECKED = 20  # single readings checked on each server
SAMPLED = 50  # series polled until warm
# On SQLite a streaming model's stored readings are one query a series, at
# start (catching up) and again in the rebuild: minutes for a fleet.
WAIT_S = 1_800.0
# Each load: its form, and the connections wrk keeps busy.
LOADS = SIDE_BY_SIDE_LOADS
TARGETS: list[Target] = [
    ("ratio_single_c64", "≥", 0.5),  # forecast / z-score requests/s
    ("ratio_columns", "≥", 0.4),  # forecast / z-score readings/s
]


class _Clock:
    """The next timestamp to send: every reading is after every one before."""

    def __init__(self, start: float) -> None:
        self.next = start

    def take(self, n: int = 1) -> float:
        first = self.next
        self.next += n
        return first


@dataclass(frozen=True)
class _Load:
    """The series each form of request reads, and the noise of their values."""

    singles: list[str]
    batches: list[list[str]]
    noise: list[float]

    @classmethod
    def of(cls, ids: Sequence[str], readings: int) -> _Load:
        rng = np.random.default_rng(3)
        if len(ids) < BATCHES * readings:
            raise ValueError(
                f"{BATCHES} batches of {readings} distinct series need "
                f"{BATCHES * readings} models, not {len(ids)}"
            )
        singles = rng.choice(len(ids), min(len(ids), SINGLE_SERIES), replace=False)
        batched = rng.choice(len(ids), BATCHES * readings, replace=False)
        return cls(
            [ids[i] for i in singles.tolist()],
            [[ids[i] for i in b] for b in batched.reshape(BATCHES, -1).tolist()],
            rng.normal(0, NOISE, NOISES).tolist(),
        )

    def lua(self, form: str, start: float) -> str:
        """wrk's `request` for `form`, its first timestamp `start`."""
        noise = ", ".join(map(repr, self.noise))
        head = f"""
local noise = {{ {noise} }}
local t = {start!r} - 1
local n = 0
local function at(t, k)
  return {LEVEL!r} + {AMPLITUDE!r} * math.sin(t * {2 * np.pi / DAY!r})
    + noise[(t + k) % #noise + 1]
end
"""
        if form == "single":
            return head + _SINGLE_LUA.format(
                paths=_lua_list(PREDICT + s for s in self.singles)
            )
        return head + _COLUMNS_LUA.format(
            path=lua_string(BATCH.encode()),
            ids=_lua_list(orjson.dumps(b).decode()[1:-1] for b in self.batches),
            sizes=", ".join(str(len(b)) for b in self.batches),
        )

    def request(self, form: str, index: int, t: float) -> Request:
        """The request wrk would send as `index`'th of `form` at `t`, made here."""
        if form == "single":
            sid = self.singles[index % len(self.singles)]
            body = {"timestamp": t, "value": self.value(t, 0)}
            return Request(PREDICT + sid, orjson.dumps(body))
        ids = self.batches[index % len(self.batches)]
        columns = {
            "series_id": ids,
            "timestamp": [t] * len(ids),
            "value": [self.value(t, k) for k in range(1, len(ids) + 1)],
        }
        return Request(BATCH, orjson.dumps(columns))

    def value(self, t: float, k: int) -> float:
        """The value wrk's Lua sends at `t`, `k`'th of its request."""
        cycle = LEVEL + AMPLITUDE * np.sin(t * (2 * np.pi / DAY))
        return float(cycle + self.noise[int(t + k) % len(self.noise)])


_SINGLE_LUA = """
local paths = {paths}
request = function()
  n = n % #paths + 1
  t = t + 1
  local body = string.format('{{"timestamp":%.0f,"value":%.6f}}', t, at(t, 0))
  return wrk.format("POST", paths[n], headers, body)
end
"""
_COLUMNS_LUA = """
local ids = {ids}
local sizes = {{ {sizes} }}
request = function()
  n = n % #ids + 1
  t = t + 1
  local stamp = string.format("%.0f", t)
  local values = {{}}
  for k = 1, sizes[n] do
    values[k] = string.format("%.6f", at(t, k))
  end
  local body = '{{"series_id":[' .. ids[n] .. '],"timestamp":['
    .. (stamp .. ","):rep(sizes[n] - 1) .. stamp .. '],"value":['
    .. table.concat(values, ",") .. ']}}'
  return wrk.format("POST", {path}, headers, body)
end
"""


def _lua_list(texts: Iterator[str] | Sequence[str]) -> str:
    return "{\n" + ",\n".join(lua_string(t.encode()) for t in texts) + "\n}"


def predict_streaming(
    models: int, readings: int, duration_s: int, runs: int
) -> tuple[Figures, str]:
    """POST /predict/{id} at c=64 and /predict/batch as columns, z-score and
    forecast models, every reading fresh."""
    fits = _fitted()
    ids = series_ids(models)
    load = _Load.of(ids, readings)
    clock = _Clock(START + STEP * (TRAINING + 1))  # after the training readings
    figures: Figures = {"models": models, "readings": readings}
    with ExitStack() as stack:
        servers: dict[str, Server] = {}
        registries: dict[str, Registry] = {}
        for name in ALGORITHMS:
            registry = stack.enter_context(_registry(name, fits[name], ids))
            registries[name] = registry
            started = time.monotonic()
            servers[name] = stack.enter_context(
                serving_atalaia(registry, name, ATALAIA, ready_s=WAIT_S)
            )
            figures[f"{name}_ready_s"] = time.monotonic() - started
        figures["forecast_warm_s"] = _wait_warm(
            servers["forecast"], registries["forecast"], ids, clock
        )
        for name in ALGORITHMS:
            _check(servers[name], registries[name], load, clock)
        done = _measure_alternately(servers, registries, load, clock, duration_s, runs)
        for name in ALGORITHMS:  # the runs' readings were all before the clock
            _check(servers[name], registries[name], load, clock)
    figures |= _figures(readings, done)
    verdicts = judge(figures, TARGETS)
    return figures, _table(done, readings, verdicts)


def _fitted() -> dict[str, list[Fit]]:
    """FITTED series of TRAINING one-minute readings with a daily cycle, fitted
    by each algorithm."""
    rng = np.random.default_rng(0)
    t = START + STEP * np.arange(TRAINING)
    cycle = LEVEL + AMPLITUDE * np.sin(t * (2 * np.pi / DAY))
    series = [
        Readings.of(t, cycle + rng.normal(0, NOISE, t.size)) for _ in range(FITTED)
    ]
    return {name: fit_series(name, {}, series) for name in ALGORITHMS}


@contextmanager
def _registry(
    algorithm: str, fits: Sequence[Fit], ids: list[str]
) -> Iterator[Registry]:
    """`fits` copied across the series `ids`, in production in a fresh registry."""
    chosen = [fits[i % len(fits)] for i in range(len(ids))]
    models = Models(
        ids,
        np.ones(len(ids), np.int64),
        center=[f.params.center for f in chosen],
        scale=[f.params.scale for f in chosen],
        threshold=[f.params.threshold for f in chosen],
    )
    bands = [f.band for f in chosen if f.band is not None] or None
    streams = [f.stream for f in chosen if f.stream is not None] or None
    with registry_of(models, None, algorithm, bands, streams=streams) as registry:
        yield registry


def _wait_warm(
    server: Server, registry: Registry, ids: list[str], clock: _Clock
) -> float:
    """Seconds until SAMPLED series spread over the fleet (its last one among
    them) answer warm, from now (the server is ready)."""
    sample = ids[:: max(1, len(ids) // SAMPLED)] + [ids[-1]]
    started = time.monotonic()
    while True:
        t = clock.take()
        body = {"series_id": sample, "timestamp": [t] * len(sample),
                "value": [LEVEL] * len(sample)}  # fmt: skip
        request = Request(BATCH, orjson.dumps(body))
        [answer] = fetch_answers(server, registry.headers, [request])
        if all(state == "warm" for state in answer["state"]):
            return time.monotonic() - started
        if time.monotonic() - started > WAIT_S:
            raise RuntimeError(f"forecast states not warm in {WAIT_S}s")
        time.sleep(0.2)


def _check(server: Server, registry: Registry, load: _Load, clock: _Clock) -> None:
    """Fail unless CHECKED single readings and a batch are answered by the
    registry's algorithm, fresh, warm if it is a streaming one."""
    name = registry.algorithm
    state = "warm" if name == "forecast" else None
    singles = [load.request("single", i, clock.take()) for i in range(CHECKED)]
    for answer in fetch_answers(server, registry.headers, singles):
        got = (answer["model_info"]["type"], answer["state"], answer["stale"])
        if got != (name, state, False):
            raise RuntimeError(f"{name} single: (type, state, stale) {got}")
    batches = [load.request("columns", 0, clock.take())]
    [batch] = fetch_answers(server, registry.headers, batches)
    for column, expected in (("type", name), ("state", state), ("stale", False)):
        if set(batch[column]) != {expected}:
            raise RuntimeError(f"{name} columns: {column} {set(batch[column])}")


def _measure_alternately(
    servers: Mapping[str, Server],
    registries: Mapping[str, Registry],
    load: _Load,
    clock: _Clock,
    duration_s: int,
    runs: int,
) -> dict[tuple[str, str], Measured]:
    """(algorithm, form) → the run of median throughput of `runs`, the servers
    loaded in turn (single readings first, z-score first)."""
    done: dict[tuple[str, str], list[Measured]] = {}
    for _ in range(runs):
        for form, connections in LOADS:
            for name in ALGORITHMS:
                lua = load.lua(form, clock.next)
                run = _measure_once(
                    servers[name], lua, connections, duration_s, registries[name]
                )
                # Past every request sent: those answered, one in flight each.
                clock.take(run.run.requests + run.run.errors + connections)
                done.setdefault((name, form), []).append(run)
    return {key: median_measured(runs) for key, runs in done.items()}


def _measure_once(
    server: Server, lua: str, connections: int, duration_s: int, registry: Registry
) -> Measured:
    return measured(
        server,
        lambda: run_lua(
            server.base_url,
            lua,
            connections=connections,
            duration_s=duration_s,
            headers=registry.headers,
        ),
    )


def _figures(readings: int, measured: Mapping[tuple[str, str], Measured]) -> Figures:
    figures: Figures = {}
    for (name, form), m in measured.items():
        prefix = f"{name}_{load_label(form)}_"
        if form == "columns":
            figures[f"{prefix}readings_per_s"] = round(m.run.requests_per_s * readings)
        figures.update(m.figures(prefix))
    rps = {key: m.run.requests_per_s for key, m in measured.items()}
    zscore, forecast = ALGORITHMS
    figures["ratio_single_c64"] = rps[forecast, "single"] / rps[zscore, "single"]
    figures["ratio_columns"] = rps[forecast, "columns"] / rps[zscore, "columns"]
    return figures


def _table(
    measured: Mapping[tuple[str, str], Measured], readings: int, verdicts: list[str]
) -> str:
    header = ["models", "load", "readings/s", "rps", "p50 ms", "p99 ms", "errors"]
    rows = [
        [
            *load_cells(name, form, m, readings),
        ]
        for (name, form), m in measured.items()
    ]
    return "\n".join([markdown_table([*header, "cpu s", "wrk cpu s"], rows), *verdicts])
