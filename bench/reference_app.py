"""Reference servers for the prediction benchmarks: the least a server can do.

They answer what atalaia's inference service answers for production z-score
models, from the models a benchmark wrote to the file named by `MODELS_ENV`,
with nothing else: no authentication, validation, metrics or fallback chain.

- `starlette_app`: idiomatic bare Starlette, one route, `JSONResponse`.
- `asgi_app`: a raw ASGI callable with orjson; it also scores batches with
  numpy (readings as rows or as columns in, columns out).

Serve either with `uvicorn --factory bench.reference_app:starlette_app`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

MODELS_ENV = "ATALAIA_BENCH_MODELS"
PREDICT = "/api/v1/predict/"
BATCH = "/api/v1/predict/batch"


class Models:
    """Every series' production z-score model, as a dict and as numpy columns."""

    def __init__(
        self,
        ids: Sequence[str],
        version: npt.ArrayLike,
        center: npt.ArrayLike,
        scale: npt.ArrayLike,
        threshold: npt.ArrayLike,
    ) -> None:
        self.ids = list(ids)
        self.version = np.asarray(version, np.int64)
        self.center = np.asarray(center, np.float64)
        self.scale = np.asarray(scale, np.float64)
        self.threshold = np.asarray(threshold, np.float64)
        self.index = {s: i for i, s in enumerate(self.ids)}
        self.by_id = dict(zip(self.ids, zip(
            self.version.tolist(), self.center.tolist(),
            self.scale.tolist(), self.threshold.tolist(), strict=True,
        ), strict=True))  # fmt: skip

    def save(self, path: Path) -> None:
        columns = {
            "series_id": self.ids,
            "version": self.version,
            "center": self.center,
            "scale": self.scale,
            "threshold": self.threshold,
        }
        path.write_bytes(orjson.dumps(columns, option=orjson.OPT_SERIALIZE_NUMPY))

    @classmethod
    def load(cls, path: Path) -> Models:
        c = orjson.loads(path.read_bytes())
        return cls(
            c["series_id"], c["version"], c["center"], c["scale"], c["threshold"]
        )

    @classmethod
    def from_env(cls) -> Models:
        return cls.load(Path(os.environ[MODELS_ENV]))

    def answer(
        self, series_id: str, timestamp: float, value: float
    ) -> dict[str, Any] | None:
        """The body of a single prediction, or None for an unknown series."""
        model = self.by_id.get(series_id)
        if model is None:
            return None
        version, center, scale, threshold = model
        score = abs(value - center) / (scale * threshold)
        return {
            "series_id": series_id,
            "timestamp": timestamp,
            "anomaly": score > 1.0,
            "anomaly_score": score,
            "model_info": {
                "version": version,
                "stage": "production",
                "type": "zscore",
                "loaded_from": "memory",
            },
            "confidence": "high",
        }

    def rows_of(self, series_ids: Sequence[str]) -> npt.NDArray[np.int64]:
        get = self.index.get
        return np.fromiter((get(s, -1) for s in series_ids), np.int64, len(series_ids))

    def score(
        self, rows: npt.NDArray[np.int64], values: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
        """(anomaly_score, anomaly) of readings of known rows."""
        score = np.abs(values - self.center[rows]) / (
            self.scale[rows] * self.threshold[rows]
        )
        return score, score > 1.0

    def answer_batch(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """Readings as rows (`points`) or as columns in, columns out.

        None when a series is unknown.
        """
        if "points" in body:
            points = body["points"]
            ids = [p["series_id"] for p in points]
            n = len(points)
            timestamps = np.fromiter((p["timestamp"] for p in points), np.float64, n)
            values = np.fromiter((p["value"] for p in points), np.float64, n)
        else:
            ids = body["series_id"]
            timestamps = np.asarray(body["timestamp"], np.float64)
            values = np.asarray(body["value"], np.float64)
        rows = self.rows_of(ids)
        if (rows < 0).any():
            return None
        score, anomaly = self.score(rows, values)
        n = len(ids)
        return {
            "count": n,
            "anomalies": int(anomaly.sum()),
            "series_id": ids,
            "timestamp": timestamps,
            "anomaly": anomaly,
            "anomaly_score": score,
            "version": self.version[rows],
            "stage": ["production"] * n,
            "type": ["zscore"] * n,
            "loaded_from": ["memory"] * n,
            "confidence": ["high"] * n,
        }


def starlette_app() -> Starlette:
    """Bare Starlette: POST /api/v1/predict/{series_id}, and GET /ready."""
    models = Models.from_env()

    async def predict(request: Request) -> Response:
        reading = await request.json()
        series_id = request.path_params["series_id"]
        answer = models.answer(series_id, reading["timestamp"], reading["value"])
        if answer is None:
            return JSONResponse({"detail": "unknown series"}, status_code=404)
        return JSONResponse(answer)

    async def ready(_request: Request) -> Response:
        return PlainTextResponse("ready")

    return Starlette(
        routes=[
            Route(PREDICT + "{series_id}", predict, methods=["POST"]),
            Route("/ready", ready),
        ]
    )


class AsgiReference:
    """A raw ASGI app: single and batch prediction with orjson, and GET /ready."""

    def __init__(self, models: Models) -> None:
        self.models = models

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        path: str = scope["path"]
        if path == "/ready":
            await _respond(send, 200, b'"ready"')
            return
        if scope["method"] != "POST" or not path.startswith(PREDICT):
            await _respond(send, 404, b'{"detail":"not found"}')
            return
        body = orjson.loads(await _read_body(receive))
        if path == BATCH:
            answer = self.models.answer_batch(body)
        else:
            series_id = path.removeprefix(PREDICT)
            answer = self.models.answer(series_id, body["timestamp"], body["value"])
        if answer is None:
            await _respond(send, 404, b'{"detail":"unknown series"}')
        else:
            await _respond(
                send, 200, orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)
            )


def asgi_app() -> AsgiReference:
    return AsgiReference(Models.from_env())


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _respond(send: Send, status: int, body: bytes) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
