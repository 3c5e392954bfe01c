"""`atalaia serve` over HTTPS (sites without a gateway) with the real uvicorn,
and the commands' client verifying it."""

from __future__ import annotations

import secrets
import ssl
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from atalaia.adapters.db.migrate import upgrade_database
from atalaia.api import health
from atalaia.api.common.auth import Authenticator, Role
from atalaia.cli import app
from atalaia.cli.demo import free_port
from atalaia.cli.failures import CommandFailed
from atalaia.cli.service_client import call, training_client
from atalaia.cluster import supervisor
from atalaia.cluster.supervisor import ProcessSpec
from atalaia.settings import Settings
from atalaia.tls import client_context, ensure_self_signed, self_signed_files
from conftest import SettingsFactory
from fixtures.tls_probe import legacy_client, negotiated

ATALAIA = str(Path(sys.executable).with_name("atalaia"))
runner = CliRunner()


@dataclass(frozen=True, slots=True)
class Served:
    home: Path
    port: int
    token: str

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`atalaia serve --role training --tls` with no certificate configured."""
    folder = tmp_path_factory.mktemp("serve-tls")
    url = f"sqlite:///{folder / 'atalaia.db'}"
    upgrade_database(url)
    secret = secrets.token_urlsafe(32)
    env = {
        "ATALAIA_HOME": str(folder / "home"),
        "ATALAIA_DATABASE_URL": url,
        "ATALAIA_JWT_SECRET": secret,
        "ATALAIA_LOG_JSON": "false",
    }
    port = free_port()
    argv = (ATALAIA, "serve", "--role", "training", "--tls", "--port", str(port))
    started = supervisor.spawn(ProcessSpec("training", argv, env=env), folder)
    try:
        wait_for_https(started, port, folder / "home")
        token = Authenticator(secret).issue(subject="t", role=Role.ADMIN, ttl_s=600)
        yield Served(folder / "home", port, token)
    finally:
        supervisor.stop([started])


def wait_for_https(started: supervisor.Started, port: int, home: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert supervisor.alive(started), Path(started.log).read_text()
        if self_signed_files(home).cert.exists():
            context = client_context(Settings(home=home))
            try:
                httpx.get(f"https://127.0.0.1:{port}/health", verify=context)
            except httpx.HTTPError:
                pass
            else:
                return
        time.sleep(0.1)
    pytest.fail(Path(started.log).read_text())


class TestHandshake:
    def test_negotiates_tls_1_3_with_the_self_signed_certificate(
        self, served: Served
    ) -> None:
        context = client_context(Settings(home=served.home))

        assert negotiated(served.port, context) == "TLSv1.3"
        assert negotiated(served.port, context, host="localhost") == "TLSv1.3"

    def test_takes_tls_1_2_clients(self, served: Served) -> None:
        client = legacy_client(ssl.TLSVersion.TLSv1_2)

        assert negotiated(served.port, client) == "TLSv1.2"

    def test_refuses_tls_1_1(self, served: Served) -> None:
        with pytest.raises(ssl.SSLError):
            negotiated(served.port, legacy_client(ssl.TLSVersion.TLSv1_1))


class TestServiceClient:
    def test_trusts_the_self_signed_certificate(
        self, served: Served, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("ATALAIA_HOME", str(served.home))

        with training_client(served.url, served.token) as client:
            me = call(client, "GET", "/api/v1/auth/whoami")

        assert me["subject"] == "t"

    def test_refuses_a_certificate_its_ca_file_did_not_sign(
        self, served: Served, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        other, _ = ensure_self_signed(tmp_path)
        monkeypatch.setenv("ATALAIA_HOME", str(served.home))
        monkeypatch.setenv("ATALAIA_TLS_CA_FILE", str(other.cert))

        with (
            training_client(served.url, served.token) as client,
            pytest.raises(CommandFailed, match="cannot reach the training service"),
        ):
            call(client, "GET", "/api/v1/auth/whoami")


class TestBadSettings:
    def test_half_a_pair_stops_serve_naming_both_settings(self, tmp_path: Path) -> None:
        site, _ = ensure_self_signed(tmp_path)
        env = {"ATALAIA_HOME": str(tmp_path), "ATALAIA_TLS_CERT_FILE": str(site.cert)}

        result = runner.invoke(app, ["serve", "--tls"], env=env)

        assert result.exit_code == 2
        assert "ATALAIA_TLS_CERT_FILE and ATALAIA_TLS_KEY_FILE go together" in (
            result.output
        )

    def test_an_unreadable_key_stops_serve_naming_it(self, tmp_path: Path) -> None:
        site, _ = ensure_self_signed(tmp_path)
        env = {
            "ATALAIA_HOME": str(tmp_path),
            "ATALAIA_TLS_CERT_FILE": str(site.cert),
            "ATALAIA_TLS_KEY_FILE": str(tmp_path / "nowhere.pem"),
        }

        result = runner.invoke(app, ["serve"], env=env)

        assert result.exit_code == 2
        assert "ATALAIA_TLS_KEY_FILE: cannot read" in result.output


class TestServicesProbingIt:
    """The health service's probes verify a service served over TLS."""

    def health_of_training(self, settings: Settings) -> str:
        with TestClient(health.create_app(settings)) as client:
            body = client.get("/api/v1/health").json()
        status: str = body["services"]["training"]["status"]
        return status

    def test_trust_the_self_signed_certificate(
        self, served: Served, make_settings: SettingsFactory, tmp_path: Path
    ) -> None:
        settings = make_settings(
            f"sqlite:///{tmp_path}/h.db", home=served.home, training_url=served.url
        )

        assert self.health_of_training(settings) == "up"

    def test_refuse_a_certificate_their_ca_file_did_not_sign(
        self, served: Served, make_settings: SettingsFactory, tmp_path: Path
    ) -> None:
        other, _ = ensure_self_signed(tmp_path / "other")
        settings = make_settings(
            f"sqlite:///{tmp_path}/h.db",
            home=served.home,
            training_url=served.url,
            tls_ca_file=other.cert,
        )

        assert self.health_of_training(settings) == "down"
