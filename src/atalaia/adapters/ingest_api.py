"""The inference service's columnar ingest route (`POST /series/points`), over HTTP.

The service stores the readings (idempotent per series and timestamp) and
scores them on the way in, so a sender needs neither the database nor the
models. One keep-alive client; vendor errors become the domain's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import httpx
import orjson

from atalaia.errors import DependencyUnavailable, InvalidInput

INGEST_PATH = "/api/v1/series/points"
SERVICE = "ingest service"


class IngestApiSender:
    """POSTs columnar batches with a bearer token from `token()`.

    `client` carries the service's base URL and timeouts. A 422 (readings the
    service refuses: they will never be stored) raises InvalidInput with the
    service's rule; a failure to reach it or any other answer but 200 raises
    DependencyUnavailable (worth retrying).
    """

    def __init__(self, client: httpx.Client, *, token: Callable[[], str]) -> None:
        self._client = client
        self._token = token

    def send(
        self,
        series_ids: Sequence[str],
        timestamps: Sequence[float],
        values: Sequence[float],
    ) -> int:
        """Store and score the readings; how many were new."""
        body = orjson.dumps(
            {"series_id": series_ids, "timestamp": timestamps, "value": values}
        )
        headers = {
            "Authorization": f"Bearer {self._token()}",
            "Content-Type": "application/json",
        }
        try:
            answer = self._client.post(INGEST_PATH, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DependencyUnavailable(SERVICE, type(exc).__name__) from exc
        if answer.status_code == 422:
            refused = answer.json()
            detail, rule = str(refused.get("detail")), refused.get("rule", "refused")
            raise InvalidInput(detail, rule=str(rule))
        if answer.status_code != 200:
            raise DependencyUnavailable(
                SERVICE, f"HTTP {answer.status_code}: {answer.text[:300]}"
            )
        inserted: int = answer.json()["inserted"]
        return inserted
