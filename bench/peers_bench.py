"""atalaia beside the serving stacks a user would pick instead: MLflow and KServe.

The same N production z-score models (parameters drawn per series) are served by
atalaia's inference service and by each peer from its own virtualenv, made once
in a cache folder with the versions of `PINS`: `mlflow models serve` of a pyfunc
model holding every series' parameters, and KServe's `ModelServer` with a custom
model answering its V1 and V2 protocols (`bench/peers/zscore_peers.py`), one
process each. The peers log no line per request, as atalaia.

Before timing, the peers' scoring code is checked in-process, atalaia against
the models it was given, and each peer against atalaia, on sample readings one
at a time and on a batch. Then wrk loads each with single readings of random
series and with batches of 1,000 readings as rows (V2: as tensors), at the same
connections; the run of median throughput of `runs` counts. Every request
carries a valid viewer JWT; the peers check none.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from bench._servers import Server, free_port, serve
from bench._wrk import Request
from bench.peers import zscore_peers
from bench.predict_bench import (
    ATALAIA,
    HOST,
    Figures,
    Measured,
    Registry,
    Target,
    Verdict,
    check_answers,
    fetch_answers,
    filled_registry,
    judge,
    make_readings,
    markdown_table,
    measure_load,
    measured_cells,
    serving_atalaia,
    verdict_of,
)
from bench.reference_app import BATCH, MODELS_ENV, PREDICT

# What each peer's virtualenv installs: MLflow's serving needs only mlflow-skinny
# (its scoring server is FastAPI on uvicorn) and pandas.
PINS = {
    "mlflow": ("mlflow-skinny==3.17.2", "pandas==3.1.1"),
    "kserve": ("kserve==0.21.0",),
}
CACHE = (
    Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    / "atalaia-bench"
    / "venvs"
)
SCRIPT = Path(zscore_peers.__file__)
MODEL = "zscore"  # the KServe model's name
DISTINCT_REQUESTS = 2_000  # single readings wrk cycles through
SAMPLES = 100  # of them, checked before timing, with the first batch
BATCHES = 6  # distinct batch bodies
BATCH_READINGS = 1_000
# Ratios of atalaia's requests/s to a peer's (issue's targets). The batch target
# is judged against V1, KServe's row form; the ratio to V2 is printed beside it.
TARGETS: list[Target] = [
    ("single_atalaia_vs_kserve_v1", "≥", 4),
    ("single_atalaia_vs_mlflow", "≥", 30),
    ("batch_atalaia_vs_kserve_v1", "≥", 2),
]

Reading = tuple[str, float, float]  # series id, timestamp, value


class Peers(StrEnum):
    NONE = "none"
    MLFLOW = "mlflow"
    KSERVE = "kserve"
    ALL = "all"


# -- how each system is asked ------------------------------------------------------


@dataclass(frozen=True)
class _Protocol:
    """One system's requests for single readings and batches, and its answers."""

    name: str
    path: str  # of a batch, and of a single reading unless `single_path`
    body: Callable[[Sequence[Reading]], Any]
    verdicts: Callable[[Any], list[Verdict]]
    single_path: str | None = None  # + series id, body {timestamp, value}

    def batch(self, readings: Sequence[Reading]) -> Request:
        return Request(self.path, orjson.dumps(self.body(readings)))

    def single(self, reading: Reading) -> Request:
        if self.single_path is None:
            return self.batch([reading])
        series_id, timestamp, value = reading
        body = {"timestamp": timestamp, "value": value}
        return Request(self.single_path + series_id, orjson.dumps(body))


def _rows(readings: Sequence[Reading]) -> list[dict[str, Any]]:
    return [{"series_id": s, "timestamp": t, "value": v} for s, t, v in readings]


def _tensors(readings: Sequence[Reading]) -> dict[str, Any]:
    columns = zip(*readings, strict=True)
    specs = (("series_id", "BYTES"), ("timestamp", "FP64"), ("value", "FP64"))
    return {
        "inputs": [
            {"name": name, "shape": [len(readings)], "datatype": kind, "data": data}
            for (name, kind), data in zip(specs, columns, strict=True)
        ]
    }


def _atalaia_verdicts(answer: Mapping[str, Any]) -> list[Verdict]:
    return [verdict_of(r) for r in answer.get("results", [answer])]


def _prediction_verdicts(answer: Mapping[str, Any]) -> list[Verdict]:
    return [
        (p["anomaly"], p["anomaly_score"], p["version"]) for p in answer["predictions"]
    ]


