"""The platform's alert rules and Alertmanager's config, checked by Prometheus's
own tools, and one alert raised end to end: a real platform scraped by a real
Prometheus, whose alert a real Alertmanager posts to the platform's receiver,
whose alerter tells a webhook.

promtool, amtool and the servers come with Debian's prometheus and
prometheus-alertmanager; without them these tests skip, or fail under
ATALAIA_REQUIRE_SERVICES=1. The servers run on free loopback ports with their
data in the test's folder, never on a system instance's 9090 or 9093.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from atalaia.api.common.auth import Role
from atalaia.api.common.resources import authenticator_for
from atalaia.api.training.metrics import WAL_ARCHIVE_METRICS
from atalaia.cli.demo import embedded_server, free_port
from atalaia.embedded import create_embedded_app
from atalaia.settings import Settings
from fixtures import require_service
from fixtures.api import bearer
from fixtures.receivers import Receiver, Request

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
RULE_TESTS = DEPLOY / "prometheus" / "alerts.test.yml"
PROMETHEUS_CONFIGS = [
    DEPLOY / "prometheus" / "prometheus.yml",
    DEPLOY / "k8s" / "prometheus.yml",
]
ALERTMANAGER = DEPLOY / "alertmanager.yml"
SEVERITIES = {"critical", "warning", "info"}
# A name followed by a selector or a range: a metric the rule reads.
METRIC = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{\[]")
QUOTED = re.compile(r'"[^"]*"')  # label values: routes, regular expressions
INSTALL = "apt-get install prometheus prometheus-alertmanager"


def binary(*names: str) -> str:
    """The first of `names` on PATH."""
    for name in names:
        if found := shutil.which(name):
            return found
    raise FileNotFoundError(f"{' or '.join(names)} is not installed ({INSTALL})")


def tool(*names: str) -> str:
    """A Prometheus tool or server by its names; skip (or fail) without it."""
    return require_service(names[0], partial(binary, *names))


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def alert_rules() -> list[dict[str, Any]]:
    rules: dict[str, Any] = yaml.safe_load(RULES.read_text())
    return [rule for group in rules["groups"] for rule in group["rules"]]


class TestRules:
    def test_promtool_accepts_every_rule(self) -> None:
        checked = run([tool("promtool"), "check", "rules", str(RULES)])

        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert f"SUCCESS: {len(alert_rules())} rules found" in checked.stdout

    def test_every_alert_fires_and_stays_quiet_in_promtools_unit_tests(
        self,
    ) -> None:
        tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
        evaluations = [e for test in tests for e in test["alert_rule_test"]]

        tested = run([tool("promtool"), "test", "rules", str(RULE_TESTS)])

        assert tested.returncode == 0, tested.stdout + tested.stderr
        for rule in alert_rules():
            cases = [e for e in evaluations if e["alertname"] == rule["alert"]]
            assert any(e["exp_alerts"] for e in cases), rule["alert"]
            assert any(not e["exp_alerts"] for e in cases), rule["alert"]

    def test_every_alert_waits_and_says_how_severe_and_what_happened(self) -> None:
        for rule in alert_rules():
            assert rule["for"], rule["alert"]
            assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
            assert {"summary", "description"} <= set(rule["annotations"])

    def test_rules_read_only_metrics_the_platform_exports(
        self, settings: Settings
    ) -> None:
        with TestClient(create_embedded_app(settings)) as client:
            client.post(  # a prediction: every route family has a sample
                "/api/v1/predict/sensor_001_radial",
                json={"timestamp": 1.7e9, "value": 0.3},
                headers=bearer(settings, Role.VIEWER),
            )
            text = client.get("/metrics").text
        exported = {
            sample.name
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }
        read = {
            name
            for rule in alert_rules()
            for name in METRIC.findall(QUOTED.sub('""', rule["expr"]))
        }

        assert read  # the pattern finds them
        # The WAL archive's, on PostgreSQL archiving only (tests/adapters/test_pitr.py)
        assert read <= exported | set(WAL_ARCHIVE_METRICS)
        assert [r["expr"] for r in alert_rules() if r["alert"] == "ServiceDown"] == [
            "up == 0"  # Prometheus's own, per target
        ]


class TestConfigs:
    @pytest.mark.parametrize("path", PROMETHEUS_CONFIGS, ids=lambda p: p.parent.name)
    def test_promtool_accepts_the_prometheus_config(
        self, path: Path, tmp_path: Path
    ) -> None:
        config = yaml.safe_load(path.read_text())
        config["rule_files"] = [str(RULES)]  # where it is mounted: not here
        for job in config["scrape_configs"]:
            # Debian's promtool is built without Kubernetes discovery: the
            # targets stay unchecked, their relabelling is checked.
            if job.pop("kubernetes_sd_configs", None):
                job["static_configs"] = [{"targets": ["pod:8000"]}]
        copy = tmp_path / "prometheus.yml"
        copy.write_text(yaml.safe_dump(config))

        checked = run([tool("promtool"), "check", "config", str(copy)])

        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "SUCCESS: 1 rule files found" in checked.stdout + checked.stderr

    def test_amtool_accepts_the_alertmanager_config(self) -> None:
        checked = run([tool("amtool"), "check-config", str(ALERTMANAGER)])

        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "1 receivers" in checked.stdout


# -- end to end ------------------------------------------------------------------------


@contextmanager
def running(argv: list[str], log: Path, ready_url: str) -> Iterator[None]:
    """Run `argv`, its output in `log`, for the block, once it answers `ready_url`."""
    with (
        log.open("w") as out,
        subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT) as process,
    ):
        try:
            deadline = time.monotonic() + 30
            while not _answers(ready_url):
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"{argv[0]} did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.1)
            yield
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def hastened_rules(wait: str) -> dict[str, Any]:
    """deploy/prometheus/alerts.yml with every alert's `for` shortened to `wait`:
    the same expressions, labels and annotations."""
    rules: dict[str, Any] = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["for"] = wait
    return rules


def hastened_routing(receiver_url: str, token_file: Path) -> dict[str, Any]:
    """deploy/alertmanager.yml with groups sent after a second, to `receiver_url`,
    with the token in `token_file`."""
    config: dict[str, Any] = yaml.safe_load(ALERTMANAGER.read_text())
    config["route"] |= {"group_wait": "1s", "group_interval": "1s"}
    for receiver in config["receivers"]:
        for webhook in receiver["webhook_configs"]:
            webhook["url"] = receiver_url
            webhook["http_config"]["authorization"]["credentials_file"] = str(
                token_file
            )
    return config


def prometheus_config(platform: str, rules: Path, alertmanager: str) -> dict[str, Any]:
    """Scrape `platform` and evaluate `rules` every second; alert `alertmanager`."""
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]
        },
        "scrape_configs": [
            {"job_name": "atalaia", "static_configs": [{"targets": [platform]}]}
        ],
    }


@pytest.fixture
def servers() -> tuple[str, str]:
    """The prometheus and alertmanager binaries (Debian: prometheus-alertmanager)."""
    return tool("prometheus"), tool("alertmanager", "prometheus-alertmanager")


@contextmanager
def monitored(
    servers: tuple[str, str], platform: str, receiver_url: str, folder: Path
) -> Iterator[None]:
    """For the block, a real Prometheus scraping the `platform` URL with the
    hastened rules, and a real Alertmanager sending to `receiver_url` with the
    token in `folder`/atalaia-token; their files and data in `folder`."""
    prometheus, alertmanager = (f"127.0.0.1:{free_port()}" for _ in servers)
    rules, routing, scraping = (
        folder / name for name in ("alerts.yml", "alertmanager.yml", "prometheus.yml")
    )
    rules.write_text(yaml.safe_dump(hastened_rules("1s")))
    token_file = folder / "atalaia-token"
    routing.write_text(yaml.safe_dump(hastened_routing(receiver_url, token_file)))
    target = platform.removeprefix("http://")
    scraping.write_text(yaml.safe_dump(prometheus_config(target, rules, alertmanager)))
    with (
        running(
            [servers[1], f"--config.file={routing}"]
            + [f"--storage.path={folder / 'alertmanager'}", "--cluster.listen-address="]
            + [f"--web.listen-address={alertmanager}"],
            folder / "alertmanager.log",
            f"http://{alertmanager}/-/ready",
        ),
        running(
            [servers[0], f"--config.file={scraping}"]
            + [f"--storage.tsdb.path={folder / 'tsdb'}"]
            + [f"--web.listen-address={prometheus}"],
            folder / "prometheus.log",
            f"http://{prometheus}/-/ready",
        ),
    ):
        yield


def test_an_alert_raised_through_the_api_comes_back_through_the_platform(
    servers: tuple[str, str], receiver: Receiver, tmp_path: Path
) -> None:
    """The platform's metrics → Prometheus → Alertmanager → the platform's
    receiver → a `platform.alert` event → a rule → a webhook."""
    deadline = time.monotonic() + 60
    rules = tmp_path / "rules.yaml"
    ops = {"name": "ops", "type": "webhook", "target": receiver.url("/ops")}
    rule = {"name": "platform", "channels": ["ops"], "kinds": [],
            "events": ["platform.alert"]}  # fmt: skip
    rules.write_text(yaml.safe_dump({"channels": [ops], "rules": [rule]}))
    settings = Settings(
        home=tmp_path / "home", log_json=False, log_level="WARNING",
        alert_rules_file=rules, alerter_poll_s=0.1,
    )  # fmt: skip
    issue = authenticator_for(settings).issue
    token = issue(subject="alertmanager", role=Role.ML_ENGINEER, ttl_s=3600)
    (tmp_path / "atalaia-token").write_text(token)

    with embedded_server(settings) as platform:
        receiver_url = f"{platform}/api/v1/alerts/alertmanager"
        with monitored(servers, platform, receiver_url, tmp_path):
            # Readings of series no model serves: none answered from the cache.
            viewer = bearer(settings, Role.VIEWER)
            n = 0
            while not (told := _told(receiver.requests, "ModelCacheHitRateLow")):
                assert time.monotonic() < deadline, receiver.requests
                reading = {"timestamp": 1.7e9 + n, "value": 0.3}
                url = f"{platform}/api/v1/predict/no_model_{n % 5}"
                answer = httpx.post(url, json=reading, headers=viewer).json()
                assert answer["model_info"]["loaded_from"] == "default"
                n += 1
                time.sleep(0.5)

    alert = told.body["data"]
    assert told.body["title"] == "ModelCacheHitRateLow firing"
    assert told.body["severity"] == "major"  # Alertmanager's "warning"
    assert (alert["labels"]["job"], alert["status"]) == ("atalaia", "firing")
    assert alert["annotations"]["summary"] == (
        "atalaia: 0% of readings answered by a production model"
    )


def _told(requests: list[Request], alertname: str) -> Request | None:
    """The first notification of `alertname` firing, if one came."""
    for request in list(requests):
        if (
            request.body["event"] == "platform.alert"
            and request.body["data"]["labels"].get("alertname") == alertname
        ):
            return request
    return None
