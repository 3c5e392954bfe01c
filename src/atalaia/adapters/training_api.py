"""The training service's batch route as a `BatchSubmitter`, over HTTP.

The service validates and stores the jobs and dispatches them through whatever
job queue it runs (in-process executor or broker): the caller needs neither.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import httpx

from atalaia.core.ports import SubmittedBatch
from atalaia.errors import DependencyUnavailable

BATCH_PATH = "/api/v1/training/batch"
SERVICE = "training service"
# A batch whose every series was refused: 422, or 429 when by the interval alone.
REFUSED_WHOLE = (422, 429)


class TrainingApiSubmitter:
    """POSTs batches to the training service with a bearer token from `token()`.

    `client` carries the service's base URL and timeouts; a failure to reach it,
    or any answer but 202 or a batch refused whole, raises DependencyUnavailable.
    """

    def __init__(self, client: httpx.Client, *, token: Callable[[], str]) -> None:
        self._client = client
        self._token = token

    def submit(
        self,
        series_ids: Sequence[str],
        *,
        algorithm: str,
        hyperparameters: Mapping[str, float],
        window_hours: float,
    ) -> SubmittedBatch:
        config = {"algorithm": algorithm, "hyperparameters": dict(hyperparameters)}
        body = {
            "series_ids": list(series_ids),
            "window_hours": window_hours,
            "config": config,
        }
        headers = {"Authorization": f"Bearer {self._token()}"}
        try:
            answer = self._client.post(BATCH_PATH, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DependencyUnavailable(SERVICE, type(exc).__name__) from exc
        if answer.status_code in REFUSED_WHOLE:  # no series could be trained
            return SubmittedBatch(batch_id="", accepted=0, rejected=_rejected(answer))
        if answer.status_code != 202:
            raise DependencyUnavailable(
                SERVICE, f"HTTP {answer.status_code}: {answer.text[:300]}"
            )
        accepted = answer.json()
        return SubmittedBatch(
            batch_id=accepted["batch_id"],
            accepted=accepted["accepted"],
            rejected=accepted["rejected"],
        )


def _rejected(answer: httpx.Response) -> list[dict[str, object]]:
    rejected: list[dict[str, object]] = answer.json()["rejected"]
    return rejected
