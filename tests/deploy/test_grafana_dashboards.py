"""The Grafana dashboards (deploy/grafana/dashboards): each is well formed and
provisioned in docker-compose and Kubernetes, and every panel's query is valid
PromQL (promtool) reading only metrics the services export.

The exported names come from the services themselves: each app factory of
`atalaia.api` (and the embedded platform) runs on PostgreSQL and Redis, is
asked a training, a promotion, an ingest and predictions, and is scraped.

promtool comes with Debian's prometheus package (.ci/run installs it): without
it these tests fail, they never skip.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from atalaia.api.common.auth import Role
from atalaia.settings import Settings
from fixtures.api import SERVICES, bearer, post_ok, predict, promote
from fixtures.api import train as train_series
from fixtures.db import truncate_tables

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
GRAFANA = DEPLOY / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "atalaia.yml"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "atalaia.yml"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Series Prometheus writes itself for every scrape target.
PROMETHEUS_OWN = {"up"}
# The names a metric family of each type exposes (OpenMetrics suffixes).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gauge": ("",),
    "unknown": ("",),
}
# Grafana's own variables, as a range or a step they stand for.
BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}
SERIES = "sensor_001_radial"

# -- PromQL: the metric names an expression reads ----------------------------------

STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
MATCHERS = re.compile(r"\{[^{}]*\}")  # label matchers (their strings blanked)
RANGE = re.compile(r"\[[^\[\]]*\]")  # ranges and subqueries' range:step
LABEL_LIST = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)"
)
# An identifier that does not continue a number (1e3, 0x1f, 5m) or a name.
IDENTIFIER = re.compile(r"(?<![\w:.])[A-Za-z_:][\w:]*")
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
COUNTER_FUNCTIONS = re.compile(r"\b(?:rate|irate|increase)\s*\(\s*([A-Za-z_:][\w:]*)")


def stripped(expr: str) -> str:
    """`expr` without strings, variables, label matchers, ranges and label lists:
    what is left names metrics, functions, keywords and numbers."""
    text = VARIABLE.sub(" ", STRING.sub('""', expr))
    for pattern in (MATCHERS, RANGE, LABEL_LIST):
        text = pattern.sub(" ", text)
    return text


def metric_names(expr: str) -> set[str]:
    """The metric names `expr` reads (functions and aggregations are followed
    by a parenthesis; keywords and numbers are not names)."""
    text = stripped(expr)
    return {
        match.group()
        for match in IDENTIFIER.finditer(text)
        if match.group().lower() not in KEYWORDS
        and not text[match.end() :].lstrip().startswith("(")
    }


class TestMetricNames:
    @pytest.mark.parametrize(
        ("expr", "names"),
        [
            ("up", {"up"}),
            ('sum by (job, le) (rate(a_bucket{job=~"$job",route=~"/x/[{]id[}]"}[5m]))',
             {"a_bucket"}),
            ("histogram_quantile(0.95, sum without (instance) (b[$__rate_interval]))",
             {"b"}),
            ("c / on (job) group_left (stage) d offset 5m > bool 1e3", {"c", "d"}),
            ('max(e[1h:5m]) or vector(0) unless f{g="h and i"}', {"e", "f"}),
            ("sum(j) by (k) * -0x1F", {"j"}),
            ('label_replace(k, "dst", "$1", "src", "(.*)")', {"k"}),
        ],
    )  # fmt: skip
    def test_finds_the_metrics_and_only_them(self, expr: str, names: set[str]) -> None:
        assert metric_names(expr) == names


# -- the dashboards ----------------------------------------------------------------


def load(path: Path) -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(path.read_text())
    return dashboard


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel but rows, those inside collapsed rows too."""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard["templating"]["list"]}


