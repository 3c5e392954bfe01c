"""atalaia's production z-score models in the serving stacks a user would pick instead.

Run with the Python of the peer's own virtualenv (`python -m bench peers` makes
them), on the models file a benchmark wrote (`bench.reference_app.Models.save`):

    python zscore_peers.py mlflow-save MODELS_JSON MODEL_DIR
        an MLflow pyfunc model holding every series' parameters as an artifact,
        to serve with `mlflow models serve -m MODEL_DIR --env-manager local`;
    python zscore_peers.py kserve MODELS_JSON PORT NAME
        a custom KServe model served by `kserve.ModelServer` on PORT, answering
        the V1 (`/v1/models/NAME:predict`) and V2 (`/v2/models/NAME/infer`) protocols.

Each reading is scored as atalaia scores it: anomaly_score = |value − center| /
(scale × threshold); anomaly when that ratio is above 1.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# series id → (version, center, scale, threshold)
Params = dict[str, tuple[int, float, float, float]]


def load_params(path: str) -> Params:
    """Every series' parameters, from the columns of a benchmark's models file."""
    c = json.loads(Path(path).read_text())
    rows = zip(c["version"], c["center"], c["scale"], c["threshold"], strict=True)
    return dict(zip(c["series_id"], rows, strict=True))


def score(
    params: Params, readings: Iterable[tuple[str, float]]
) -> list[dict[str, Any]]:
    """Anomaly, anomaly_score and model version of each (series id, value)."""
    answers = []
    for series_id, value in readings:
        version, center, scale, threshold = params[series_id]
        ratio = abs(value - center) / (scale * threshold)
        answers.append(
            {
                "anomaly": ratio > 1.0,
                "anomaly_score": ratio,
                "version": version,
            }
        )
    return answers


def mlflow_save(models_json: str, model_dir: str) -> None:
    """Save one pyfunc model holding every series' parameters (an artifact), with
    the signature of its input rows (checked on each request, as atalaia checks)."""
    import mlflow.pyfunc  # type: ignore[import-not-found]
    from mlflow.models import ModelSignature  # type: ignore[import-not-found]
    from mlflow.types import ColSpec, Schema  # type: ignore[import-not-found]

    class ZScoreModels(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
        """Rows of series_id, timestamp, value in; one record per reading out."""

        def load_context(self, context: Any) -> None:
            self.params = load_params(context.artifacts["params"])

        def predict(self, model_input: Any) -> list[dict[str, Any]]:
            readings = zip(model_input["series_id"], model_input["value"], strict=True)
            return score(self.params, readings)

    columns = [("string", "series_id"), ("double", "timestamp"), ("double", "value")]
    mlflow.pyfunc.save_model(
        model_dir,
        python_model=ZScoreModels(),
        artifacts={"params": models_json},
        signature=ModelSignature(inputs=Schema([ColSpec(*c) for c in columns])),
    )


def kserve_serve(models_json: str, port: str, name: str) -> None:
    """Serve a custom KServe model with one worker until stopped."""
    import kserve  # type: ignore[import-not-found]
    from kserve import InferOutput, InferRequest, InferResponse
    from kserve.utils.utils import generate_uuid  # type: ignore[import-not-found]

    class ZScoreModels(kserve.Model):  # type: ignore[misc]
        """V1 `instances` of {series_id, timestamp, value}, or V2 tensors of them."""

        def __init__(self) -> None:
            super().__init__(name)
            self.params = load_params(models_json)
            self.ready = True

        def predict(
            self, payload: Any, _headers: dict[str, str] | None = None
        ) -> dict[str, Any] | Any:
            if not isinstance(payload, InferRequest):
                readings = ((i["series_id"], i["value"]) for i in payload["instances"])
                return {"predictions": score(self.params, readings)}
            ids = payload.get_input_by_name("series_id").data
            values = payload.get_input_by_name("value").data
            answers = score(self.params, zip(ids, values, strict=True))
            shape = [len(answers)]
            return InferResponse(
                response_id=payload.id or generate_uuid(),
                model_name=name,
                infer_outputs=[
                    InferOutput(key, shape, datatype, [a[key] for a in answers])
                    for key, datatype in (
                        ("anomaly", "BOOL"),
                        ("anomaly_score", "FP64"),
                        ("version", "INT64"),
                    )
                ],
            )

    server = kserve.ModelServer(
        http_port=int(port), workers=1, enable_grpc=False, enable_latency_logging=False
    )
    # As atalaia serves: no line logged per request.
    for logger in ("uvicorn.access", "kserve.trace"):
        logging.getLogger(logger).setLevel(logging.WARNING)
    server.start([ZScoreModels()])


if __name__ == "__main__":
    match sys.argv[1:]:
        case ["mlflow-save", models_json, model_dir]:
            mlflow_save(models_json, model_dir)
        case ["kserve", models_json, port, name]:
            kserve_serve(models_json, port, name)
        case _:
            sys.exit(__doc__)
