"""The gateway's HTTPS with the real nginx: versions, redirect, HSTS and the
certificate it presents."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from atalaia.cli.demo import free_port
from atalaia.cluster.gateway import HSTS_MAX_AGE_S
from atalaia.settings import Settings
from atalaia.tls import ensure_self_signed, server_files
from fixtures.gateway import LoneGateway, lone_gateway
from fixtures.tls_probe import legacy_client, negotiated

HSTS = f"max-age={HSTS_MAX_AGE_S}"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoneGateway]:
    with lone_gateway(tmp_path_factory.mktemp("gateway"), unused_offset()) as found:
        yield found


def unused_offset() -> int:
    """A port offset whose upstream ports are free (the services answer 503)."""
    return free_port() - 8000


def port_of(url: str) -> int:
    port = httpx.URL(url).port
    assert port is not None
    return port


class TestHandshake:
    def test_negotiates_tls_1_3(self, gateway: LoneGateway) -> None:
        assert negotiated(port_of(gateway.https_url), gateway.trusting()) == "TLSv1.3"

    def test_takes_tls_1_2_clients(self, gateway: LoneGateway) -> None:
        client = legacy_client(ssl.TLSVersion.TLSv1_2)

        assert negotiated(port_of(gateway.https_url), client) == "TLSv1.2"

    def test_refuses_tls_1_1(self, gateway: LoneGateway) -> None:
        with pytest.raises(ssl.SSLError):
            negotiated(
                port_of(gateway.https_url), legacy_client(ssl.TLSVersion.TLSv1_1)
            )

    def test_the_certificate_is_for_localhost(self, gateway: LoneGateway) -> None:
        port = port_of(gateway.https_url)

        assert negotiated(port, gateway.trusting(), host="localhost") == "TLSv1.3"


class TestPlainHttp:
    def test_redirects_to_https_keeping_path_and_query(
        self, gateway: LoneGateway
    ) -> None:
        answer = httpx.get(f"{gateway.http_url}/api/v1/models?limit=5")

        assert answer.status_code == 308
        assert answer.headers["location"] == (
            f"{gateway.https_url}/api/v1/models?limit=5"
        )

    def test_a_post_is_sent_again_as_a_post_with_its_body(
        self, gateway: LoneGateway
    ) -> None:
        with httpx.Client(verify=gateway.trusting(), follow_redirects=True) as client:
            answer = client.post(
                f"{gateway.http_url}/api/v1/models", content=b" " * 9_000_000
            )

        assert [r.status_code for r in answer.history] == [308]
        assert answer.request.method == "POST"
        assert answer.request.url.scheme == "https"
        # The gateway's body limit saw the body again over HTTPS.
        assert answer.status_code == 413
        assert answer.json()["rule"] == "gateway_body_size"

    def test_probes_are_answered_without_tls(self, gateway: LoneGateway) -> None:
        answer = httpx.get(f"{gateway.http_url}/ready")

        assert answer.status_code == 200
        assert answer.json()["service"] == "gateway"


class TestHsts:
    @pytest.mark.parametrize(
        ("path", "status"), [("/ready", 200), ("/nowhere", 404), ("/plot", 503)]
    )
    def test_every_https_answer_carries_it(
        self, gateway: LoneGateway, path: str, status: int
    ) -> None:
        with gateway.client() as client:
            answer = client.get(path)

        assert answer.status_code == status
        assert answer.headers["strict-transport-security"] == HSTS

    def test_rate_limited_answers_carry_it_too(self, gateway: LoneGateway) -> None:
        with gateway.client() as client:
            answers = [client.get("/api/v1/models") for _ in range(40)]

        limited = [a for a in answers if a.status_code == 429]
        assert limited
        assert limited[0].headers["strict-transport-security"] == HSTS

    def test_plain_http_answers_do_not(self, gateway: LoneGateway) -> None:
        assert (
            "strict-transport-security"
            not in httpx.get(f"{gateway.http_url}/ready").headers
        )


def test_the_certificate_of_the_settings_is_served(tmp_path: Path) -> None:
    site, _ = ensure_self_signed(tmp_path / "site")  # a pair made elsewhere
    settings = Settings(
        home=tmp_path / "home", tls_cert_file=site.cert, tls_key_file=site.key
    )
    files, made = server_files(settings)

    with lone_gateway(tmp_path / "home", unused_offset(), tls=files) as gateway:
        presented = ssl.get_server_certificate(
            ("127.0.0.1", port_of(gateway.https_url))
        )

    assert (files, made) == (site, False)
    assert ssl.PEM_cert_to_DER_cert(presented) == ssl.PEM_cert_to_DER_cert(
        site.cert.read_text()
    )
    assert not (tmp_path / "home" / "tls").exists()  # none made
