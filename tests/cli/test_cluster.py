"""`atalaia up`, `status`, `down`, the supervisor and the gateway: real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from atalaia import detection
from atalaia.cli import app
from atalaia.cli.demo import free_port
from atalaia.cluster import local, supervisor
from atalaia.cluster.gateway import nginx_binary
from atalaia.cluster.supervisor import ProcessSpec, Started, StartFailed
from atalaia.settings import Settings
from atalaia.tls import self_signed_files
from fixtures import require_service
from fixtures.api import inline_body, wait_for
from fixtures.db import create_database, drop_database, worker_database_name
from fixtures.gateway import LoneGateway
from fixtures.gateway import lone_gateway as alone
from fixtures.readings import STEP_S, sensor_series

runner = CliRunner()
ATALAIA = Path(sys.executable).with_name("atalaia")
SERIES = "sensor_001_radial"
READING = {"timestamp": 1_733_616_000, "value": 0.31}


def python(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


def free_offset() -> int:
    """A port offset at which every service of a 2-replica cluster has a free port,
    from a range of this test worker's own (clusters of two workers started at
    once would otherwise find the same one)."""
    settings = Settings(database_url="postgresql://unused@127.0.0.1/unused")
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    start = 21_000 + 4_000 * (worker % 5)
    for offset in range(start, start + 4_000, 137):
        options = local.ClusterOptions(port_offset=offset)
        if not local.busy_ports(local.plan(settings, options)):
            return offset
    pytest.fail("no free ports")


class TestSupervisor:
    def test_stops_a_process_with_sigterm(self, tmp_path: Path) -> None:
        started = supervisor.spawn(
            ProcessSpec("sleeper", python("import time; time.sleep(60)")), tmp_path
        )
        assert supervisor.alive(started)

        killed = supervisor.stop([started], timeout_s=5)

        assert killed == []
        assert not supervisor.alive(started)

    def test_kills_a_process_that_ignores_sigterm(self, tmp_path: Path) -> None:
        code = (
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('armed', flush=True); time.sleep(60)"
        )
        started = supervisor.spawn(ProcessSpec("stubborn", python(code)), tmp_path)
        deadline = time.monotonic() + 10
        while "armed" not in Path(started.log).read_text():
            assert time.monotonic() < deadline
            time.sleep(0.02)

        killed = supervisor.stop([started], timeout_s=0.3)

        assert [p.name for p in killed] == ["stubborn"]
        assert not supervisor.alive(started)

    def test_a_record_read_back_sees_the_process_and_not_a_recycled_pid(
        self, tmp_path: Path
    ) -> None:
        started = supervisor.spawn(
            ProcessSpec("sleeper", python("import time; time.sleep(60)")), tmp_path
        )
        try:
            record = Started(**json.loads(json.dumps(asdict(started))))
            other = replace(record, start_time=1)

            assert supervisor.alive(record)
            assert not supervisor.alive(other)
        finally:
            supervisor.stop([started])

    def test_wait_ready_names_a_process_that_exits(self, tmp_path: Path) -> None:
        port = free_port()
        started = supervisor.spawn(
            ProcessSpec("crasher", python("print('boom'); raise SystemExit(3)"), port),
            tmp_path,
        )

        with pytest.raises(StartFailed, match="crasher exited") as caught:
            supervisor.wait_ready([started], timeout_s=10)

        assert "boom" in Path(caught.value.process.log).read_text()


class TestPlan:
    def test_ports_names_and_urls_of_every_process(self, tmp_path: Path) -> None:
        settings = Settings(home=tmp_path, database_url="postgresql://u@h/db")
        options = local.ClusterOptions(
            inference_replicas=3, workers=2, worker_concurrency=4, port_offset=100
        )

        specs = {s.name: s for s in local.plan(settings, options)}

        assert {n: s.port for n, s in specs.items()} == {
            "training": 8100,
            "inference-1": 8101,
            "inference-2": 8111,
            "inference-3": 8121,
            "plot": 8102,
            "health": 8103,
            "scheduler": 8104,
            "worker-1": None,
            "worker-2": None,
        }
        assert (
            " ".join(specs["inference-2"].argv[-4:]) == "--role inference --port 8111"
        )
        assert specs["worker-1"].argv[-3:] == ("worker", "--concurrency", "4")
        assert specs["scheduler"].argv[-3:] == ("scheduler", "--metrics-port", "8104")
        assert specs["scheduler"].ready_path == "/metrics"
        env = specs["health"].env
        assert env["ATALAIA_INFERENCE_URLS"] == (
            "http://127.0.0.1:8101,http://127.0.0.1:8111,http://127.0.0.1:8121"
        )
        assert env["ATALAIA_HOME"] == str(tmp_path.resolve())

    def test_the_mqtt_bridge_runs_when_a_broker_and_topics_are_set(
        self, tmp_path: Path
    ) -> None:
        settings = Settings(home=tmp_path, database_url="postgresql://u@h/db")
        bridged = settings.model_copy(
            update={"mqtt_url": "mqtt://127.0.0.1", "mqtt_topics": ["p/{series}"]}
        )
        options = local.ClusterOptions(port_offset=100)

        without = {s.name for s in local.plan(settings, options)}
        specs = {s.name: s for s in local.plan(bridged, options)}

        assert "mqtt" not in without
        assert specs["mqtt"].argv[-4:] == ("ingest", "mqtt", "--metrics-port", "8105")
        assert specs["mqtt"].ready_path == "/metrics"
        assert specs["mqtt"].env["ATALAIA_INFERENCE_URL"] == "http://127.0.0.1:8101"

    def test_the_health_service_reads_the_replicas_from_the_environment(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("ATALAIA_INFERENCE_URLS", "http://a:1, http://b:2")

        assert Settings().inference_urls == ["http://a:1", "http://b:2"]


class TestCommandsWithoutACluster:
    def test_up_refuses_sqlite(self, tmp_path: Path) -> None:
        env = {
            "ATALAIA_HOME": str(tmp_path),
            "ATALAIA_DATABASE_URL": f"sqlite:///{tmp_path}/a.db",
        }

        result = runner.invoke(app, ["up"], env=env)

        assert result.exit_code == 2
        assert "PostgreSQL" in result.output

    def test_up_refuses_an_unreachable_database_before_writing_a_token(
        self, tmp_path: Path
    ) -> None:
        env = {
            "ATALAIA_HOME": str(tmp_path),
            "ATALAIA_DATABASE_URL": f"postgresql://nobody@127.0.0.1:{free_port()}/x",
        }

        result = runner.invoke(app, ["up"], env=env)

        assert result.exit_code != 0
        assert "database" in result.output.lower()
        assert not (tmp_path / "admin-token").exists()

    @pytest.mark.parametrize("command", ["status", "down"])
    def test_status_and_down_say_nothing_runs(
        self, command: str, tmp_path: Path
    ) -> None:
        result = runner.invoke(app, [command], env={"ATALAIA_HOME": str(tmp_path)})

        assert result.exit_code == 1
        assert "no cluster runs" in result.output


@pytest.fixture
def lone_gateway(tmp_path: Path) -> Iterator[LoneGateway]:
    """The gateway of `atalaia up` alone: nothing listens on its upstreams."""
    with alone(tmp_path, free_offset()) as gateway:
        yield gateway


class TestGatewayAlone:
    def test_rate_limit_answers_429_naming_the_rule(
        self, lone_gateway: LoneGateway
    ) -> None:
        with lone_gateway.client() as client:
            answers = [client.get("/api/v1/models") for _ in range(40)]

        limited = [a for a in answers if a.status_code == 429]
        assert limited, [a.status_code for a in answers]
        assert limited[0].json()["rule"] == "gateway_rate_limit"
        assert limited[0].json()["error"] == "RateLimited"
        assert limited[0].headers["retry-after"] == "1"

    def test_body_limits_answer_413_naming_the_rule(
        self, lone_gateway: LoneGateway
    ) -> None:
        with lone_gateway.client() as client:
            too_big = client.post("/api/v1/models", content=b" " * 9_000_000)

        assert too_big.status_code == 413
        assert too_big.json()["rule"] == "gateway_body_size"

    def test_prediction_batches_may_be_larger(self, lone_gateway: LoneGateway) -> None:
        with lone_gateway.client() as client:
            batch = client.post("/api/v1/predict/batch", content=b" " * 9_000_000)

        assert batch.status_code == 503  # past the size check; no replica answers

    def test_an_unreachable_service_is_a_json_503(
        self, lone_gateway: LoneGateway
    ) -> None:
        with lone_gateway.client() as client:
            answer = client.post(f"/predict/{SERIES}", json=READING)

        assert answer.status_code == 503
        assert answer.json()["error"] == "ServiceUnavailable"
        assert answer.json()["rule"] == "service_available"

    def test_unknown_routes_are_a_json_404(self, lone_gateway: LoneGateway) -> None:
        with lone_gateway.client() as client:
            answer = client.get("/nowhere")

        assert (answer.status_code, answer.json()["error"]) == (404, "NotFound")
        assert answer.json()["rule"] == "route_exists"


# -- the whole platform as processes ------------------------------------------


def cli(*args: str, env: dict[str, str], timeout: float = 60) -> tuple[int, str]:
    """Run `atalaia …` as its own process: (exit code, stdout + stderr)."""
    done = subprocess.run(
        [str(ATALAIA), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done.returncode, done.stdout + done.stderr


@pytest.fixture
def cluster(
    postgres_admin: str,
    rabbitmq_url: str,
    queue_name: str,
    redis_url: str,
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dict[str, str]]:
    """The environment of a fresh database, home, queue and Redis prefix; whatever
    `up` started in it is stopped afterwards, and the database dropped. httpx
    trusts (only) the self-signed certificate `up` makes there."""
    require_service("nginx", nginx_binary)  # before anything starts
    cert = self_signed_files(tmp_path / "home").cert
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    name = worker_database_name("_cluster")
    env = {
        "ATALAIA_HOME": str(tmp_path / "home"),
        "ATALAIA_DATABASE_URL": create_database(postgres_admin, name),
        "ATALAIA_BROKER_URL": rabbitmq_url,
        "ATALAIA_TRAINING_QUEUE": queue_name,
        "ATALAIA_REDIS_URL": redis_url,
        "ATALAIA_REDIS_PREFIX": redis_prefix,
        "ATALAIA_LOG_JSON": "false",
    }
    try:
        yield env
    finally:
        settings = Settings(home=tmp_path / "home")
        state = local.ClusterState.load(local.state_path(settings))
        if state is not None:
            supervisor.stop(state.processes, timeout_s=5)
        drop_database(postgres_admin, name)


def predictions_of(base_url: str) -> float:
    """How many readings an inference replica has scored (its /metrics)."""
    text = httpx.get(f"{base_url}/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "anomaly_predictions"
        for sample in family.samples
        if sample.name == "anomaly_predictions_total"
    )


def up(
    cluster: dict[str, str], *, replicas: int
) -> tuple[dict[str, Any], str, dict[str, str]]:
    """`atalaia up` with `replicas` inference replicas and one worker in
    `cluster`'s environment: its processes by name, the gateway's URL and an
    admin's authorization header."""
    home = Path(cluster["ATALAIA_HOME"])
    settings = Settings(home=home, database_url=cluster["ATALAIA_DATABASE_URL"])
    gateway_port = free_port()
    code, out = cli(
        "up", "--inference-replicas", str(replicas), "--workers", "1",
        "--gateway-tls-port", str(gateway_port), "--gateway-port", str(free_port()),
        "--port-offset", str(free_offset()), "--timeout", "60",
        env=cluster,
    )  # fmt: skip
    assert code == 0, out
    state = local.ClusterState.load(local.state_path(settings))
    assert state is not None
    auth = {"Authorization": f"Bearer {(home / 'admin-token').read_text().strip()}"}
    procs = {p.name: p for p in state.processes}
    return procs, f"https://127.0.0.1:{gateway_port}", auth


