"""The files under deploy/ agree with the code: commands, ports, probe paths, nginx,
and the monitoring around them (Prometheus's targets, Alertmanager's receiver).

Nothing here is built or run by Docker or Kubernetes: commands are parsed by the
`atalaia` CLI (not run), probe paths are looked up in the routes of the service's
FastAPI app (built, not started), and nginx checks a rendered copy of the gateway.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from fnmatch import fnmatch
from functools import partial
from pathlib import Path
from shutil import which
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer
import yaml
from fastapi import FastAPI
from starlette.routing import Match
from typer.core import TyperGroup

from atalaia.cli import app
from atalaia.cli.scheduler import DEFAULT_METRICS_PORT
from atalaia.cli.serve import DEFAULT_PORTS, ServiceRole, create_role_app
from atalaia.cluster.gateway import (
    SERVICES,
    GatewayTls,
    nginx_binary,
    render_nginx_conf,
)
from atalaia.settings import Settings, load_settings
from atalaia.tls import ensure_self_signed
from fixtures import require_service

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
K8S = DEPLOY / "k8s"
RULES = DEPLOY / "prometheus" / "alerts.yml"
PGBACKREST_CONF = DEPLOY / "postgres" / "pgbackrest.conf"
STANZA = "atalaia"
KINDS = ("configMap", "secret")  # what a volume mounts files of
# How deploy/nginx/nginx.conf and deploy/k8s/nginx.conf are rendered (nginx image).
IMAGE_GATEWAY = {
    "listen": "80",
    "runtime_dir": "/var/cache/nginx",
    "access_log": "/dev/stdout",
    "user": "nginx",
}
# The certificate a Kubernetes TLS secret (or compose's ./nginx/tls) mounts; the
# HTTP port redirects to compose's published HTTPS port, or to 443.
K8S_TLS = GatewayTls("443", "/etc/nginx/tls/tls.crt", "/etc/nginx/tls/tls.key")
COMPOSE_TLS = replace(K8S_TLS, public_port=8443)
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


# The pods that use the artifact store, and the Secret of its credentials
# (optional: pods with an AWS role need none).
ARTIFACT_USERS = {
    "training", "worker", "inference", "plot", "scheduler", "atalaia-predictor",
}  # fmt: skip
S3_CREDENTIALS = {"secretRef": {"name": "atalaia-s3", "optional": True}}


def object_store_settings(env: dict[str, str]) -> Settings:
    """Settings of the artifact store's variables in `env` (validated)."""
    named = {
        key.removeprefix("ATALAIA_").lower(): value
        for key, value in env.items()
        if key == "ATALAIA_ARTIFACTS_URL" or key.startswith("ATALAIA_S3_")
    }
    return load_settings(**named)


def allowed(script: str) -> dict[str, tuple[str, str]]:
    """minio-setup's grants: bucket variable → (user, password variable), each
    made by its `allow` function (the bucket, a policy of it alone, the user)."""
    for line in (
        'mc mb --ignore-existing "store/$$1"',
        'mc admin user add store "$$2" "$$3"',
        'mc admin policy attach store "$$4" --user "$$2" || true',
        '"Resource": ["arn:aws:s3:::$$1/*"]}]}',
    ):
        assert line in script, line
    calls = [shlex.split(line) for line in script.splitlines()]
    return {
        bucket.removeprefix("$$"): (user, password.removeprefix("$$"))
        for name, bucket, user, password, _ in (c for c in calls if c[:1] == ["allow"])
    }


