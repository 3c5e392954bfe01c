"""Benchmarks of the embedded platform over HTTP: training accept, promotion latency."""

from __future__ import annotations

import json
import secrets
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from atalaia.api.common.auth import Role
from atalaia.api.common.resources import authenticator_for
from atalaia.cli.demo import embedded_server
from atalaia.settings import Settings
from bench._report import percentiles
from bench._servers import atalaia_serve, free_port, serve

START = 1_733_011_200.0
JSON = "application/json"


def _settings(home: Path) -> Settings:
    return Settings(home=home, log_level="WARNING", training_min_interval_s=0)


def _body(points: int, seed: int) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    timestamps = START + 60.0 * np.arange(points)
    values = (
        0.3 + 0.05 * np.sin(np.arange(points) / 229.0) + rng.normal(0, 0.01, points)
    )
    return {"timestamps": timestamps.tolist(), "values": values.tolist()}


def train_accept(requests: int, points: int) -> dict[str, float | int]:
    """Time POST /training/{id} with inline points to its 202, one at a time.

    The platform runs as `atalaia serve` in its own process, and bodies are
    encoded beforehand: the clock runs from sending to the answer, and neither
    the client's JSON encoding nor its share of a GIL is counted.
    """
    with tempfile.TemporaryDirectory() as home:
        secret = secrets.token_urlsafe(48)
        settings = Settings(home=Path(home), jwt_secret=secret)
        token = authenticator_for(settings).issue(
            subject="b", role=Role.ADMIN, ttl_s=3600
        )
        bodies = [json.dumps(_body(points, seed)).encode() for seed in range(requests)]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": JSON}
        port = free_port()
        argv = atalaia_serve(port)
        env = {
            "ATALAIA_HOME": home,
            "ATALAIA_JWT_SECRET": secret,
            "ATALAIA_LOG_LEVEL": "WARNING",
            "ATALAIA_TRAINING_MIN_INTERVAL_S": "0",
        }
        samples = []
        with (
            serve(argv, port=port, ready_path="/ready", env=env) as server,
            httpx.Client(
                base_url=server.base_url, headers=headers, timeout=60
            ) as client,
        ):
            for i, body in enumerate(bodies):
                started = time.perf_counter()
                response = client.post(f"/api/v1/training/bench_{i}", content=body)
                samples.append(time.perf_counter() - started)
                assert response.status_code == 202, response.text
    return {"requests": requests, "points": points, **percentiles(samples)}


def promote_visible(series: int) -> dict[str, float | int]:
    """Time from a promotion's answer to the first prediction by the new version."""
    with tempfile.TemporaryDirectory() as home:
        settings = _settings(Path(home))
        token = authenticator_for(settings).issue(
            subject="b", role=Role.ADMIN, ttl_s=3600
        )
        with (
            embedded_server(settings) as base,
            httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60
            ) as client,
        ):
            jobs = [
                client.post(f"/api/v1/training/bench_{i}", json=_body(10_000, i)).json()
                for i in range(series)
            ]
            for job in jobs:
                _wait_succeeded(client, job["job_id"])
            samples = [_promotion_delay(client, f"bench_{i}") for i in range(series)]
    return {"series": series, **percentiles(samples)}


def _wait_succeeded(client: httpx.Client, job_id: str) -> None:
    for _ in range(6000):
        status = client.get(f"/api/v1/training/jobs/{job_id}").json()["status"]
        if status == "succeeded":
            return
        if status in ("failed", "cancelled"):
            raise RuntimeError(f"job {job_id} {status}")
        time.sleep(0.01)
    raise RuntimeError(f"job {job_id} did not finish")


def _promotion_delay(client: httpx.Client, series_id: str) -> float:
    response = client.post(f"/api/v1/models/{series_id}/versions/1/promote", json={})
    promoted = time.perf_counter()
    assert response.status_code == 200, response.text
    reading = {"timestamp": START, "value": 0.3}
    while time.perf_counter() - promoted < 10:
        answer = client.post(f"/api/v1/predict/{series_id}", json=reading).json()
        if answer["model_info"]["version"] == 1:
            return time.perf_counter() - promoted
        time.sleep(0.005)
    raise RuntimeError(f"{series_id} v1 not served within 10 s")
