"""The files under deploy/ agree with the code: commands, ports, probe paths, nginx.

Nothing here is built or run by Docker or Kubernetes: commands are parsed by the
`atalaia` CLI (not run), probe paths are looked up in the routes of the service's
FastAPI app (built, not started), and nginx checks a rendered copy of the gateway.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from fastapi import FastAPI
from starlette.routing import Match
from typer.core import TyperGroup

from atalaia.cli import app
from atalaia.cli.serve import DEFAULT_PORTS, ServiceRole, create_role_app
from atalaia.cluster.gateway import SERVICES, nginx_binary, render_nginx_conf
from atalaia.settings import Settings
from fixtures import require_service

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
K8S = DEPLOY / "k8s"
# How deploy/nginx/nginx.conf and deploy/k8s/nginx.conf are rendered (nginx image).
IMAGE_GATEWAY = {
    "listen": "80",
    "runtime_dir": "/var/cache/nginx",
    "access_log": "/dev/stdout",
    "user": "nginx",
}
SERVICE_PORTS: dict[str, int] = {
    r.value: DEFAULT_PORTS[r] for r in ServiceRole if r.value in SERVICES
}


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def k8s_objects() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(K8S.rglob("*.yaml")):
        for doc in documents(path):
            yield path.name, doc


def compose() -> dict[str, Any]:
    services: dict[str, Any] = documents(DEPLOY / "docker-compose.yml")[0]["services"]
    return services


def parse_cli(argv: list[str]) -> tuple[str, dict[str, Any]]:
    """Parse `atalaia …` as the CLI would, without running it: (command, params)."""
    assert argv[0] == "atalaia", argv
    command = typer.main.get_command(app)
    args, path = argv[1:], list[str]()
    ctx = command.make_context("atalaia", list(args))
    while isinstance(command, TyperGroup):
        name, found, args = command.resolve_command(ctx, args)
        assert found is not None
        assert name is not None
        command, path = found, [*path, name]
        ctx = command.make_context(name, list(args), parent=ctx)
    return " ".join(path), ctx.params


def served_role(argv: list[str]) -> ServiceRole:
    """The role of an `atalaia serve` command listening on all interfaces."""
    command, params = parse_cli(argv)
    assert command == "serve"
    assert params["host"] == "0.0.0.0", argv
    assert params["port"] is None, "the deploy files use the default ports"
    return ServiceRole(params["role"])  # typer < 0.29 leaves the string


class Routes:
    """Which GET paths each service's app routes (the apps are built, not started)."""

    def __init__(self, settings: Settings) -> None:
        self.apps: dict[ServiceRole, FastAPI] = {
            role: create_role_app(role, settings)
            for role in ServiceRole
            if role is not ServiceRole.EMBEDDED
        }

    def serves(self, role: ServiceRole, path: str) -> bool:
        scope = {"type": "http", "method": "GET", "path": path, "root_path": ""}
        return any(
            route.matches(scope)[0] is Match.FULL
            for route in self.apps[role].router.routes
        )


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> Routes:
    return Routes(Settings(home=tmp_path_factory.mktemp("home")))


def quantity(value: str | int) -> float:
    """A Kubernetes quantity as a number: 250m → 0.25, 1Gi → 2**30."""
    text = str(value)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def test_every_yaml_file_parses() -> None:
    paths = [*DEPLOY.rglob("*.yml"), *DEPLOY.rglob("*.yaml")]

    assert len(paths) >= 10
    for path in paths:
        assert documents(path), path


def compose_upstreams() -> dict[str, list[str]]:
    """service → host:port of the compose services running it, default ports."""
    upstreams: dict[str, list[str]] = {s: [] for s in SERVICES}
    for name, service in compose().items():
        argv = service.get("command", [])
        if argv[:2] == ["atalaia", "serve"]:
            role = served_role(argv)
            upstreams[role.value].append(f"{name}:{DEFAULT_PORTS[role]}")
    return upstreams


