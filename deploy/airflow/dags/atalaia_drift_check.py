"""Drift checks of every production model, through atalaia's API.

Lists the series with a production version (`GET /models`, page by page), reads
each one's `GET /models/{series_id}/metrics?window=…` and retrains those whose
`drift_detection.data_drift_detected` is true in one `POST /training/batch`.
Cron schedule (UTC): ATALAIA_DRIFT_SCHEDULE, every 6 hours by default.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from typing import Any

from atalaia_api import ApiError, AtalaiaApi

try:  # Airflow 3
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task

SCHEDULE = os.environ.get("ATALAIA_DRIFT_SCHEDULE", "0 */6 * * *")
PARAMS = {
    "window": "24h",  # the recent readings compared with the training data
    "prefix": "",  # only the series whose id starts with it ("": every one)
    "concurrency": 4,  # metrics requests in flight
    "retrain_window_hours": 168,
    "algorithm": "auto",
}

log = logging.getLogger(__name__)


def drifted(api: AtalaiaApi, window: str, series_id: str) -> bool:
    """Whether the series' recent readings drifted from its training data."""
    try:
        metrics = api.get(f"/models/{series_id}/metrics", window=window)
    except ApiError as exc:
        if exc.status == 404:  # its versions were deleted since the listing
            return False
        raise
    return bool(metrics["drift_detection"]["data_drift_detected"])


@task
def find_drifted(**context: Any) -> list[str]:
    """The production series whose data drifted."""
    params = context["params"]
    prefix = {"prefix": params["prefix"]} if params["prefix"] else {}
    with AtalaiaApi.configured() as api:
        models = api.pages("/models", "models", limit=1000, **prefix)
        production = [m["series_id"] for m in models if m["production_version"]]
        check = partial(drifted, api, params["window"])
        with ThreadPoolExecutor(params["concurrency"]) as pool:
            found = [
                s
                for s, d in zip(production, pool.map(check, production), strict=True)
                if d
            ]
    log.info("%d of %d production series drifted", len(found), len(production))
    return found


@task
def retrain_drifted(series_ids: list[str], **context: Any) -> str | None:
    """Queue the drifted series' retraining; the batch's id (None: none drifted)."""
    if not series_ids:
        return None
    params = context["params"]
    body = {
        "series_ids": series_ids,
        "window_hours": params["retrain_window_hours"],
        "config": {"algorithm": params["algorithm"]},
    }
    with AtalaiaApi.configured() as api:
        accepted = api.post("/training/batch", body)
    log.info(
        "batch %s: %d jobs queued, refused: %s",
        accepted["batch_id"],
        accepted["accepted"],
        accepted["rejected"],
    )
    batch_id: str = accepted["batch_id"]
    return batch_id


@dag(
    dag_id="atalaia_drift_check",
    schedule=SCHEDULE,
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    params=PARAMS,
    tags=["atalaia"],
    doc_md=__doc__,
)
def drift_check() -> None:
    retrain_drifted(find_drifted())


drift_check()
