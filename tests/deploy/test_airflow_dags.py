"""deploy/airflow: the DAGs as Airflow parses them and runs them (`dag.test()`)
against an embedded platform, and the DAGs' API client against a real HTTP
server.

Airflow runs in its own venv (its pins clash with the project's):
ATALAIA_AIRFLOW_VENV, or `.airflow-venv` at the checkout's root, which `.ci/run`
installs. Without it the Airflow tests skip, or fail under
ATALAIA_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.api.common.auth import Role
from atalaia.api.common.resources import authenticator_for
from atalaia.cli.demo import app_server, embedded_server, free_port
from atalaia.services import rollouts
from atalaia.settings import Settings
from fixtures import require_service
from fixtures.api import inline_body, wait_for
from fixtures.readings import EPOCH, ONE_WEEK_OF_MINUTES, sensor_series

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "deploy" / "airflow" / "dags"
VENV = Path(os.environ.get("ATALAIA_AIRFLOW_VENV", ROOT / ".airflow-venv"))
RESULT = "RESULT "
WEEKLY, DRIFT, CANARY = (
    "atalaia_weekly_retraining", "atalaia_drift_check", "atalaia_shadow_to_canary",
)  # fmt: skip

# Airflow 3 parses a DAG folder (a bundle) with the folder on sys.path.
PARSE = """
import json, sys
from pathlib import Path
from airflow.dag_processing.dagbag import BundleDagBag
folder = Path(sys.argv[1])
bag = BundleDagBag(folder, bundle_path=folder)
dags = {d.dag_id: {"schedule": d.schedule, "timezone": str(d.timezone),
                   "tasks": sorted(d.task_ids)} for d in bag.dags.values()}
print("RESULT", json.dumps({"errors": {str(k): v for k, v in bag.import_errors.items()},
                            "files": sorted(s.file for s in bag.dagbag_stats),
                            "dags": dags}))
"""
RUN = """
import json, sys
from pathlib import Path
from airflow.dag_processing.dagbag import BundleDagBag
folder = Path(sys.argv[1])
run = BundleDagBag(folder, bundle_path=folder).dags[sys.argv[2]].test(
    run_conf=json.loads(sys.argv[3]))