def expressions(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every panel target and of every query variable
    (`label_values(selector, label)` reads `selector`)."""
    for panel in panels(dashboard):
        for target in panel["targets"]:
            yield f"{panel['title']} {target['refId']}", target["expr"]
    for name, variable in variables(dashboard).items():
        if variable["type"] == "query":
            query = variable["query"]["query"]
            found = re.fullmatch(r"label_values\((.+),\s*\w+\)", query)
            assert found, query
            yield f"${name}", found.group(1)


def substituted(expr: str, dashboard: dict[str, Any]) -> str:
    """`expr` with each variable as Prometheus could run it: Grafana's
    intervals as durations, the dashboard's own as a regex of every value."""
    own = {
        name: v.get("allValue", ".+")
        for name, v in variables(dashboard).items()
        if v["type"] == "query"
    }

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in BUILTINS or name in own, f"unknown variable ${name} in {expr}"
        return BUILTINS.get(name) or own[name]

    return VARIABLE.sub(value, expr)


@pytest.fixture(params=DASHBOARDS, ids=lambda p: p.stem)
def dashboard(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load(request.param)


class TestDashboards:
    def test_the_three_dashboards_have_unique_uids_and_titles(self) -> None:
        loaded = [load(path) for path in DASHBOARDS]

        assert [path.stem for path in DASHBOARDS] == [
            "atalaia-ml-operations", "atalaia-model-performance", "atalaia-system",
        ]  # fmt: skip
        assert [d["uid"] for d in loaded] == [path.stem for path in DASHBOARDS]
        assert len({d["title"] for d in loaded}) == len(loaded)
        assert all(len(d["uid"]) <= 40 for d in loaded)  # Grafana's limit

    def test_is_a_current_dashboard_on_a_chosen_prometheus(
        self, dashboard: dict[str, Any]
    ) -> None:
        source = variables(dashboard)["datasource"]

        assert 36 <= dashboard["schemaVersion"] <= 39  # Grafana 10 and 11
        assert dashboard.get("id") is None  # provisioned: Grafana numbers it
        assert (source["type"], source["query"]) == ("datasource", "prometheus")
        for variable in variables(dashboard).values():
            if variable["type"] == "query":
                assert variable["datasource"] == DATASOURCE

    def test_every_panel_queries_the_chosen_prometheus(
        self, dashboard: dict[str, Any]
    ) -> None:
        for panel in panels(dashboard):
            assert panel["datasource"] == DATASOURCE, panel["title"]
            assert panel["targets"], panel["title"]
            ref_ids = [target["refId"] for target in panel["targets"]]
            assert len(set(ref_ids)) == len(ref_ids), panel["title"]
            for target in panel["targets"]:
                assert target["datasource"] == DATASOURCE, panel["title"]
                assert target["expr"].strip(), panel["title"]

    def test_every_panel_says_what_it_shows_and_in_what_unit(
        self, dashboard: dict[str, Any]
    ) -> None:
        for panel in panels(dashboard):
            defaults = panel["fieldConfig"]["defaults"]
            assert len(panel["description"]) > 30, panel["title"]
            if panel["type"] != "state-timeline":  # its values are mapped to text
                assert defaults["unit"], panel["title"]
            assert defaults["thresholds"]["steps"][0]["value"] is None

    def test_panels_tile_the_grid_without_overlapping(
        self, dashboard: dict[str, Any]
    ) -> None:
        cells: set[tuple[int, int]] = set()
        ids = [panel["id"] for panel in dashboard["panels"]]
        for panel in dashboard["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] >= 0, panel["title"]
            assert grid["x"] + grid["w"] <= 24, panel["title"]
            covered = {
                (x, y)
                for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])
            }
            assert not covered & cells, panel["title"]
            cells |= covered
        assert len(set(ids)) == len(ids)

    def test_every_expression_is_valid_promql(
        self, dashboard: dict[str, Any], tmp_path: Path
    ) -> None:
        rules = [
            {"record": f"dashboard:query_{n}", "expr": substituted(expr, dashboard)}
            for n, (_, expr) in enumerate(expressions(dashboard))
        ]
        path = tmp_path / "queries.yml"
        path.write_text(yaml.safe_dump({"groups": [{"name": "q", "rules": rules}]}))

        checked = subprocess.run(
            [promtool(), "check", "rules", str(path)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert f"SUCCESS: {len(rules)} rules found" in checked.stdout


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is not installed (apt-get install prometheus)")
    return found


# -- the metrics the services export -----------------------------------------------


def exported(text: str) -> dict[str, str]:
    """Every name a scrape's families may expose, with its family's type."""
    names: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        suffixes = SUFFIXES.get(family.type, ("",))
        names |= {family.name + suffix: family.type for suffix in suffixes}
        names |= {sample.name: family.type for sample in family.samples}
    return names


def scrape(client: TestClient) -> dict[str, str]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return exported(response.text)


def exercise_training(client: TestClient, settings: Settings) -> None:
    """Train SERIES, promote the version, label a reading."""
    admin = bearer(settings, Role.ADMIN)
    job = train_series(client, SERIES, admin)
    assert job["status"] == "succeeded", job
    promote(client, SERIES, job["model_version"], admin)
    label = {"timestamp": 1_733_700_000.0, "is_anomaly": False}
    response = client.post(f"/api/v1/feedback/{SERIES}", json=label, headers=admin)
    assert response.status_code == 201, response.text


def exercise_inference(client: TestClient, settings: Settings) -> None:
    """Predict a served series and an unknown one; ingest readings (scored)."""
    admin = bearer(settings, Role.ADMIN)
    predict(client, admin, series_id=SERIES)
    predict(client, admin, series_id="sensor_999_unknown")
    points = {"timestamps": [1_733_700_000.0, 1_733_700_060.0], "values": [0.3, 90.0]}
    post_ok(client, admin, f"/api/v1/series/{SERIES}/points", points)


@pytest.fixture(scope="module")
def platform_metrics(
    tmp_path_factory: pytest.TempPathFactory, postgres_database: str, redis_url: str
) -> Iterator[dict[str, str]]:
    """Every name the services' /metrics expose after a training, a promotion,
    an ingest and predictions, with its type."""
    truncate_tables(postgres_database)
    prefix = f"atalaia-test:{uuid.uuid4().hex[:12]}:"
    settings = Settings(
        home=tmp_path_factory.mktemp("home"), database_url=postgres_database,
        redis_url=redis_url, redis_prefix=prefix, log_json=False,
    )  # fmt: skip
    names: dict[str, str] = {}
    try:
        for service in ("training", "inference", "plot", "health", "embedded"):
            with TestClient(SERVICES[service](settings)) as client:
                if service == "training":
                    exercise_training(client, settings)
                if service in ("inference", "embedded"):
                    exercise_inference(client, settings)
                names |= scrape(client)
        yield names
    finally:
        keys = redis.Redis.from_url(redis_url)
        for key in keys.scan_iter(match=prefix + "*", count=1000):
            keys.delete(key)
        keys.close()


class TestQueriedMetrics:
    def test_every_metric_queried_is_exported(
        self, dashboard: dict[str, Any], platform_metrics: dict[str, str]
    ) -> None:
        queried = {
            (where, name)
            for where, expr in expressions(dashboard)
            for name in metric_names(expr)
        }

        assert queried  # the parser finds them
        missing = {
            (where, name)
            for where, name in queried
            if name not in platform_metrics and name not in PROMETHEUS_OWN
        }
        assert not missing

    def test_rates_are_taken_of_counters_only(
        self, dashboard: dict[str, Any], platform_metrics: dict[str, str]
    ) -> None:
        for where, expr in expressions(dashboard):
            for name in COUNTER_FUNCTIONS.findall(STRING.sub('""', expr)):
                assert platform_metrics[name] in ("counter", "histogram"), where

    def test_the_platform_exports_what_the_dashboards_need(
        self, platform_metrics: dict[str, str]
    ) -> None:
        # A name dropped from the services fails here as well as in the panels.
        assert {
            "http_requests_total", "http_request_duration_seconds_bucket",
            "anomaly_predictions_total", "model_load_duration_seconds_count",
            "model_cache_hit_rate", "training_queue_depth",
            "model_drift_detected_total", "model_versions", "model_feedback_labels",
            "model_stage_moves_total", "dependency_up",
            "database_pool_connections_in_use", "process_cpu_seconds_total",
        } <= set(platform_metrics)  # fmt: skip


# -- provisioning ------------------------------------------------------------------


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def provider_path() -> str:
    [provider] = documents(PROVIDERS)[0]["providers"]
    assert (provider["type"], provider["disableDeletion"]) == ("file", True)
    path: str = provider["options"]["path"]
    return path


class TestProvisioning:
    def test_compose_mounts_the_dashboards_where_the_provider_reads(self) -> None:
        compose = documents(DEPLOY / "docker-compose.yml")[0]["services"]
        grafana = compose["grafana"]
        mounts = dict(v.removesuffix(":ro").split(":") for v in grafana["volumes"])
        home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]

        assert mounts == {
            f"./grafana/provisioning/{kind}": f"/etc/grafana/provisioning/{kind}"
            for kind in ("datasources", "dashboards")
        } | {"./grafana/dashboards": provider_path()}
        assert home == f"{provider_path()}/atalaia-system.json"
        assert "prometheus" in compose

    def test_the_datasource_is_the_platforms_prometheus(self) -> None:
        [source] = documents(DATASOURCES)[0]["datasources"]

        assert (source["type"], source["url"]) == (
            "prometheus",
            "http://prometheus:9090",  # the compose service and the k8s Service
        )
        assert source["isDefault"] is True

    def test_kubernetes_generates_the_same_files_and_mounts_them(self) -> None:
        kustomization = documents(GRAFANA / "kustomization.yaml")[0]
        generated = {
            g["name"]: sorted(g["files"]) for g in kustomization["configMapGenerator"]
        }
        [deployment] = [
            d for d in documents(DEPLOY / "k8s" / "grafana.yaml")
            if d["kind"] == "Deployment"
        ]  # fmt: skip
        pod = deployment["spec"]["template"]["spec"]
        [container] = pod["containers"]
        volumes = {
            v["name"]: v["configMap"]["name"]
            for v in pod["volumes"]
            if "configMap" in v
        }
        mounted = {
            m["mountPath"]: volumes.get(m["name"]) for m in container["volumeMounts"]
        }

        assert (
            "../grafana"
            in documents(DEPLOY / "k8s" / "kustomization.yaml")[0]["resources"]
        )
        assert generated == {
            "grafana-datasources": [str(DATASOURCES.relative_to(GRAFANA))],
            "grafana-dashboard-providers": [str(PROVIDERS.relative_to(GRAFANA))],
            "grafana-dashboards": [str(p.relative_to(GRAFANA)) for p in DASHBOARDS],
        }  # fmt: skip
        assert mounted[provider_path()] == "grafana-dashboards"
        assert mounted["/etc/grafana/provisioning/dashboards"] == (
            "grafana-dashboard-providers"
        )
        assert mounted["/etc/grafana/provisioning/datasources"] == "grafana-datasources"
