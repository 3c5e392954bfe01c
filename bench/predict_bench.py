"""Prediction over HTTP beside reference servers: single readings and batches.

Each benchmark puts N production z-score models (parameters drawn per series)
in a fresh registry, starts the inference service and the references of
`bench/reference_app.py` one after the other (the same models, uvicorn with the
same options: one process, uvloop/httptools, no access log, log level warning),
checks that each answers exactly as the reference does, then loads it with wrk
(one thread; the run of median throughput of `runs`). Every request carries a
valid viewer JWT; the references check none.
"""

from __future__ import annotations

import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import orjson

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.storage.local import LocalArtifactStore
from atalaia.api.common.auth import Authenticator, Role
from atalaia.core.detectors.catalog import SEASONAL
from atalaia.core.detectors.period import WEEK
from atalaia.core.detectors.phases import BandPools, PhaseBand
from atalaia.core.serving import ServedModel
from atalaia.services.model_table import ModelTable, Source
from bench._fleet import database, fill_registry, series_ids, week_bands
from bench._servers import Server, atalaia_serve, free_port, serve
from bench._wrk import Request, WrkResult, median_run, run_wrk
from bench.reference_app import BATCH, MODELS_ENV, PREDICT, Models

Figures = dict[str, float | int]
Verdict = tuple[bool, float, int | None]  # anomaly, anomaly_score, model version
Rows = npt.NDArray[np.int64]
Values = npt.NDArray[np.float64]

ATALAIA = "atalaia.api.inference:create_app"
STARLETTE = "bench.reference_app:starlette_app"
ASGI = "bench.reference_app:asgi_app"
HOST = "127.0.0.1"
START = 1_733_011_200.0
CONCURRENCY = (1, 16, 64)
DISTINCT_REQUESTS = 2_000  # single readings wrk cycles through
SAMPLES = 200  # of them, checked against the reference before timing
BATCHES = 6  # distinct batch bodies per form
# Two batches in flight keep one server process busy (one is read or scored
# while the other's answer is written) without queueing behind it.
BATCH_CONNECTIONS = 2
# (figure, ≥ or ≤, bound) of the issue's targets
Target = tuple[str, str, float]
SINGLE_TARGETS: list[Target] = [
    ("ratio_vs_starlette_c64", "≥", 0.7),
    ("atalaia_c64_p99_ms", "≤", 10),
    ("atalaia_c1_p50_ms", "≤", 0.5),
]
BATCH_TARGETS: list[Target] = [
    ("atalaia_rows_readings_per_s", "≥", 0.8e6),  # with a result object per reading
    ("atalaia_columns_readings_per_s", "≥", 2.5e6),
    ("inproc_table_readings_per_s", "≥", 50e6),
]


@dataclass(frozen=True)
class Registry:
    folder: Path
    # Each series' model as registered (a seasonal model's centre is its base).
    models: Models
    env: dict[str, str]  # of every server process
    headers: dict[str, str]  # of every request
    algorithm: str = "zscore"
    bands: list[PhaseBand] | None = None  # a seasonal registry's, by row

    def band_at(self, rows: Rows, timestamps: Values) -> tuple[Values, Values]:
        """The expected value and the band's half-width of series `rows` at
        `timestamps`, by the library."""
        if self.bands is None:
            m = self.models
            return m.center[rows], m.scale[rows] * m.threshold[rows]
        chosen, at = np.unique(rows, return_inverse=True)
        pools = BandPools.of([self.bands[row] for row in chosen.tolist()])
        return pools.at(at, timestamps)

    def served(self) -> list[ServedModel]:
        """The models as the inference table serves them."""
        m = self.models
        bands = [b.to_bytes() for b in self.bands] if self.bands else repeat(None)
        return list(
            map(
                ServedModel,
                m.ids,
                m.version.tolist(),
                repeat(self.algorithm),
                m.center.tolist(),
                m.scale.tolist(),
                m.threshold.tolist(),
                bands,
            )
        )


