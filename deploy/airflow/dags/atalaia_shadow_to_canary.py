"""Canaries for the candidates whose shadow comparison chose one, through
atalaia's API.

Lists the ended shadow rollouts that decided `canary` (`GET /rollouts`, page by
page): those started with `"then": "report"`, which leave the canary to a
person or to this DAG (`"then": "canary"` starts it on the platform). For each
series whose `GET /models/{series_id}/deployment-config` still shows that
shadow as its latest and no canary running, promotes the candidate with the
canary strategy (`POST /models/{series_id}/versions/{version}/promote`). A
candidate no longer promotable (409: promoted, archived, or another rollout
running meanwhile) is skipped.
Cron schedule (UTC): ATALAIA_CANARY_SCHEDULE, hourly by default.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from typing import Any

from atalaia_api import ApiError, AtalaiaApi

try:  # Airflow 3
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task

SCHEDULE = os.environ.get("ATALAIA_CANARY_SCHEDULE", "0 * * * *")
PARAMS = {
    "initial_percentage": 5,
    "increment_percentage": 15,
    "increment_interval_hours": 2,
}

log = logging.getLogger(__name__)


@task
def finished_shadows() -> list[dict[str, Any]]:
    """The candidates of ended shadows that decided canary."""
    with AtalaiaApi.configured() as api:
        rollouts = api.pages(
            "/rollouts", "rollouts", strategy="shadow", state="ended", decision="canary"
        )
        return [
            {
                "id": r["id"],
                "series_id": r["series_id"],
                "version": r["candidate_version"],
            }
            for r in rollouts
        ]


def awaits_canary(api: AtalaiaApi, series_id: str, rollout_id: int) -> bool:
    """Whether that shadow is still the series' latest, decided canary, and
    no canary runs."""
    deployment = api.get(f"/models/{series_id}/deployment-config")
    shadow = deployment.get("shadow") or {}
    decided = shadow.get("id") == rollout_id and shadow.get("decision") == "canary"
    return decided and not deployment.get("canary")


@task
def start_canaries(shadows: list[dict[str, Any]], **context: Any) -> list[str]:
    """Start a canary for each candidate still waiting; the series started.

    A failure is raised after every other candidate has been tried."""
    body = {
        "strategy": "canary",
        "canary_config": {k: context["params"][k] for k in PARAMS},
    }
    started: list[str] = []
    failures: list[ApiError] = []
    with AtalaiaApi.configured() as api:
        for shadow in shadows:
            series_id, version = shadow["series_id"], shadow["version"]
            path = f"/models/{series_id}/versions/{version}/promote"
            try:
                if awaits_canary(api, series_id, shadow["id"]):
                    api.post(path, body)
                    started.append(series_id)
            except ApiError as exc:
                if exc.status != 409:
                    failures.append(exc)
                log.warning("%s: no canary: %s", series_id, exc)
    log.info("canaries started: %s", started)
    if failures:
        raise RuntimeError(f"{len(failures)} canaries not started: {failures}")
    return started


@dag(
    dag_id="atalaia_shadow_to_canary",
    schedule=SCHEDULE,
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    params=PARAMS,
    tags=["atalaia"],
    doc_md=__doc__,
)
def shadow_to_canary() -> None:
    start_canaries(finished_shadows())


shadow_to_canary()