class TestCompose:
    def test_runs_every_part_of_the_platform(self) -> None:
        assert {
            "postgres", "redis", "rabbitmq", "minio", "nginx", "training",
            "inference-1", "inference-2", "plot", "health", "worker", "scheduler",
            "prometheus", "grafana",
        } <= set(compose())  # fmt: skip

    def test_one_scheduler_runs(self) -> None:
        scheduler = compose()["scheduler"]

        assert scheduler["command"][:2] == ["atalaia", "scheduler"]
        assert scheduler.get("deploy", {}).get("replicas", 1) == 1

    @pytest.mark.parametrize(
        "name",
        [n for n, s in compose().items() if s.get("command", [""])[0] == "atalaia"],
    )
    def test_commands_are_atalaia_invocations(self, name: str, routes: Routes) -> None:
        service = compose()[name]
        argv = service["command"]
        command, _ = parse_cli(argv)
        if command != "serve":
            return
        role = served_role(argv)
        probe = " ".join(service["healthcheck"]["test"])
        port, path = re.findall(r"http://127\.0\.0\.1:(\d+)(/\w+)", probe)[0]
        assert int(port) == DEFAULT_PORTS[role]
        assert routes.serves(role, path)

    def test_the_gateway_conf_is_the_render_for_these_services(self) -> None:
        nginx = compose()["nginx"]

        assert "./nginx/nginx.conf:/etc/nginx/nginx.conf:ro" in nginx["volumes"]
        assert nginx["ports"] == ["8080:80"]
        expected = render_nginx_conf(compose_upstreams(), **IMAGE_GATEWAY)
        assert (DEPLOY / "nginx" / "nginx.conf").read_text() == expected

    def test_the_health_service_knows_every_replica(self) -> None:
        env = compose()["health"]["environment"]
        replicas = compose_upstreams()["inference"]

        assert len(replicas) > 1
        assert env["ATALAIA_INFERENCE_URLS"].split(",") == [
            f"http://{r}" for r in replicas
        ]
        assert (
            env["ATALAIA_TRAINING_URL"]
            == f"http://{compose_upstreams()['training'][0]}"
        )

    def test_prometheus_scrapes_every_service(self, routes: Routes) -> None:
        config = documents(DEPLOY / "prometheus.yml")[0]
        scraped = {
            job["job_name"]: job["static_configs"][0]["targets"]
            for job in config["scrape_configs"]
        }

        assert scraped == compose_upstreams()
        for job in config["scrape_configs"]:
            assert routes.serves(ServiceRole(job["job_name"]), job["metrics_path"])


def pod_containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc["kind"] == "InferenceService":
        containers: list[dict[str, Any]] = doc["spec"]["predictor"]["containers"]
        return containers
    if doc["kind"] == "Deployment":
        return list(doc["spec"]["template"]["spec"]["containers"])
    return []