def ended(client: httpx.Client, job_url: str) -> dict[str, Any] | None:
    """A training job once it has ended; None while it waits or runs."""
    job: dict[str, Any] = client.get(job_url).json()
    return None if job["status"] in ("queued", "running") else job


def serves_first_version(url: str, headers: dict[str, str]) -> bool | None:
    """Version 1 answers a reading older than any sent after (else those would
    be stale: not after the newest reading of their series seen)."""
    early = {"timestamp": 1_700_000_000.0, "value": 0.31}
    answer = httpx.post(url, json=early, headers=headers, timeout=5)
    assert answer.status_code == 200, answer.text
    return True if answer.json()["model_info"]["version"] == 1 else None


def version_served(url: str, headers: dict[str, str]) -> Any:
    answer = httpx.post(url, json=READING, headers=headers, timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()["model_info"]["version"]


@pytest.mark.postgres
def test_up_serves_the_walkthrough_through_the_gateway_and_survives_a_replica(
    cluster: dict[str, str],
) -> None:
    """Two replicas and two workers on RabbitMQ, Redis and PostgreSQL, behind nginx:
    a job runs on a worker, a promotion reaches both replicas within a second."""
    home = Path(cluster["ATALAIA_HOME"])
    settings = Settings(home=home, database_url=cluster["ATALAIA_DATABASE_URL"])
    gateway_port = free_port()
    code, out = cli(
        "up", "--inference-replicas", "2", "--workers", "2",
        "--gateway-tls-port", str(gateway_port), "--gateway-port", str(free_port()),
        "--port-offset", str(free_offset()), "--timeout", "60",
        env=cluster,
    )  # fmt: skip
    assert code == 0, out
    assert out.splitlines()[0].startswith("gateway")
    state = local.ClusterState.load(local.state_path(settings))
    assert state is not None
    procs = {p.name: p for p in state.processes}
    assert set(procs) == {
        "training", "inference-1", "inference-2", "plot", "health", "scheduler",
        "worker-1", "worker-2", "gateway",
    }  # fmt: skip
    gateway = f"https://127.0.0.1:{gateway_port}"
    auth = {"Authorization": f"Bearer {(home / 'admin-token').read_text().strip()}"}

    with httpx.Client(base_url=gateway, headers=auth, timeout=10) as client:
        readings = inline_body()
        stored = client.post(f"/api/v1/series/{SERIES}/points", json=readings)
        assert stored.status_code == 200, stored.text
        accepted = client.post(f"/fit/{SERIES}", json=readings)
        assert accepted.status_code == 202, accepted.text
        job_url = f"/api/v1/training/jobs/{accepted.json()['job_id']}"
        deadline = time.monotonic() + 15
        while (job := client.get(job_url).json())["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, job
            time.sleep(0.25)
        assert job["status"] == "succeeded", job
        # With a broker, the training service runs no job itself: a worker did.
        checks = httpx.get(f"{procs['training'].url}/ready").json()["checks"]
        assert "broker" in checks
        assert "executor" not in checks

        promoted = client.post(
            f"/api/v1/models/{SERIES}/versions/1/promote", json={"strategy": "direct"}
        )
        assert promoted.status_code == 200, promoted.text
        replicas = [
            f"{procs[n].url}/api/v1/predict/{SERIES}"
            for n in ("inference-1", "inference-2")
        ]
        # Both replicas follow the promotion (how fast: `python -m bench
        # promote-visible`; here only that it arrives).
        wait_for(lambda: all(version_served(u, auth) == 1 for u in replicas) or None)
        assert version_served(f"{gateway}/predict/{SERIES}", auth) == 1
        assert version_served(f"{gateway}/api/v1/predict/{SERIES}", auth) == 1
        # One series' readings all go to one replica (its stream state).
        bases = [f"{procs[n].url}" for n in ("inference-1", "inference-2")]
        counts = [predictions_of(base) for base in bases]
        for minute in range(10):
            body = {"timestamp": 1_734_000_000.0 + 60 * minute, "value": 0.3}
            assert client.post(f"/predict/{SERIES}", json=body).status_code == 200
            assert (
                client.post(f"/api/v1/predict/{SERIES}", json=body).status_code == 200
            )
        grown = [
            predictions_of(base) - before
            for base, before in zip(bases, counts, strict=True)
        ]
        assert sorted(grown) == [0, 20]
        # Readings sent in are scored by a replica; read back from training.
        later = readings["timestamps"][-1] + 3600.0
        sent = client.post(
            f"/api/v1/series/{SERIES}/points",
            json={"timestamps": [later], "values": [9.0]},
        )
        assert sent.status_code == 200, sent.text
        assert (sent.json()["scored"], len(sent.json()["anomalies"])) == (1, 1)
        back = client.get(f"/api/v1/series/{SERIES}/points", params={"start": later})
        assert back.json()["values"] == [9.0]

        # The console and the training service's small routes, through the gateway.
        assert client.get("/").headers["location"] == "/console/"
        console = client.get("/console/")
        assert console.status_code == 200
        assert 'src="js/app.js"' in console.text
        assert client.get("/console/js/app.js").status_code == 200
        for path in (
            "/api/v1/incidents",
            "/api/v1/fleet/status",
            "/api/v1/auth/whoami",
        ):
            assert client.get(path).status_code == 200, path

        plot = client.get("/plot", params={"series_id": SERIES, "format": "json"})
        assert plot.status_code == 200, plot.text
        health = client.get("/health")
        assert health.status_code == 200, health.text
        assert {"inference-1", "inference-2"} <= set(health.json()["services"])

    code, out = cli("status", "--verbose", env=cluster)
    assert code == 0, out
    assert "broker: ok (amqp" in out
    assert "TLSv1.3, HTTP 200" in out  # the gateway's HTTPS, verified

    os.kill(procs["inference-2"].pid, signal.SIGKILL)
    code, out = cli("status", env=cluster)
    assert code == 1
    assert "unhealthy: inference-2" in out
    for _ in range(10):
        assert version_served(f"{gateway}/predict/{SERIES}", auth) == 1
    platform = httpx.get(f"{gateway}/health").json()
    assert platform["services"]["inference-2"]["status"] == "down"

    code, out = cli("down", env=cluster)
    assert code == 0, out
    assert not [p.name for p in state.processes if supervisor.alive(p)]
    assert not local.state_path(settings).exists()


@pytest.mark.postgres
def test_a_streaming_series_answers_alike_when_its_replica_is_killed(
    cluster: dict[str, str],
) -> None:
    """`forecast` series sent in to two replicas: one series' first readings to
    the replica then killed, the rest through the gateway (to the other,
    which never saw it); another's all through the gateway. Every answer is
    the library's, as one process scoring them all would give."""
    procs, gateway, auth = up(cluster, replicas=2)
    moved, routed = "sensor_010_axial", "sensor_011_axial"
    with httpx.Client(base_url=gateway, headers=auth, timeout=10) as client:
        for seed, series_id in enumerate((moved, routed)):
            trained = client.post(
                f"/api/v1/training/{series_id}",
                json=inline_body(seed=seed, algorithm="forecast"),
            )
            assert trained.status_code == 202, trained.text
            job_url = f"/api/v1/training/jobs/{trained.json()['job_id']}"
            job = wait_for(partial(ended, client, job_url), attempts=600)
            assert job["status"] == "succeeded", job
            promoted = client.post(
                f"/api/v1/models/{series_id}/versions/1/promote",
                json={"strategy": "direct"},
            )
            assert promoted.status_code == 200, promoted.text
        for name in ("inference-1", "inference-2"):  # both serve them (a cold
            for series_id in (moved, routed):  # reading: it advances nothing)
                url = f"{procs[name].url}/api/v1/predict/{series_id}"
                wait_for(partial(serves_first_version, url, auth))

        answers: dict[str, list[tuple[float, str]]] = {moved: [], routed: []}
        expected = {}
        for seed, series_id in enumerate((moved, routed)):
            trained_t, trained_v = sensor_series(seed=seed)
            t = trained_t[-1] + STEP_S * np.arange(1, 61)
            v = sensor_series(60, seed=9, start=float(t[0]))[1]
            v[30:] += 0.1  # a sustained shift, ten noise sigmas
            score = detection.fit("forecast", trained_t, trained_v).score(t, v)
            expected[series_id] = [
                (float(ti), str(r))
                for ti, r in zip(
                    t[score.anomaly], score.reason[score.anomaly], strict=True
                )
            ]
            for i in range(t.size):
                if series_id == moved and i == 40:
                    os.kill(procs["inference-2"].pid, signal.SIGKILL)
                base = (
                    procs["inference-2"].url
                    if series_id == moved and i < 40
                    else gateway
                )
                sent = httpx.post(
                    f"{base}/api/v1/series/{series_id}/points",
                    json={"timestamps": [t[i]], "values": [v[i]]},
                    headers=auth,
                    timeout=10,
                )
                assert sent.status_code == 200, sent.text
                assert not any(a["stale"] for a in sent.json()["anomalies"])
                answers[series_id] += [
                    (a["timestamp"], a["reason"]) for a in sent.json()["anomalies"]
                ]
    assert answers == expected
    assert all(answers.values())  # the shift was found in each


@pytest.mark.postgres
def test_anomalies_predicted_on_a_replica_killed_later_reach_an_incident(
    cluster: dict[str, str],
) -> None:
    """Anomalous predictions answered by a replica SIGKILLed more than a flush
    interval later are in the anomaly log, and the scheduler's alerter made
    one incident of them."""
    procs, gateway, auth = up(cluster, replicas=1)
    replica = procs["inference-1"]
    with httpx.Client(base_url=gateway, headers=auth, timeout=10) as client:
        trained = client.post(
            f"/api/v1/training/{SERIES}", json=inline_body(algorithm="zscore")
        )
        assert trained.status_code == 202, trained.text
        job_url = f"/api/v1/training/jobs/{trained.json()['job_id']}"
        job = wait_for(partial(ended, client, job_url), attempts=600)
        assert job["status"] == "succeeded", job
        promoted = client.post(
            f"/api/v1/models/{SERIES}/versions/1/promote", json={"strategy": "direct"}
        )
        assert promoted.status_code == 200, promoted.text
        predict = f"{replica.url}/api/v1/predict/{SERIES}"
        wait_for(partial(serves_first_version, predict, auth))
        sent = [READING["timestamp"] + 60.0 * i for i in range(5)]
        for t in sent:
            answer = httpx.post(
                predict, json={"timestamp": t, "value": 50.0}, headers=auth
            )
            assert answer.json()["anomaly"], answer.text
        time.sleep(4 * Settings().incident_flush_s)
        os.kill(replica.pid, signal.SIGKILL)

        def logged() -> list[float] | None:
            page = client.get("/api/v1/anomalies?limit=100").json()
            found = [a["timestamp"] for a in page["anomalies"]]
            return found if len(found) >= len(sent) else None

        assert wait_for(logged) == sent
