"""Weekly retraining of every series with stored readings, through atalaia's API.

`POST /training/batch` with `{"all_series": true, "window_hours": …}`, then
`GET /training/batches/{batch_id}` until every job has ended; the run fails when
more than `max_failed_fraction` of the batch's jobs failed. Cron schedule (UTC):
ATALAIA_RETRAIN_SCHEDULE, Sunday 02:00 by default.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import UTC, datetime
from typing import Any

from atalaia_api import AtalaiaApi

try:  # Airflow 3
    from airflow.sdk import dag, task
    from airflow.sdk.exceptions import AirflowFailException
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task
    from airflow.exceptions import AirflowFailException

SCHEDULE = os.environ.get("ATALAIA_RETRAIN_SCHEDULE", "0 2 * * 0")
PARAMS = {
    "window_hours": 168,  # each series trains on its last week of readings
    "algorithm": "auto",
    "max_failed_fraction": 0.05,
    "poll_s": 60,
    "timeout_hours": 12,  # the batch's jobs must all have ended by then
}
# The service writes every job of the fleet before it answers.
SUBMIT_TIMEOUT_S = 900.0

log = logging.getLogger(__name__)


@task
def submit_batch(**context: Any) -> str:
    """Queue one job per series; the batch's id."""
    params = context["params"]
    body = {
        "all_series": True,
        "window_hours": params["window_hours"],
        "config": {"algorithm": params["algorithm"]},
    }
    with AtalaiaApi.configured(timeout_s=SUBMIT_TIMEOUT_S) as api:
        accepted = api.post("/training/batch", body)
    log.info(
        "batch %s: %d jobs queued, %d series refused",
        accepted["batch_id"],
        accepted["accepted"],
        len(accepted["rejected"]),
    )
    batch_id: str = accepted["batch_id"]
    return batch_id


@task
def wait_for_batch(batch_id: str, **context: Any) -> dict[str, Any]:
    """The batch once every job has ended; fail after `timeout_hours`."""
    params = context["params"]
    deadline = time.monotonic() + params["timeout_hours"] * 3600
    with AtalaiaApi.configured() as api:
        while True:
            batch: dict[str, Any] = api.get(f"/training/batches/{batch_id}")
            if batch["done"] >= batch["total"]:
                return batch
            if time.monotonic() > deadline:
                ended = f"{batch['done']} of {batch['total']} jobs ended"
                raise TimeoutError(f"batch {batch_id}: only {ended} in time")
            log.info(
                "batch %s: %d of %d jobs ended, ETA %s s",
                batch_id,
                batch["done"],
                batch["total"],
                batch["eta_s"],
            )
            time.sleep(params["poll_s"])


@task
def check_failures(batch: dict[str, Any], **context: Any) -> None:
    """Fail the run when too many of the batch's jobs failed."""
    allowed = context["params"]["max_failed_fraction"] * batch["total"]
    summary = (
        f"batch {batch['batch_id']}: {batch['succeeded']} succeeded, "
        f"{batch['failed']} failed, {batch['cancelled']} cancelled"
    )
    if batch["failed"] > allowed:
        raise AirflowFailException(f"{summary}; see {batch['links']['jobs']}")
    log.info(summary)


@dag(
    dag_id="atalaia_weekly_retraining",
    schedule=SCHEDULE,
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    params=PARAMS,
    tags=["atalaia"],
    doc_md=__doc__,
)
def weekly_retraining() -> None:
    check_failures(wait_for_batch(submit_batch()))


weekly_retraining()