class TestCompose:
    def test_runs_every_part_of_the_platform(self) -> None:
        assert {
            "postgres", "redis", "rabbitmq", "minio", "minio-setup", "nginx",
            "training", "inference-1", "inference-2", "plot", "health", "worker",
            "scheduler", "prometheus", "alertmanager", "grafana",
        } <= set(compose())  # fmt: skip

    def test_artifacts_are_in_the_bucket_minio_setup_makes_before_training(
        self,
    ) -> None:
        services = compose()
        setup = services["minio-setup"]
        script = setup["command"][0]
        env = services["training"]["environment"]
        settings = object_store_settings(env)
        bucket = settings.artifacts_bucket
        endpoint = urlsplit(settings.s3_endpoint_url or "")

        assert bucket is not None
        assert setup["environment"]["BUCKET"] == bucket.bucket
        assert "http://minio:9000" in script
        assert (endpoint.hostname, endpoint.port) == ("minio", 9000)
        assert services["minio"]["command"][:2] == ["server", "/data"]
        assert settings.s3_path_style  # MinIO: the bucket in the path
        assert allowed(script)["BUCKET"] == (env["AWS_ACCESS_KEY_ID"], "APP_PASSWORD")
        assert services["training"]["depends_on"]["minio-setup"] == {
            "condition": "service_completed_successfully"
        }
        assert services["minio"]["healthcheck"]["test"] == [
            "CMD", "mc", "ready", "local"
        ]  # fmt: skip

    def test_every_platform_process_reaches_the_same_bucket(self) -> None:
        services = compose()
        platform = [
            s for s in services.values()
            if s.get("command", [""])[0] == "atalaia"
        ]  # fmt: skip
        envs = {
            (e["ATALAIA_ARTIFACTS_URL"], e["ATALAIA_S3_ENDPOINT_URL"])
            for e in (s["environment"] for s in platform)
        }

        assert len(platform) >= 7
        assert envs == {("s3://atalaia/artifacts", "http://minio:9000")}

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
        assert "./nginx/tls:/etc/nginx/tls:ro" in nginx["volumes"]
        assert nginx["ports"] == ["8080:80", f"{COMPOSE_TLS.public_port}:443"]
        expected = render_nginx_conf(
            compose_upstreams(), tls=COMPOSE_TLS, **IMAGE_GATEWAY
        )
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

    def test_prometheus_scrapes_every_service_and_the_scheduler(
        self, routes: Routes
    ) -> None:
        config = documents(DEPLOY / "prometheus" / "prometheus.yml")[0]
        jobs = {job["job_name"]: job for job in config["scrape_configs"]}
        scraped = {
            name: job["static_configs"][0]["targets"] for name, job in jobs.items()
        }
        command, scheduler = parse_cli(compose()["scheduler"]["command"])

        assert command == "scheduler"
        assert scheduler["host"] == "0.0.0.0"
        assert scraped == compose_upstreams() | {
            "scheduler": [f"scheduler:{scheduler['metrics_port']}"]
        }
        for name in compose_upstreams():
            assert routes.serves(ServiceRole(name), jobs[name]["metrics_path"])

    def test_prometheus_loads_the_mounted_rules_and_alerts_alertmanager(
        self,
    ) -> None:
        prometheus = compose()["prometheus"]
        config = documents(DEPLOY / "prometheus" / "prometheus.yml")[0]
        mounts = dict(v.removesuffix(":ro").split(":") for v in prometheus["volumes"])

        assert mounts["./prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
        [rules] = config["rule_files"]
        assert fnmatch(mounts[f"./{RULES.relative_to(DEPLOY)}"], rules)
        [alertmanager] = config["alerting"]["alertmanagers"]
        assert alertmanager["static_configs"][0]["targets"] == ["alertmanager:9093"]

    def test_alertmanager_posts_to_the_training_service_with_its_token(
        self,
    ) -> None:
        service = compose()["alertmanager"]
        config = documents(DEPLOY / "alertmanager.yml")[0]
        flags = dict(arg.removeprefix("--").split("=", 1) for arg in service["command"])
        [receiver] = config["receivers"]
        [webhook] = receiver["webhook_configs"]
        [secret] = service["secrets"]

        assert f"./alertmanager.yml:{flags['config.file']}:ro" in service["volumes"]
        assert flags["cluster.listen-address"] == ""  # one instance, no gossip
        assert config["route"]["receiver"] == receiver["name"]
        url = urlsplit(webhook["url"])
        assert url.netloc == compose_upstreams()["training"][0]
        assert url.path == "/api/v1/alerts/alertmanager"
        assert webhook["send_resolved"] is True
        credentials = webhook["http_config"]["authorization"]["credentials_file"]
        assert secret["target"] == credentials
        assert (
            secret["source"] in documents(DEPLOY / "docker-compose.yml")[0]["secrets"]
        )


def pgbackrest_conf() -> dict[str, dict[str, str]]:
    """deploy/postgres/pgbackrest.conf: section → option → value."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(PGBACKREST_CONF.read_text())
    return {name: dict(parser[name]) for name in parser.sections()}


def server_settings(argv: list[str]) -> dict[str, str]:
    """The `-c name=value` settings of a `postgres` command."""
    assert argv[0] == "postgres", argv
    pairs = argv[2::2]
    assert argv[1::2] == ["-c"] * len(pairs)
    return dict(pair.split("=", 1) for pair in pairs)


def installed(name: str) -> str:
    """The path of command `name`; FileNotFoundError naming its package."""
    found = which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed (apt-get install {name})")
    return found


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """A compose service's volumes: mount path → "volume[:ro]"."""
    found = {}
    for volume in service["volumes"]:
        source, path, *mode = volume.split(":")
        found[path] = ":".join([source, *mode])
    return found


class TestContinuousArchiving:
    """PostgreSQL archives its WAL through pgBackRest into MinIO (compose)."""

    def test_postgres_ships_every_segment_through_pgbackrest_within_an_hour(
        self,
    ) -> None:
        postgres = compose()["postgres"]
        settings = server_settings(postgres["command"])

        assert postgres["build"]["dockerfile"] == "deploy/postgres/Dockerfile"
        assert settings["wal_level"] == "replica"
        assert settings["archive_mode"] == "on"
        assert settings["archive_command"] == (
            f"pgbackrest --stanza={STANZA} archive-push %p"
        )
        assert 0 < int(settings["archive_timeout"]) <= 3600  # the RPO
        assert list(pgbackrest_conf()) == ["global", "global:archive-push", STANZA]

    def test_the_repository_is_a_bucket_of_its_own_reached_over_https(
        self,
    ) -> None:
        services = compose()
        conf = pgbackrest_conf()["global"]
        setup = services["minio-setup"]
        env = services["postgres"]["environment"]
        proxy = services[conf["repo1-s3-endpoint"]]
        proxy_script = (DEPLOY / "postgres" / proxy["command"][0]).read_text()
        artifacts = object_store_settings(services["training"]["environment"])
        tls_folder = conf["repo1-storage-ca-file"].rsplit("/", 1)[0]

        assert conf["repo1-type"] == "s3"
        assert conf["repo1-s3-uri-style"] == "path"  # MinIO: the bucket in the path
        assert setup["environment"]["PGBACKREST_BUCKET"] == conf["repo1-s3-bucket"]
        assert artifacts.artifacts_bucket is not None
        assert conf["repo1-s3-bucket"] != artifacts.artifacts_bucket.bucket
        assert allowed(setup["command"][0])["PGBACKREST_BUCKET"] == (
            env["PGBACKREST_REPO1_S3_KEY"], "PGBACKREST_PASSWORD"
        )  # fmt: skip
        assert (
            env["PGBACKREST_REPO1_S3_KEY_SECRET"]
            == (setup["environment"]["PGBACKREST_PASSWORD"])
        )
        # pgBackRest 2.45 speaks S3 over HTTPS only: TLS in front of MinIO,
        # its certificate trusted through the volume they share.
        assert f"accept = {conf['repo1-storage-port']}" in proxy_script
        assert "connect = minio:9000" in proxy_script
        assert f"tls={tls_folder}" in proxy_script
        assert mounts(proxy)[tls_folder] == "pgbackrest-tls"
        assert mounts(services["postgres"])[tls_folder] == "pgbackrest-tls:ro"
        assert services["postgres"]["depends_on"]["minio-tls"] == {
            "condition": "service_healthy"  # the certificate is there
        }
        assert proxy["healthcheck"]["test"][-1] == conf["repo1-storage-ca-file"]
        assert proxy["depends_on"]["minio-setup"] == {
            "condition": "service_completed_successfully"
        }

    def test_archiving_is_asynchronous_compressed_and_kept_two_full_backups(
        self,
    ) -> None:
        conf = pgbackrest_conf()["global"]

        assert conf["archive-async"] == "y"
        assert conf["spool-path"]
        assert conf["compress-type"] == "zst"
        assert int(conf["process-max"]) >= 1
        assert int(conf["repo1-retention-full"]) == 2

    def test_base_backups_run_beside_the_server_on_its_files(self) -> None:
        services = compose()
        postgres, sidecar = services["postgres"], services["pgbackrest"]
        stanza = pgbackrest_conf()[STANZA]
        schedule = (DEPLOY / "postgres" / sidecar["command"][0]).read_text()
        data, socket = stanza["pg1-path"], stanza["pg1-socket-path"]

        assert sidecar["image"] == postgres["image"] == services["minio-tls"]["image"]
        assert sidecar["user"] == "postgres"
        for path in (data, socket):
            assert mounts(sidecar)[path] == mounts(postgres)[path]
        assert stanza["pg1-user"] == postgres["environment"]["POSTGRES_USER"]
        assert sidecar["depends_on"]["postgres"] == {"condition": "service_healthy"}
        assert f"pgbackrest --stanza={STANZA} stanza-create" in schedule
        assert f'pgbackrest --stanza={STANZA} --type="$type" backup' in schedule
        assert {"BACKUP_EVERY_HOURS", "FULL_WEEKDAY"} <= set(sidecar["environment"])

    def test_the_image_adds_pgbackrest_its_config_and_the_scripts(self) -> None:
        dockerfile = (DEPLOY / "postgres" / "Dockerfile").read_text()
        scripts = [
            compose()[name]["command"][0] for name in ("pgbackrest", "minio-tls")
        ]

        assert "FROM postgres:16" in dockerfile.splitlines()
        assert re.search(r"apt-get install -y [^\n]*\bpgbackrest\b", dockerfile)
        assert (
            "COPY deploy/postgres/pgbackrest.conf /etc/pgbackrest/pgbackrest.conf"
            in dockerfile
        )
        copied = (
            f"COPY {' '.join(f'deploy/postgres/{s}' for s in scripts)} /usr/local/bin/"
        )
        assert copied in dockerfile
        for script in scripts:
            assert os.access(DEPLOY / "postgres" / script, os.X_OK), script

    def test_pgbackrest_reads_the_config_and_wants_the_key_from_the_environment(
        self,
    ) -> None:
        pgbackrest = require_service("pgbackrest", partial(installed, "pgbackrest"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("PGBACKREST_")}

        checked = subprocess.run(
            [pgbackrest, f"--config={PGBACKREST_CONF}", f"--stanza={STANZA}",
             "archive-push"],
            capture_output=True, text=True, timeout=30, env=env,
        )  # fmt: skip

        said = checked.stdout + checked.stderr
        assert checked.returncode != 0
        assert "invalid option" not in said  # every option known to 2.45
        assert "archive-push command requires option: repo1-s3-key" in said


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
            if container["image"].startswith("prom/"):  # Prometheus, Alertmanager
                port = container["ports"][0]["containerPort"]
                for kind, path in (
                    ("liveness", "/-/healthy"),
                    ("readiness", "/-/ready"),
                ):
                    assert container[f"{kind}Probe"]["httpGet"] == {
                        "path": path,
                        "port": port,
                    }
                continue
            if container["image"].startswith("grafana/"):  # Grafana's own probe
                port = container["ports"][0]["containerPort"]
                for kind in ("liveness", "readiness"):
                    probe = container[f"{kind}Probe"]["httpGet"]
                    assert probe == {"path": "/api/health", "port": port}
                continue
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

    def test_whoever_reads_or_writes_artifacts_reaches_the_bucket(self) -> None:
        # Training and workers write models and payloads; inference and plot
        # read isolation forests; the scheduler stores and sends reports.
        [config] = [
            d for _, d in k8s_objects()
            if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "atalaia"
        ]  # fmt: skip
        pods = {
            d["metadata"]["name"]: d["spec"]["template"]["spec"]
            for _, d in k8s_objects()
            if d["kind"] == "Deployment"
        } | {
            d["metadata"]["name"]: d["spec"]["predictor"]
            for _, d in k8s_objects()
            if d["kind"] == "InferenceService"
        }

        assert object_store_settings(config["data"]).artifacts_bucket is not None
        assert set(pods) >= ARTIFACT_USERS
        for name in pods:
            sources = pods[name]["containers"][0].get("envFrom", [])
            if name in ARTIFACT_USERS:
                assert {"configMapRef": {"name": "atalaia"}} in sources, name
            assert (S3_CREDENTIALS in sources) == (name in ARTIFACT_USERS), name

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

    def test_prometheus_reaches_every_metrics_port_alertmanager_the_receiver(
        self,
    ) -> None:
        policies = [d["spec"] for _, d in k8s_objects() if d["kind"] == "NetworkPolicy"]
        templates = {
            d["metadata"]["name"]: d["spec"]["template"]
            for _, d in k8s_objects()
            if d["kind"] == "Deployment"
        }
        labels = {name: t["metadata"]["labels"] for name, t in templates.items()}
        scraped = {
            name: int(t["metadata"]["annotations"]["prometheus.io/port"])
            for name, t in templates.items()
            if t["metadata"].get("annotations", {}).get("prometheus.io/scrape")
        }
        prometheus, alertmanager = labels["prometheus"], labels["alertmanager"]

        assert set(scraped) == {*SERVICE_PORTS, "scheduler"}
        assert scraped["scheduler"] == DEFAULT_METRICS_PORT
        for name, port in scraped.items():
            assert (
                port
                == templates[name]["spec"]["containers"][0]["ports"][0]["containerPort"]
            )
            assert admits(policies, prometheus, labels[name], port), name
        assert admits(policies, alertmanager, labels["training"], 8000)
        assert admits(policies, prometheus, alertmanager, 9093)
        assert not admits(policies, alertmanager, labels["inference"], 8001)
        assert not admits(policies, labels["worker"], alertmanager, 9093)

    def test_prometheus_and_alertmanager_read_their_mounted_config(self) -> None:
        pods = {
            d["metadata"]["name"]: d["spec"]["template"]["spec"]
            for _, d in k8s_objects()
            if d["kind"] == "Deployment"
        }
        prometheus, alertmanager = pods["prometheus"], pods["alertmanager"]
        config = documents(K8S / "prometheus.yml")[0]
        [rules] = config["rule_files"]
        [alerting] = config["alerting"]["alertmanagers"]
        [receiver] = documents(K8S / "alertmanager.yml")[0]["receivers"]
        [webhook] = receiver["webhook_configs"]
        credentials = webhook["http_config"]["authorization"]["credentials_file"]

        assert mounted_file(prometheus, flag(prometheus, "config.file")) == (
            "configMap prometheus/prometheus.yml"
        )
        assert mounted_file(prometheus, rules.replace("*.yml", RULES.name)) == (
            f"configMap prometheus-rules/{RULES.name}"
        )
        assert alerting["static_configs"][0]["targets"] == ["alertmanager:9093"]
        assert mounted_file(alertmanager, flag(alertmanager, "config.file")) == (
            "configMap alertmanager/alertmanager.yml"
        )
        assert mounted_file(alertmanager, credentials) == (
            "secret alertmanager-token/token"
        )
        assert (
            urlsplit(webhook["url"]).netloc == f"training:{SERVICE_PORTS['training']}"
        )
        # Kubernetes' copy of the one Alertmanager config (kustomize reads only
        # files below deploy/k8s).
        assert (K8S / "alertmanager.yml").read_text() == (
            DEPLOY / "alertmanager.yml"
        ).read_text()

    def test_kustomize_applies_every_manifest_and_the_generated_configs(
        self,
    ) -> None:
        kustomization = documents(K8S / "kustomization.yaml")[0]
        manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
        rules = documents(RULES.parent / "kustomization.yaml")[0]

        # The rules stay in deploy/prometheus, where promtool tests them, and
        # the dashboards in deploy/grafana (tests/deploy/test_grafana_dashboards).
        assert set(kustomization["resources"]) == manifests | {
            "../prometheus",
            "../grafana",
        }
        assert kustomization["configMapGenerator"] == [
            {"name": "gateway", "files": ["nginx.conf"]},
            {"name": "prometheus", "files": ["prometheus.yml"]},
            {"name": "alertmanager", "files": ["alertmanager.yml"]},
        ]
        assert rules["configMapGenerator"] == [
            {"name": "prometheus-rules", "files": [RULES.name]}
        ]
        upstreams = {s: [f"{s}:{port}"] for s, port in SERVICE_PORTS.items()}
        expected = render_nginx_conf(upstreams, tls=K8S_TLS, **IMAGE_GATEWAY)
        assert (K8S / "nginx.conf").read_text() == expected


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels, matchExpressions of `In`) selects
    a pod labelled `labels`."""
    expressions = selector.get("matchExpressions", [])
    assert all(e["operator"] == "In" for e in expressions)
    return all(
        labels.get(key) == value
        for key, value in selector.get("matchLabels", {}).items()
    ) and all(labels.get(e["key"]) in e["values"] for e in expressions)


def admits(
    policies: list[dict[str, Any]],
    source: dict[str, str],
    target: dict[str, str],
    port: int,
) -> bool:
    """Whether `policies` let a pod of the namespace labelled `source` open
    `port` on a pod labelled `target` (ingress rules only: egress is open)."""
    for policy in policies:
        if not selects(policy["podSelector"], target):
            continue
        for rule in policy.get("ingress", []):
            if port not in {p["port"] for p in rule.get("ports", [{"port": port}])}:
                continue
            if any(
                "namespaceSelector" not in peer and selects(peer["podSelector"], source)
                for peer in rule.get("from", [{"podSelector": {}}])
            ):
                return True
    return False


def flag(pod: dict[str, Any], name: str) -> str:
    """The value of `--name=value` among the args of a pod's one container."""
    [container] = pod["containers"]
    flags: dict[str, str] = dict(
        a.removeprefix("--").split("=", 1) for a in container["args"]
    )
    return flags[name]


def mounted_file(pod: dict[str, Any], path: str) -> str:
    """Where the file at `path` in a pod's one container comes from:
    "configMap NAME/KEY" or "secret NAME/KEY"."""
    [container] = pod["containers"]
    folder, file = path.rsplit("/", 1)
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == folder]
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    sources = volume.get("projected", {}).get("sources", [volume])
    specs = [(k, v) for source in sources for k, v in source.items() if k in KINDS]
    # A source naming its items holds those alone; one that does not, every key.
    for kind, spec in sorted(specs, key=lambda found: "items" not in found[1]):
        items = {i["path"]: i["key"] for i in spec.get("items", [])}
        if not items or file in items:
            return f"{kind} {spec['name']}/{items.get(file, file)}"
    raise AssertionError(f"nothing mounted at {path}")