def _output_verdicts(answer: Mapping[str, Any]) -> list[Verdict]:
    out = {o["name"]: o["data"] for o in answer["outputs"]}
    return list(zip(out["anomaly"], out["anomaly_score"], out["version"], strict=True))


ATALAIA_API = _Protocol(
    "atalaia", BATCH, lambda r: {"points": _rows(r)}, _atalaia_verdicts, PREDICT
)
MLFLOW_API = _Protocol(
    "mlflow", "/invocations", lambda r: {"dataframe_records": _rows(r)},
    _prediction_verdicts,
)  # fmt: skip
KSERVE_V1 = _Protocol(
    "kserve_v1", f"/v1/models/{MODEL}:predict", lambda r: {"instances": _rows(r)},
    _prediction_verdicts,
)  # fmt: skip
KSERVE_V2 = _Protocol(
    "kserve_v2", f"/v2/models/{MODEL}/infer", _tensors, _output_verdicts
)


# -- the peers' servers ------------------------------------------------------------


def _run(argv: Sequence[str], timeout_s: float) -> None:
    """Run `argv` to its end; fail with the tail of its output."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed:\n{(done.stdout + done.stderr)[-3000:]}")


def ensure_venv(cache: Path, peer: str) -> Path:
    """`peer`'s virtualenv in `cache`, made with its pins unless already there."""
    venv = cache / peer
    stamp = venv / "bench-pins.txt"
    pins = "\n".join(PINS[peer])
    if stamp.exists() and stamp.read_text() == pins:
        return venv
    python = shutil.which("python3.11")
    if python is None:
        raise RuntimeError("python3.11 is needed to make the peers' virtualenvs")
    shutil.rmtree(venv, ignore_errors=True)
    _run([python, "-m", "venv", str(venv)], timeout_s=300)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    _run([*pip, *PINS[peer]], timeout_s=1800)
    stamp.write_text(pins)
    return venv


# No access log (as atalaia), no usage telemetry.
_QUIET = {"UVICORN_ACCESS_LOG": "false", "DO_NOT_TRACK": "true"}


@contextmanager
def _mlflow(registry: Registry, venv: Path) -> Iterator[Server]:
    """`mlflow models serve` of the pyfunc model, one worker, until the block ends."""
    model = registry.folder / "mlflow-model"
    python = venv / "bin" / "python"
    models_json = registry.env[MODELS_ENV]
    _run([str(python), str(SCRIPT), "mlflow-save", models_json, str(model)], 600)
    port = free_port()
    argv = [
        str(venv / "bin" / "mlflow"), "models", "serve", "-m", str(model),
        "--env-manager", "local", "--host", HOST, "-p", str(port), "-w", "1",
    ]  # fmt: skip
    # It starts uvicorn from PATH, as in an activated virtualenv.
    env = {**_QUIET, "PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '')}"}
    log = registry.folder / "mlflow.log"
    with serve(argv, port=port, ready_path="/ping", env=env, log_path=log) as server:
        yield server


@contextmanager
def _kserve(registry: Registry, venv: Path) -> Iterator[Server]:
    """KServe's ModelServer with the custom model, one worker, until the block ends."""
    port = free_port()
    argv = [
        str(venv / "bin" / "python"), str(SCRIPT), "kserve",
        registry.env[MODELS_ENV], str(port), MODEL,
    ]  # fmt: skip
    log = registry.folder / "kserve.log"
    with serve(
        argv, port=port, ready_path=f"/v2/models/{MODEL}/ready", env=_QUIET,
        log_path=log,
    ) as server:  # fmt: skip
        yield server


Serving = Callable[[Registry, Path], AbstractContextManager[Server]]
PEERS: dict[str, tuple[Serving, tuple[_Protocol, ...]]] = {
    "mlflow": (_mlflow, (MLFLOW_API,)),
    "kserve": (_kserve, (KSERVE_V1, KSERVE_V2)),
}


# -- the benchmark -----------------------------------------------------------------