@dataclass(frozen=True)
class Measured:
    run: WrkResult  # the run of median throughput
    server_cpu_s: float  # used by the server (and its workers) during that run

    def figures(self, prefix: str) -> Figures:
        return {
            **self.run.figures(prefix),
            f"{prefix}cpu_s": self.server_cpu_s,
            f"{prefix}wrk_cpu_s": self.run.wrk_cpu_s,
        }


def predict_single(
    models: int, duration_s: int, runs: int, url: str | None
) -> tuple[Figures, str]:
    """POST /predict/{id} at each concurrency: atalaia (1 and 2 processes), refs."""
    with filled_registry(models, url) as registry:
        rng = np.random.default_rng(1)
        ids, timestamps, values = make_readings(
            registry, rng, rng.integers(0, models, DISTINCT_REQUESTS)
        )
        readings = list(zip(ids, timestamps.tolist(), values.tolist(), strict=True))
        requests = single_requests((ids, timestamps, values))
        expected = [verdict_of(registry.models.answer(*r)) for r in readings[:SAMPLES]]
        measured: dict[tuple[str, int], Measured] = {}
        for name, app, workers, concurrency in (
            ("atalaia", ATALAIA, 1, CONCURRENCY),
            ("atalaia2", ATALAIA, 2, (64,)),
            ("starlette", STARLETTE, 1, CONCURRENCY),
            ("asgi", ASGI, 1, CONCURRENCY),
        ):
            with serving_atalaia(registry, name, app, workers) as server:
                answers = fetch_answers(server, registry.headers, requests[:SAMPLES])
                check_answers(name, expected, [verdict_of(a) for a in answers])
                if workers > 1:  # the check's requests reached one of them only
                    _warm_up(server, requests, max(concurrency), registry.headers)
                for c in concurrency:
                    measured[name, c] = measure_load(
                        server, requests, c, duration_s, runs, registry.headers
                    )
    figures = _single_figures(models, measured)
    verdicts = judge(figures, SINGLE_TARGETS)
    return figures, _single_table(measured, figures, verdicts)


def predict_batch(
    models: int,
    readings: int,
    series_per_request: int,
    duration_s: int,
    runs: int,
    url: str | None,
) -> tuple[Figures, str]:
    """POST /predict/batch as rows and as columns, beside the reference; in-process."""
    with filled_registry(models, url) as registry:
        batches = make_batches(
            registry, np.random.default_rng(2), readings, series_per_request
        )
        columns = [as_columns(batch) for batch in batches]
        forms = {
            "rows": [Request(BATCH, orjson.dumps(_as_rows(c))) for c in columns],
            "columns": [Request(BATCH, orjson.dumps(c)) for c in columns],
        }
        reference = registry.models.answer_batch(columns[0])
        expected = batch_verdicts(
            orjson.loads(orjson.dumps(reference, option=orjson.OPT_SERIALIZE_NUMPY))
        )
        in_process = _in_process(registry, batches, duration_s / 5, runs)
        measured: dict[tuple[str, str], Measured] = {}
        for name, app in (("atalaia", ATALAIA), ("reference", ASGI)):
            with serving_atalaia(registry, name, app) as server:
                for form, requests in forms.items():
                    [answer] = fetch_answers(server, registry.headers, requests[:1])
                    check_answers(f"{name} {form}", expected, batch_verdicts(answer))
                    measured[name, form] = measure_load(
                        server,
                        requests,
                        BATCH_CONNECTIONS,
                        duration_s,
                        runs,
                        registry.headers,
                    )
    figures: Figures = {
        "models": models,
        "readings": readings,
        "series_per_request": series_per_request,
        "connections": BATCH_CONNECTIONS,
    }
    for (name, form), m in measured.items():
        prefix = f"{name}_{form}_"
        figures[f"{prefix}readings_per_s"] = round(m.run.requests_per_s * readings)
        figures.update(m.figures(prefix))
    figures["inproc_table_readings_per_s"] = round(in_process[0])
    figures["inproc_numpy_readings_per_s"] = round(in_process[1])
    verdicts = judge(figures, BATCH_TARGETS)
    return figures, _batch_table(measured, readings, figures, verdicts)


