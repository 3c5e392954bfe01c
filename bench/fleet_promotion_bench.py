"""A fleet promotion as one operation (`POST /operations`) on PostgreSQL, and
how soon a running inference service serves it.

A fresh database on the local PostgreSQL (created and dropped here, unless
`--url` names an empty one, left in place) gets `series` series (three axes
a sensor), each with version 1 in Production and version 2 in Staging
(`bench._fleet.fill_promotable`, by COPY), then vacuumed and analyzed.

An inference service (`atalaia serve --role inference`) loads every v1; a
training service (`atalaia serve --role training`, whose runner thread runs
operations) takes `POST /operations` promoting every series. The operation
is polled every POLL_S until done. Then SAMPLE series spread over the fleet
are predicted (`/predict/batch`, columns) until every one is served by v2,
and the whole fleet is, to check. Figures: the POST's answer, the
operation's run (its own start → end), the POST → done as seen, and the
operation's end → the sample all served by v2, and the CPU time the training
and inference services used from the POST to done. Then the same for a rollback
of every series (`rollback_*`: back to v1). Targets: the promotion's run
≤ 60 s, and v2 served ≤ 5 s after its end.
"""

from __future__ import annotations

import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.db.migrate import upgrade_database
from atalaia.api.common.auth import Authenticator, Role
from bench._fleet import fill_promotable, fresh_database, series_ids
from bench._servers import Server, atalaia_serve, free_port, serve, service_env
from bench.fleet_grid_bench import vacuum
from bench.predict_bench import Figures, Target, judge

DATABASE = "atalaia_bench_fleet_ops"
POLL_S = 0.5  # the operation's progress, as the CLI follows it
PROBE_S = 0.1  # the sample's predictions
SAMPLE = 3_000
BATCH = 100_000  # readings a /predict/batch takes
TIMEOUT_S = 600.0
TARGETS: list[Target] = [
    ("run_s", "≤", 60),
    ("served_after_done_s", "≤", 5),
]


def fleet_promotion(series: int, url: str | None) -> tuple[Figures, str]:
    """Fill a database, then promote the whole fleet over HTTP while an
    inference service follows."""
    with (
        fresh_database(url, DATABASE) as db_url,
        tempfile.TemporaryDirectory() as folder,
    ):
        upgrade_database(db_url)
        figures = _fill(db_url, series)
        figures |= _promote(Path(folder), db_url, series_ids(series))
    verdicts = judge(figures, TARGETS)
    line = (
        f"{series:,} series promoted in {figures['run_s']} s "
        f"({figures['series_per_s']:,.0f}/s), served by inference "
        f"{figures['served_after_done_s']} s after"
    )
    return figures, "\n".join([line, *verdicts])


def _fill(url: str, series: int) -> Figures:
    started = time.perf_counter()
    engine = make_engine(url)
    try:
        fill_promotable(make_session_factory(engine), series_ids(series))
        vacuum(engine)
    finally:
        engine.dispose()
    return {"series": series, "fill_s": round(time.perf_counter() - started, 1)}


def _promote(home: Path, url: str, ids: list[str]) -> Figures:
    env, _ = service_env(home, url, rate_per_min=10_000)
    admin = Authenticator(env["ATALAIA_JWT_SECRET"]).issue(
        subject="bench", role=Role.ADMIN, ttl_s=3600
    )
    headers = {"Authorization": f"Bearer {admin}"}
    ports = free_port(), free_port()
    with (
        serve(atalaia_serve(ports[0], "inference"), port=ports[0], ready_path="/ready",
              env=env, log_path=home / "inference.log") as inference,
        serve(atalaia_serve(ports[1], "training"), port=ports[1], ready_path="/ready",
              env=env, log_path=home / "training.log") as training,
        httpx.Client(headers=headers, timeout=TIMEOUT_S) as http,
    ):  # fmt: skip
        sample = ids[:: max(len(ids) // SAMPLE, 1)]
        if _versions(http, inference, sample) != {1}:
            raise RuntimeError("inference does not serve version 1 before")
        figures = _operation(http, training, inference, "promote", sample, version=2)
        figures["whole_fleet_v2"] = int(_versions(http, inference, ids) == {2})
        back = _operation(http, training, inference, "rollback", sample, version=1)
    return figures | {f"rollback_{name}": value for name, value in back.items()}


def _operation(
    http: httpx.Client,
    training: Server,
    inference: Server,
    action: str,
    sample: list[str],
    *,
    version: int,
) -> Figures:
    """`action` on every series: its figures, to `sample` served by `version`."""
    body = {"action": action, "selector": {"all": True}, "reason": "bench"}
    cpu = inference.cpu_seconds(), training.cpu_seconds()
    asked = time.perf_counter()
    answer = _ok(http.post(f"{training.base_url}/api/v1/operations", json=body))
    accepted_ms = (time.perf_counter() - asked) * 1000
    ended = _until_done(http, training, answer["operation_id"])
    done_seen = time.perf_counter()
    inference_cpu, training_cpu = inference.cpu_seconds(), training.cpu_seconds()
    served_at = _until_served(http, inference, sample, version)
    run_s = _seconds(ended["started_at"], ended["finished_at"])
    ended_at = datetime.fromisoformat(ended["finished_at"]).timestamp()
    return {
        "accepted_ms": round(accepted_ms, 1),
        "run_s": round(run_s, 1),
        "series_per_s": round(ended["done"] / run_s),
        "done_seen_s": round(done_seen - asked, 1),
        "served_after_done_s": round(served_at - ended_at, 2),
        "training_cpu_s": round(training_cpu - cpu[1], 1),
        "inference_cpu_s": round(inference_cpu - cpu[0], 1),
    }


def _until_done(http: httpx.Client, training: Server, operation_id: str) -> Any:
    path = f"{training.base_url}/api/v1/operations/{operation_id}"
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        found = _ok(http.get(path))
        if found["status"] == "done":
            return found
        if found["status"] in ("failed", "cancelled"):
            raise RuntimeError(f"the operation ended {found['status']}: {found}")
        time.sleep(POLL_S)
    raise RuntimeError(f"the operation did not end in {TIMEOUT_S} s")


def _until_served(
    http: httpx.Client, inference: Server, sample: list[str], version: int
) -> float:
    """The moment (epoch s) every series of `sample` was served by `version`."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if _versions(http, inference, sample) == {version}:
            return time.time()
        time.sleep(PROBE_S)
    raise RuntimeError(f"inference did not serve v{version} in {TIMEOUT_S} s")


def _versions(http: httpx.Client, inference: Server, ids: list[str]) -> set[int]:
    """The versions serving `ids` (a reading each, BATCH a request)."""
    found: set[int] = set()
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        body = {
            "series_id": chunk,
            "timestamp": np.full(len(chunk), 1.7e9).tolist(),
            "value": np.full(len(chunk), 0.3).tolist(),
        }
        answer = _ok(http.post(f"{inference.base_url}/api/v1/predict/batch", json=body))
        found.update(answer["version"])
    return found


def _ok(answer: httpx.Response) -> Any:
    if answer.status_code not in (200, 202):
        raise RuntimeError(f"{answer.request.url} answered {answer.status_code}: "
                           f"{answer.text[:500]}")  # fmt: skip
    return answer.json()


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