tasks = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
print("RESULT", json.dumps({"state": str(run.state), "tasks": tasks}))
"""


def _load_client() -> Any:
    """deploy/airflow/dags/atalaia_api.py, which Airflow imports from its folder."""
    spec = importlib.util.spec_from_file_location(
        "atalaia_api", DAGS / "atalaia_api.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # where its dataclass looks its names up
    spec.loader.exec_module(module)
    return module


client = _load_client()


@dataclass(frozen=True)
class Airflow:
    python: Path
    env: dict[str, str]

    def run(self, script: str, *args: str, **env: str) -> Any:
        """What `script` printed after RESULT, run in Airflow's venv."""
        done = subprocess.run(
            [str(self.python), "-c", script, *args], env=self.env | env,
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        found = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
        output = done.stdout[-4000:] + done.stderr[-4000:]
        assert done.returncode == 0, output
        assert found, output
        return json.loads(found[-1].removeprefix(RESULT))

    def run_dag(self, dag_id: str, conf: dict[str, Any], base: str, token: str) -> Any:
        """`dag.test()`'s run: its state and its tasks' states; the Connection
        `atalaia_api` points at `base`."""
        connection = {"conn_type": "http", "host": base, "password": token}
        return self.run(
            RUN, str(DAGS), dag_id, json.dumps(conf),
            AIRFLOW_CONN_ATALAIA_API=json.dumps(connection),
        )  # fmt: skip


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Airflow:
    """Airflow's venv, with a metadata database of its own."""
    python = VENV / "bin" / "python"
    require_service(
        f"Airflow's venv at {VENV} (.ci/run installs it)",
        lambda: subprocess.run(
            [str(python), "-c", "import airflow.sdk"], check=True, capture_output=True
        ),
    )
    env = os.environ | {
        "AIRFLOW_HOME": str(tmp_path_factory.mktemp("airflow")),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    subprocess.run(
        [str(VENV / "bin" / "airflow"), "db", "migrate"],
        env=env, check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    return Airflow(python, env)


class TestParsing:
    def test_airflow_imports_the_three_dags_on_their_schedules(
        self, airflow: Airflow
    ) -> None:
        parsed = airflow.run(PARSE, str(DAGS))

        assert parsed["errors"] == {}
        assert parsed["files"] == [f"{dag_id}.py" for dag_id in (DRIFT, CANARY, WEEKLY)]
        assert parsed["dags"] == {
            WEEKLY: {"schedule": "0 2 * * 0", "timezone": "UTC",
                     "tasks": ["check_failures", "submit_batch", "wait_for_batch"]},
            DRIFT: {"schedule": "0 */6 * * *", "timezone": "UTC",
                    "tasks": ["find_drifted", "retrain_drifted"]},
            CANARY: {"schedule": "0 * * * *", "timezone": "UTC",
                     "tasks": ["finished_shadows", "start_canaries"]},
        }  # fmt: skip

    def test_schedules_come_from_the_environment(self, airflow: Airflow) -> None:
        parsed = airflow.run(
            PARSE,
            str(DAGS),
            ATALAIA_RETRAIN_SCHEDULE="30 3 * * 1",
            ATALAIA_DRIFT_SCHEDULE="0 */2 * * *",
            ATALAIA_CANARY_SCHEDULE="*/30 * * * *",
        )

        schedules = {dag_id: dag["schedule"] for dag_id, dag in parsed["dags"].items()}
        assert schedules == {
            WEEKLY: "30 3 * * 1", DRIFT: "0 */2 * * *", CANARY: "*/30 * * * *",
        }  # fmt: skip


@dataclass(frozen=True)
class Platform:
    base: str
    token: str
    database_url: str

    def api(self, method: str, path: str, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        url = f"{self.base}/api/v1{path}"
        answer = httpx.request(method, url, headers=headers, timeout=60, **kw)
        assert answer.is_success, answer.text
        return answer.json()

    def ingest(self, series_id: str, body: dict[str, Any]) -> None:
        self.api("POST", f"/series/{series_id}/points", json=body)


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    """An embedded platform with two series of a week of readings each, and a
    constant one (whose training fails)."""
    settings = Settings(
        home=tmp_path, log_json=False, log_level="WARNING", training_min_interval_s=0,
        inference_stats_flush_s=0.2,
    )  # fmt: skip
    issue = authenticator_for(settings).issue
    token = issue(subject="airflow", role=Role.ML_ENGINEER, ttl_s=3600)
    with embedded_server(settings) as base:
        found = Platform(base, token, settings.database_url)
        for seed, series_id in enumerate(("sensor_001_radial", "sensor_001_axial")):
            found.ingest(series_id, inline_body(seed=seed))
        flat = inline_body()
        found.ingest("sensor_002_flat", flat | {"values": [1.0] * len(flat["values"])})
        yield found


class TestRuns:
    def test_weekly_retraining_fails_when_too_many_jobs_failed(
        self, airflow: Airflow, platform: Platform
    ) -> None:
        strict = airflow.run_dag(WEEKLY, {"poll_s": 1}, platform.base, platform.token)
        lenient = airflow.run_dag(
            WEEKLY, {"poll_s": 1, "max_failed_fraction": 0.5},
            platform.base, platform.token,
        )  # fmt: skip

        assert strict == {"state": "failed", "tasks": {
            "submit_batch": "success", "wait_for_batch": "success",
            "check_failures": "failed",
        }}  # fmt: skip
        assert lenient["state"] == "success", lenient
        batches = platform.api("GET", "/training/batches")["batches"]
        assert [(b["total"], b["succeeded"], b["failed"]) for b in batches] == [
            (3, 2, 1), (3, 2, 1),
        ]  # fmt: skip

    def test_drift_check_retrains_the_drifted_production_series(
        self, airflow: Airflow, platform: Platform
    ) -> None:
        for series_id in ("sensor_001_radial", "sensor_001_axial"):
            job = platform.api(
                "POST", f"/training/{series_id}", json={"window_hours": 168}
            )
            path = f"/training/jobs/{job['job_id']}"
            wait_for(partial(_model_version, platform, path), attempts=1200)
            platform.api(
                "POST", f"/models/{series_id}/versions/1/promote",
                json={"strategy": "direct"},
            )  # fmt: skip
        # A day at a new level after the training week.
        timestamps, values = sensor_series(
            1440, start=EPOCH + ONE_WEEK_OF_MINUTES * 60.0, level=1.3
        )
        platform.ingest(
            "sensor_001_radial",
            {"timestamps": timestamps.tolist(), "values": values.tolist()},
        )

        run = airflow.run_dag(DRIFT, {}, platform.base, platform.token)

        assert run["state"] == "success", run
        [batch] = platform.api("GET", "/training/batches")["batches"]
        jobs = platform.api(
            "GET", "/training/jobs", params={"batch_id": batch["batch_id"]}
        )
        assert [job["series_id"] for job in jobs["jobs"]] == ["sensor_001_radial"]


def _model_version(platform: Platform, job_path: str) -> int | None:
    version: int | None = platform.api("GET", job_path)["model_version"]
    return version


class TestShadowToCanary:
    def test_starts_the_canary_a_passed_shadow_left_to_it_once(
        self, airflow: Airflow, platform: Platform
    ) -> None:
        series_id = "sensor_001_radial"
        for _ in range(2):  # version 1 to serve, version 2 to try
            job = platform.api(
                "POST", f"/training/{series_id}", json={"window_hours": 168}
            )
            path = f"/training/jobs/{job['job_id']}"
            wait_for(partial(_model_version, platform, path), attempts=1200)
        platform.api("POST", f"/models/{series_id}/versions/1/promote", json={})
        shadow = platform.api(
            "POST", f"/models/{series_id}/versions/2/promote",
            json={"strategy": "shadow", "gates": {"min_predictions": 20},
                  "shadow_config": {"duration_hours": 1, "then": "report"}},
        )["rollout"]  # fmt: skip
        wait_for(partial(_shadow_scored, platform, series_id, shadow["id"]))
        sessions = make_session_factory(make_engine(platform.database_url))
        later = datetime.now(UTC) + timedelta(hours=1)
        assert rollouts.run_steps(sessions=sessions, now=later).actions == {
            shadow["id"]: "pass"
        }

        first = airflow.run_dag(CANARY, {}, platform.base, platform.token)
        again = airflow.run_dag(CANARY, {}, platform.base, platform.token)

        assert first["state"] == again["state"] == "success", (first, again)
        config = platform.api("GET", f"/models/{series_id}/deployment-config")
        assert (config["canary"]["candidate_version"], config["split"]) == (
            2, {"candidate": 5.0, "production": 95.0}
        )  # fmt: skip
        canaries = platform.api("GET", "/rollouts", params={"strategy": "canary"})
        assert len(canaries["rollouts"]) == 1  # the second run started none


def _shadow_scored(platform: Platform, series_id: str, rollout_id: int) -> bool | None:
    """Predict readings of the series until the shadow's candidate has scored
    enough of them (inference follows the registry, and flushes its counts)."""
    timestamps, values = sensor_series(50, start=EPOCH + ONE_WEEK_OF_MINUTES * 60.0)
    body = {"series_id": [series_id] * 50, "timestamp": timestamps.tolist(),
            "value": values.tolist()}  # fmt: skip
    platform.api("POST", "/predict/batch", json=body)
    figures = platform.api("GET", f"/rollouts/{rollout_id}")["figures"]
    return True if figures["candidate"]["predictions"] >= 20 else None


def answers(hits: Counter[str]) -> FastAPI:
    """A server answering `/api/v1/plan/{plan}` with the plan's statuses in
    turn ("429:7,503,200": a 429 with Retry-After 7, a 503, a 200), counted in
    `hits`, and a list of 5 items on `/api/v1/items`, two to a page."""
    app = FastAPI()

    @app.api_route("/api/v1/plan/{plan}", methods=["GET", "POST"])
    def plan(plan: str, request: Request) -> JSONResponse:
        steps = plan.split(",")
        step = steps[min(hits[plan], len(steps) - 1)].split(":")
        hits[plan] += 1
        status = int(step[0])
        if status < 400:
            seen = {"authorization": request.headers.get("Authorization")}
            return JSONResponse(seen, status_code=status)
        error = {"error": f"E{status}", "rule": "planned", "detail": plan}
        headers = {"Retry-After": step[1]} if len(step) > 1 else {}
        return JSONResponse(error, status_code=status, headers=headers)

    @app.get("/api/v1/items")
    def items(cursor: int = 0) -> dict[str, Any]:
        return {"items": list(range(5))[cursor : cursor + 2],
                "next_cursor": str(cursor + 2) if cursor + 2 < 5 else None}  # fmt: skip

    return app


@dataclass
class Server:
    base: str
    hits: Counter[str]
    sleeps: list[float]

    def api(self, base: str | None = None, **options: Any) -> Any:
        """The DAGs' client of this server; its waits are recorded in `sleeps`."""
        return client.AtalaiaApi(
            base or self.base, "t0k", backoff_s=0.5, sleep=self.sleeps.append,
            **options,
        )  # fmt: skip


@pytest.fixture
def server() -> Iterator[Server]:
    hits: Counter[str] = Counter()
    with app_server(answers(hits)) as base:
        yield Server(base, hits, [])


class TestApiClient:
    def test_waits_the_retry_after_of_a_429_and_backs_off_after_a_503(
        self, server: Server
    ) -> None:
        answer = server.api().get("/plan/429:7,503,200")

        assert answer == {"authorization": "Bearer t0k"}
        assert server.sleeps == [7.0, 1.0]

    def test_sends_a_post_again_after_a_429_or_a_503(self, server: Server) -> None:
        server.api().post("/plan/429:1,503,202", {"series_ids": ["s"]})

        assert server.hits["429:1,503,202"] == 3

    def test_sends_a_post_once_when_a_500_may_have_carried_it_out(
        self, server: Server
    ) -> None:
        with pytest.raises(client.ApiError) as raised:
            server.api().post("/plan/500,202", {})

        assert (raised.value.status, server.hits["500,202"]) == (500, 1)

    def test_gives_up_a_get_after_its_attempts_with_the_last_error(
        self, server: Server
    ) -> None:
        with pytest.raises(client.ApiError) as raised:
            server.api(attempts=3).get("/plan/502")

        assert raised.value.status == 502
        assert raised.value.body == {
            "error": "E502",
            "rule": "planned",
            "detail": "502",
        }
        assert (server.hits["502"], server.sleeps) == (3, [0.5, 1.0])

    def test_raises_a_4xx_at_once_with_the_api_error_body(self, server: Server) -> None:
        with pytest.raises(client.ApiError, match="E422") as raised:
            server.api().post("/plan/422,202", {})

        assert raised.value.body["error"] == "E422"
        assert (server.hits["422,202"], server.sleeps) == (1, [])

    def test_waits_no_longer_than_max_wait_s(self, server: Server) -> None:
        server.api(max_wait_s=60).get("/plan/429:3600,200")

        assert server.sleeps == [60.0]

    def test_sends_a_post_again_when_the_connection_was_refused(
        self, server: Server
    ) -> None:
        closed = f"http://127.0.0.1:{free_port()}"
        with pytest.raises(client.ApiError) as raised:
            server.api(closed, attempts=3).post("/plan/200", {})

        assert (raised.value.status, server.sleeps) == (None, [0.5, 1.0])

    def test_walks_every_page_of_a_list(self, server: Server) -> None:
        assert list(server.api().pages("/items", "items")) == [0, 1, 2, 3, 4]

    def test_is_configured_from_the_environment_outside_airflow(
        self, server: Server, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("ATALAIA_URL", server.base)
        monkeypatch.setenv("ATALAIA_TOKEN", "env-token")

        answer = client.AtalaiaApi.configured().get("/plan/200")

        assert answer == {"authorization": "Bearer env-token"}

    def test_says_what_to_define_when_nothing_is(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("ATALAIA_URL", raising=False)
        monkeypatch.delenv("ATALAIA_TOKEN", raising=False)

        with pytest.raises(LookupError, match="ATALAIA_URL and ATALAIA_TOKEN"):
            client.AtalaiaApi.configured()