# -- the registry and the servers ---------------------------------------------------


@contextmanager
def filled_registry(
    n: int, url: str | None, algorithm: str = "zscore"
) -> Iterator[Registry]:
    """`n` production models in a fresh registry, and in a file for refs.

    Z-score models, or seasonal ones with hour-of-week bands around the same
    centres and spreads (`week_bands`)."""
    rng = np.random.default_rng(0)
    models = Models(
        series_ids(n),
        np.ones(n, np.int64),
        center=rng.uniform(0.1, 1.0, n),
        scale=rng.uniform(0.01, 0.1, n),
        threshold=rng.uniform(2.5, 4.0, n),
    )
    bands = None
    if algorithm == SEASONAL.name:
        bands = week_bands(rng, models.center, models.scale * models.threshold)
    with registry_of(models, url, algorithm, bands) as registry:
        yield registry


@contextmanager
def registry_of(
    models: Models,
    url: str | None,
    algorithm: str = "zscore",
    bands: list[PhaseBand] | None = None,
    artifacts: Sequence[tuple[str, bytes]] | None = None,
    streams: Sequence[bytes] | None = None,
) -> Iterator[Registry]:
    """`models` in production in a fresh registry (a seasonal model, a forest
    or a streaming model with its band), and in a file for refs; a forest's
    artifact (its key and bytes) in the served home's artifact store; a
    streaming model's packed params and state (`streams`)."""
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        if artifacts:
            store = LocalArtifactStore(home / "artifacts")
            for key, blob in artifacts:
                store.put(key, blob)
        params = [
            {"center": c, "scale": s, "threshold": t}
            for c, s, t in zip(
                models.center.tolist(),
                models.scale.tolist(),
                models.threshold.tolist(),
                strict=True,
            )
        ]
        url = database(home, url)
        engine = make_engine(url)
        fill_registry(
            make_session_factory(engine),
            models.ids,
            params,
            algorithm,
            bands,
            [key for key, _ in artifacts] if artifacts else None,
            streams,
        )
        engine.dispose()
        models.save(home / "models.json")
        secret = secrets.token_urlsafe(48)
        token = Authenticator(secret).issue(
            subject="bench", role=Role.VIEWER, ttl_s=3600
        )
        env = {
            "ATALAIA_HOME": str(home),
            "ATALAIA_DATABASE_URL": url,
            "ATALAIA_JWT_SECRET": secret,
            "ATALAIA_AUTH_ENABLED": "true",
            "ATALAIA_LOG_LEVEL": "WARNING",
            MODELS_ENV: str(home / "models.json"),
            "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        }
        headers = {"Authorization": f"Bearer {token}"}
        yield Registry(home, models, env, headers, algorithm, bands)


Readings = tuple[list[str], Values, Values]  # series ids, timestamps, values


def single_requests(readings: Readings) -> list[Request]:
    """One POST /predict/{series_id} a reading."""
    ids, timestamps, values = readings
    return [
        Request(PREDICT + s, orjson.dumps({"timestamp": t, "value": v}))
        for s, t, v in zip(ids, timestamps.tolist(), values.tolist(), strict=True)
    ]


def make_readings(
    registry: Registry,
    rng: np.random.Generator,
    rows: Rows,
    *,
    over_week: bool = False,
    start: float = START,
    sd: float = 0.7,
) -> Readings:
    """One reading per row, each its band's expected value plus N(0, `sd`)
    half-widths (0.7: ~15% anomalies): a minute apart from `start`, or at
    random times of the week after it (every hour of the week is hit)."""
    if over_week:
        timestamps = start + WEEK * rng.random(rows.size)
    else:
        timestamps = start + 60.0 * np.arange(rows.size, dtype=np.float64)
    expected, spread = registry.band_at(rows, timestamps)
    values = expected + spread * rng.normal(0, sd, rows.size)
    return [registry.models.ids[r] for r in rows.tolist()], timestamps, values


def make_batches(
    registry: Registry,
    rng: np.random.Generator,
    readings: int,
    series_per_request: int,
    *,
    over_week: bool = False,
    start: float = START,
    sd: float = 0.7,
) -> list[Readings]:
    """BATCHES batches of `readings` readings of `series_per_request` series each
    (`make_readings`' options, each batch from `start`)."""
    n = len(registry.models.ids)
    batches = []
    for _ in range(BATCHES):
        chosen = rng.choice(n, min(series_per_request, n), replace=False)
        rows = chosen[rng.integers(0, chosen.size, readings)]
        batches.append(
            make_readings(registry, rng, rows, over_week=over_week, start=start, sd=sd)
        )
    return batches


def as_columns(readings: Readings) -> dict[str, list[Any]]:
    """The body of a columnar batch."""
    ids, timestamps, values = readings
    return {
        "series_id": ids,
        "timestamp": timestamps.tolist(),
        "value": values.tolist(),
    }


def _as_rows(columns: Mapping[str, list[Any]]) -> dict[str, list[dict[str, Any]]]:
    return {
        "points": [
            {"series_id": s, "timestamp": t, "value": v}
            for s, t, v in zip(
                columns["series_id"],
                columns["timestamp"],
                columns["value"],
                strict=True,
            )
        ]
    }


@contextmanager
def serving_atalaia(
    registry: Registry, name: str, app: str, workers: int = 1, ready_s: float = 180.0
) -> Iterator[Server]:
    """`app` served on a free port until the block ends, all its workers started
    (ready within `ready_s`)."""
    port = free_port()
    if app == ATALAIA and workers == 1:  # the service as deployed
        argv = atalaia_serve(port, "inference")
    else:
        # Log level info only to see each worker start: without the access log,
        # uvicorn logs nothing per request.
        argv = [
            sys.executable, "-m", "uvicorn", "--factory", app, "--host", HOST,
            "--port", str(port), "--workers", str(workers), "--no-access-log",
            "--log-level", "info" if workers > 1 else "warning",
        ]  # fmt: skip
    log = registry.folder / f"{name}.log"
    with serve(
        argv,
        port=port,
        ready_path="/ready",
        env=registry.env,
        log_path=log,
        timeout_s=ready_s,
    ) as server:
        if workers > 1:
            _wait_started(log, workers)
        yield server


def _wait_started(log: Path, workers: int, timeout_s: float = 180.0) -> None:
    """Wait until each worker has started: /ready is answered by any one of them."""
    deadline = time.monotonic() + timeout_s
    while log.read_text().count("Application startup complete.") < workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{workers} workers not started in {timeout_s}s")
        time.sleep(0.1)


# -- answers ----------------------------------------------------------------------


def fetch_answers(
    server: Server, headers: Mapping[str, str], requests: Sequence[Request]
) -> list[Any]:
    """The JSON answer to each request, in turn; anything but 200 fails."""
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as client:
        answers = []
        for request in requests:
            response = client.post(
                request.path,
                content=request.body,
                headers={"Content-Type": "application/json"},
            )
            if response.status_code != 200:
                raise RuntimeError(
                    f"POST {request.path} answered {response.status_code}: "
                    f"{response.text[:300]}"
                )
            answers.append(response.json())
    return answers


def verdict_of(answer: Mapping[str, Any] | None) -> Verdict:
    if answer is None:
        raise RuntimeError("the reference knows no model for a benchmark series")
    return answer["anomaly"], answer["anomaly_score"], answer["model_info"]["version"]


def batch_verdicts(answer: Mapping[str, Any]) -> list[Verdict]:
    """Per reading of a batch answer, whether rows (`results`) or columns."""
    if "results" in answer:
        return [verdict_of(r) for r in answer["results"]]
    return list(
        zip(answer["anomaly"], answer["anomaly_score"], answer["version"], strict=True)
    )


def check_answers(name: str, expected: list[Verdict], got: list[Verdict]) -> None:
    """Fail unless `got` is `expected`, reading by reading."""
    if got == expected:
        return
    if len(got) != len(expected):
        raise RuntimeError(f"{name}: {len(got)} answers, expected {len(expected)}")
    i = next(i for i, (e, g) in enumerate(zip(expected, got, strict=True)) if e != g)
    raise RuntimeError(
        f"{name} differs from the reference at reading {i}: "
        f"(anomaly, anomaly_score, version) {got[i]} != {expected[i]}"
    )


# -- measuring --------------------------------------------------------------------


def _warm_up(
    server: Server,
    requests: Sequence[Request],
    connections: int,
    headers: Mapping[str, str],
) -> None:
    """One second of load, not counted, so that every worker has served."""
    run_wrk(
        server.base_url,
        requests,
        connections=connections,
        duration_s=1,
        headers=headers,
    )


def measure_load(
    server: Server,
    requests: Sequence[Request],
    connections: int,
    duration_s: int,
    runs: int,
    headers: Mapping[str, str],
) -> Measured:
    """The run of median throughput of `runs`, with the server's CPU time in it."""
    return median_measured(
        [
            measure_once(server, requests, connections, duration_s, headers)
            for _ in range(runs)
        ]
    )


def measure_once(
    server: Server,
    requests: Sequence[Request],
    connections: int,
    duration_s: int,
    headers: Mapping[str, str],
) -> Measured:
    """One run of wrk, with the server's CPU time in it."""
    return measured(
        server,
        lambda: run_wrk(
            server.base_url,
            requests,
            connections=connections,
            duration_s=duration_s,
            headers=headers,
        ),
    )


def measured(server: Server, load: Callable[[], WrkResult]) -> Measured:
    """The run of `load` (wrk on `server`), with the server's CPU time in it."""
    before = server.cpu_seconds()
    run = load()
    return Measured(run, server.cpu_seconds() - before)


def _in_process(
    registry: Registry, batches: Sequence[Readings], budget_s: float, runs: int
) -> tuple[float, float]:
    """Readings/s of atalaia's `ModelTable.score` and of the numpy reference."""
    models = registry.models
    numpy_args = [(models.rows_of(ids), values) for ids, _, values in batches]
    numpy_rates = [rate(models.score, numpy_args, budget_s) for _ in range(runs)]
    return table_rate(registry, batches, budget_s, runs), statistics.median(numpy_rates)


def table_rate(
    registry: Registry, batches: Sequence[Readings], budget_s: float, runs: int
) -> float:
    """Readings/s of `ModelTable.score` serving `registry`'s models (the median
    of `runs` runs of `budget_s`)."""
    table = ModelTable()
    table.set_models(registry.served(), Source.MEMORY)
    args = [(table.rows_of(ids), ts, values) for ids, ts, values in batches]
    return statistics.median(rate(table.score, args, budget_s) for _ in range(runs))


def interleaved(
    registries: Mapping[str, Registry],
    requests: Sequence[Request],
    connections: int,
    duration_s: int,
    runs: int,
    *,
    before: Callable[[str, Server, Registry], None] | None = None,
) -> dict[str, Measured]:
    """The inference service of each registry (by name) under wrk, its runs
    interleaved with the others' (the machine drifts between runs): the run
    of median throughput of each; `before` is called on each server started."""
    done: dict[str, list[Measured]] = {name: [] for name in registries}
    for _ in range(runs):
        for name, registry in registries.items():
            with serving_atalaia(registry, name, ATALAIA) as server:
                if before is not None:
                    before(name, server, registry)
                measure_once(server, requests, connections, 2, registry.headers)
                done[name].append(
                    measure_once(
                        server, requests, connections, duration_s, registry.headers
                    )
                )
    return {name: median_measured(found) for name, found in done.items()}


def median_measured(done: Sequence[Measured]) -> Measured:
    """The run of median throughput."""
    middle = median_run([m.run for m in done])
    return next(m for m in done if m.run is middle)


def rate(
    score: Callable[..., object],
    args: Sequence[tuple[Any, ...]],
    budget_s: float,
) -> float:
    """Readings scored per second by `score` over `args` in turn (the values
    last), for `budget_s`."""
    per_pass = sum(a[-1].size for a in args)
    done, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < budget_s:
        for a in args:
            score(*a)
        done += per_pass
    return done / elapsed


# -- reporting --------------------------------------------------------------------


def _single_figures(
    models: int, measured: Mapping[tuple[str, int], Measured]
) -> Figures:
    figures: Figures = {"models": models}
    for (name, c), m in measured.items():
        figures.update(m.figures(f"{name}_c{c}_"))
    rps = {name: m.run.requests_per_s for (name, c), m in measured.items() if c == 64}
    figures["ratio_vs_starlette_c64"] = rps["atalaia"] / rps["starlette"]
    figures["scaling_2proc_c64"] = rps["atalaia2"] / rps["atalaia"]
    return figures


def _single_table(
    measured: Mapping[tuple[str, int], Measured], figures: Figures, verdicts: list[str]
) -> str:
    return "\n".join([
        markdown_table(
            ["server", "c", "rps", "p50 ms", "p99 ms", "errors", "cpu s", "wrk cpu s"],
            [[name, c, *measured_cells(m)] for (name, c), m in measured.items()],
        ),
        *verdicts,
        f"atalaia with 2 processes at c=64: {figures['scaling_2proc_c64']:.2f} × "
        "the rps of one",
    ])  # fmt: skip


def _batch_table(
    measured: Mapping[tuple[str, str], Measured],
    readings: int,
    figures: Figures,
    verdicts: list[str],
) -> str:
    header = ["server", "form", "readings/s", "rps", "p50 ms", "p99 ms", "errors"]
    rows = [
        [name, form, round(m.run.requests_per_s * readings), *measured_cells(m)]
        for (name, form), m in measured.items()
    ]
    return "\n".join([
        markdown_table([*header, "cpu s", "wrk cpu s"], rows),
        f"in-process, {readings:,} readings a call: ModelTable.score "
        f"{_number(figures['inproc_table_readings_per_s'])} readings/s, numpy "
        f"reference {_number(figures['inproc_numpy_readings_per_s'])} readings/s",
        *verdicts,
    ])  # fmt: skip


def judge(figures: Figures, targets: Sequence[Target]) -> list[str]:
    """One line per target, met or not; sets figures["target_met"]."""
    lines, met = [], True
    for key, op, bound in targets:
        value = figures[key]
        ok = value >= bound if op == "≥" else value <= bound
        met = met and ok
        lines.append(
            f"target {key} {op} {_number(bound)}: {_number(value)}, {_met(ok)}"
        )
    figures["target_met"] = met
    return lines


# The loads of the benchmarks that serve two kinds of models side by side.
SIDE_BY_SIDE_LOADS = (("single", 64), ("columns", BATCH_CONNECTIONS))


def load_label(form: str) -> str:
    """A load's name in the figures: `c64` for single readings."""
    return f"c{dict(SIDE_BY_SIDE_LOADS)['single']}" if form == "single" else form


def load_cells(name: str, form: str, m: Measured, readings: int) -> list[object]:
    """A side-by-side table's row: the server, the load, readings/s and
    `measured_cells` (a batch holds `readings`)."""
    per_request = 1 if form == "single" else readings
    return [
        name,
        load_label(form),
        round(m.run.requests_per_s * per_request),
        *measured_cells(m),
    ]


def measured_cells(m: Measured) -> list[object]:
    r = m.run
    return [
        round(r.requests_per_s),
        f"{r.p50_ms:.3f}",
        f"{r.p99_ms:.3f}",
        r.errors,
        f"{m.server_cpu_s:.2f}",
        f"{r.wrk_cpu_s:.2f}",
    ]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [list(header), *([str(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells
    )


def _number(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"