def test_the_k8s_gateway_mounts_its_certificate_and_is_open_on_https() -> None:
    [gateway] = [
        doc
        for name, doc in k8s_objects()
        if name == "gateway.yaml" and doc["kind"] == "Deployment"
    ]
    pod = gateway["spec"]["template"]["spec"]
    labels = gateway["spec"]["template"]["metadata"]["labels"]
    policies = [d["spec"] for _, d in k8s_objects() if d["kind"] == "NetworkPolicy"]

    for path in (K8S_TLS.cert_file, K8S_TLS.key_file):
        assert mounted_file(pod, path) == f"secret gateway-tls/{Path(path).name}"
    assert admits(policies, {}, labels, 443)
    assert admits(policies, {}, labels, 80)


def test_the_gateway_sends_every_training_route_to_training() -> None:
    from atalaia.api import training
    from atalaia.api.common.body_limits import MANAGEMENT, UPLOAD
    from atalaia.cluster.gateway import TRAINING_ROUTES

    prefixes = {r.prefix.strip("/").split("/")[0] for r in training.routers()}

    assert prefixes == set(MANAGEMENT.routes) | set(TRAINING_ROUTES) | set(
        UPLOAD.routes
    )


def test_nginx_accepts_the_gateway_conf(tmp_path: Path) -> None:
    nginx = require_service("nginx", nginx_binary)
    upstreams = {
        "training": ["127.0.0.1:8000"],
        "inference": ["127.0.0.1:8001", "127.0.0.1:8011"],
        "plot": ["127.0.0.1:8002"],
        "health": ["127.0.0.1:8003"],
    }
    tls, _ = ensure_self_signed(tmp_path)
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        render_nginx_conf(
            upstreams,
            listen="127.0.0.1:8080",
            tls=GatewayTls("127.0.0.1:8443", str(tls.cert), str(tls.key), 8443),
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