class TestKubernetes:
    @pytest.mark.parametrize(
        ("name", "doc"),
        [(d["metadata"]["name"], d) for _, d in k8s_objects() if pod_containers(d)],
    )
    def test_containers_run_real_commands_probed_on_real_routes(
        self, name: str, doc: dict[str, Any], routes: Routes
    ) -> None:
        for container in pod_containers(doc):
            limits = container["resources"]["limits"]
            for key, request in container["resources"]["requests"].items():
                assert quantity(request) <= quantity(limits[key]), (name, key)
            assert set(limits) == {"cpu", "memory"}
            if "command" not in container:  # the gateway: nginx's own probe
                assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
                assert "location = /ready" in (K8S / "nginx.conf").read_text()
                continue
            if parse_cli(container["command"])[0] != "serve":
                continue
            role = served_role(container["command"])
            port = container["ports"][0]["containerPort"]
            assert port == DEFAULT_PORTS[role]
            probes = [v for k, v in container.items() if k.endswith("Probe")]
            assert {"livenessProbe", "readinessProbe"} <= set(container)
            for probe in probes:
                assert probe["httpGet"]["port"] == port
                assert routes.serves(role, probe["httpGet"]["path"])

    def test_services_target_the_ports_their_pods_listen_on(self) -> None:
        listening = {
            d["metadata"]["name"]: pod_containers(d)[0]["ports"][0]["containerPort"]
            for _, d in k8s_objects()
            if d["kind"] == "Deployment" and "ports" in pod_containers(d)[0]
        }
        services = [d for _, d in k8s_objects() if d["kind"] == "Service"]

        assert {s["metadata"]["name"] for s in services} == set(listening)
        for service in services:
            component = service["spec"]["selector"]["app.kubernetes.io/component"]
            assert service["spec"]["ports"][0]["targetPort"] == listening[component]

    def test_whoever_reads_or_writes_artifacts_mounts_the_shared_home(
        self,
    ) -> None:
        # Training and workers write models and payloads; inference and plot
        # read isolation forests.
        config = next(d for _, d in k8s_objects() if d["kind"] == "ConfigMap")
        home = config["data"]["ATALAIA_HOME"]
        pods = {
            d["metadata"]["name"]: d["spec"]["template"]["spec"]
            for _, d in k8s_objects()
            if d["kind"] == "Deployment"
        } | {
            d["metadata"]["name"]: d["spec"]["predictor"]
            for _, d in k8s_objects()
            if d["kind"] == "InferenceService"
        }
        for name in ("training", "worker", "inference", "plot", "atalaia-predictor"):
            pod = pods[name]
            claims = {
                v["name"]: v["persistentVolumeClaim"]["claimName"]
                for v in pod.get("volumes", [])
                if "persistentVolumeClaim" in v
            }
            mounts = {
                m["mountPath"]: m["name"]
                for m in pod["containers"][0].get("volumeMounts", [])
            }
            assert claims.get(mounts.get(home, "")) == "atalaia-home", name

    def test_one_scheduler_runs_even_during_a_rollout(self) -> None:
        [scheduler] = [
            d for _, d in k8s_objects()
            if d["kind"] == "Deployment" and d["metadata"]["name"] == "scheduler"
        ]  # fmt: skip

        assert scheduler["spec"]["replicas"] == 1
        assert scheduler["spec"]["strategy"] == {"type": "Recreate"}
        assert pod_containers(scheduler)[0]["command"][:2] == ["atalaia", "scheduler"]

    def test_inference_and_workers_scale_horizontally(self) -> None:
        deployments = {
            d["metadata"]["name"] for _, d in k8s_objects() if d["kind"] == "Deployment"
        }
        scaled = {
            d["spec"]["scaleTargetRef"]["name"]: d["spec"]
            for _, d in k8s_objects()
            if d["kind"] == "HorizontalPodAutoscaler"
        }

        assert set(scaled) == {"inference", "worker"} <= deployments
        assert all(s["minReplicas"] >= 2 for s in scaled.values())

    def test_network_policies_deny_by_default_and_open_the_api_ports(self) -> None:
        policies = {
            d["metadata"]["name"]: d["spec"]
            for _, d in k8s_objects()
            if d["kind"] == "NetworkPolicy"
        }

        assert policies["default-deny-ingress"] == {
            "podSelector": {},
            "policyTypes": ["Ingress"],
        }
        opened = {p["port"] for p in policies["apis"]["ingress"][0]["ports"]}
        assert opened == set(SERVICE_PORTS.values())

    def test_kustomize_applies_every_manifest_and_the_gateway_conf(self) -> None:
        kustomization = documents(K8S / "kustomization.yaml")[0]
        manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}

        assert set(kustomization["resources"]) == manifests
        assert kustomization["configMapGenerator"] == [
            {"name": "gateway", "files": ["nginx.conf"]}
        ]
        upstreams = {s: [f"{s}:{port}"] for s, port in SERVICE_PORTS.items()}
        expected = render_nginx_conf(upstreams, **IMAGE_GATEWAY)
        assert (K8S / "nginx.conf").read_text() == expected


def test_nginx_accepts_the_gateway_conf(tmp_path: Path) -> None:
    nginx = require_service("nginx", nginx_binary)
    upstreams = {
        "training": ["127.0.0.1:8000"],
        "inference": ["127.0.0.1:8001", "127.0.0.1:8011"],
        "plot": ["127.0.0.1:8002"],
        "health": ["127.0.0.1:8003"],
    }
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        render_nginx_conf(
            upstreams,
            listen="127.0.0.1:8080",
            runtime_dir=str(tmp_path),
            access_log=str(tmp_path / "access.log"),
        )  # fmt: skip
    )

    checked = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(conf), "-e", "stderr"],
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr


def test_the_image_installs_the_project_and_serves_by_default() -> None:
    lines = (DEPLOY / "Dockerfile").read_text().splitlines()
    instructions = [line for line in lines if line and not line.startswith(" ")]

    assert "FROM python:3.11-slim" in instructions
    assert any(re.search(r'pip install "\.\[postgres.*\]"', line) for line in lines)
    cmd = next(line for line in instructions if line.startswith("CMD "))
    assert served_role(json.loads(cmd.removeprefix("CMD "))) is ServiceRole.TRAINING
    expose = next(line for line in instructions if line.startswith("EXPOSE "))
    assert {int(p) for p in shlex.split(expose)[1:]} == set(SERVICE_PORTS.values())