def peers(
    models: int,
    which: Peers,
    cache: Path,
    connections: int,
    duration_s: int,
    runs: int,
) -> tuple[Figures, str]:
    """Single readings and batches under wrk: atalaia, then each peer, same models."""
    names = [name for name in PEERS if which in (Peers.ALL, name)]
    venvs = {name: ensure_venv(cache, name) for name in names}
    with filled_registry(models, None) as registry:
        rng = np.random.default_rng(3)
        bench = _Bench(
            registry,
            _sample(registry, rng, DISTINCT_REQUESTS),
            [_sample(registry, rng, BATCH_READINGS) for _ in range(BATCHES)],
            connections,
            duration_s,
            runs,
        )
        checked = [*bench.singles[:SAMPLES], *bench.batches[0]]
        models_given = [verdict_of(registry.models.answer(*r)) for r in checked]
        check_answers(
            "the peers' scoring", models_given, _peer_scoring(registry, checked)
        )
        with serving_atalaia(registry, "atalaia", ATALAIA) as server:
            atalaia = bench.check(server, ATALAIA_API, models_given)
            bench.measure(server, ATALAIA_API)
        for name in names:
            serving, protocols = PEERS[name]
            with serving(registry, venvs[name]) as server:
                for protocol in protocols:
                    bench.check(server, protocol, atalaia)
                    bench.measure(server, protocol)
    figures: Figures = {
        "models": models,
        "connections": connections,
        "batch_readings": BATCH_READINGS,
    }
    for (load, name), m in bench.measured.items():
        figures.update(m.figures(f"{load}_{name}_"))
    for (load, name), m in bench.measured.items():
        if name != ATALAIA_API.name:
            ours = bench.measured[load, ATALAIA_API.name].run.requests_per_s
            figures[f"{load}_atalaia_vs_{name}"] = ours / m.run.requests_per_s
    return figures, _summary(bench.measured, figures, names)


@dataclass
class _Bench:
    """The readings every system is asked, the load, and what was measured."""

    registry: Registry
    singles: list[Reading]
    batches: list[list[Reading]]
    connections: int
    duration_s: int
    runs: int
    measured: dict[tuple[str, str], Measured] = field(default_factory=dict)

    def check(
        self, server: Server, protocol: _Protocol, expected: list[Verdict]
    ) -> list[Verdict]:
        """The verdicts on the sample readings, one at a time, and on the first
        batch; fail unless they are `expected`."""
        asked = [
            *(protocol.single(r) for r in self.singles[:SAMPLES]),
            protocol.batch(self.batches[0]),
        ]
        answers = fetch_answers(server, self.registry.headers, asked)
        got = [
            (anomaly, score, version)
            for answer in answers
            for anomaly, score, version in protocol.verdicts(answer)
        ]
        check_answers(protocol.name, expected, got)
        return got

    def measure(self, server: Server, protocol: _Protocol) -> None:
        for load, requests in (
            ("single", [protocol.single(r) for r in self.singles]),
            ("batch", [protocol.batch(b) for b in self.batches]),
        ):
            self.measured[load, protocol.name] = measure_load(
                server,
                requests,
                self.connections,
                self.duration_s,
                self.runs,
                self.registry.headers,
            )


def _sample(registry: Registry, rng: np.random.Generator, n: int) -> list[Reading]:
    """`n` readings of random series (~15% anomalies)."""
    ids, timestamps, values = make_readings(
        registry, rng, rng.integers(0, len(registry.models.ids), n)
    )
    return list(zip(ids, timestamps.tolist(), values.tolist(), strict=True))


def _peer_scoring(registry: Registry, readings: Sequence[Reading]) -> list[Verdict]:
    """The peers' scoring code run here, on the models file they serve."""
    params = zscore_peers.load_params(registry.env[MODELS_ENV])
    answers = zscore_peers.score(params, ((s, v) for s, _, v in readings))
    return [(a["anomaly"], a["anomaly_score"], a["version"]) for a in answers]


def _summary(
    measured: Mapping[tuple[str, str], Measured], figures: Figures, names: list[str]
) -> str:
    header = ["system", "load", "readings/s", "rps", "p50 ms", "p99 ms", "errors"]
    rows = [
        [
            name,
            load,
            round(m.run.requests_per_s * (BATCH_READINGS if load == "batch" else 1)),
            *measured_cells(m),
        ]
        for (load, name), m in measured.items()
    ]
    targets = [t for t in TARGETS if t[0] in figures]
    ratios = [
        f"atalaia / {name}: {figures[f'single_atalaia_vs_{name}']:.1f}× on single "
        f"readings, {figures[f'batch_atalaia_vs_{name}']:.1f}× on batches"
        for name in (p.name for n in names for p in PEERS[n][1])
    ]
    pins = "; ".join(" ".join(PINS[n]) for n in names)
    return "\n".join([
        markdown_table([*header, "cpu s", "wrk cpu s"], rows),
        *ratios,
        *(judge(figures, targets) if targets else []),
        *([f"peers installed: {pins}"] if names else []),
    ])  # fmt: skip
