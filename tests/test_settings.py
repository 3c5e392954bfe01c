"""Settings: the rules production refuses to start without."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from atalaia.settings import Settings


def _production(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(home=tmp_path, environment="production", **overrides)  # type: ignore[arg-type]


class TestProduction:
    def test_refuses_auth_disabled(self, tmp_path: Path) -> None:
        with pytest.raises(ValidationError, match="ATALAIA_AUTH_ENABLED"):
            _production(tmp_path, auth_enabled=False, jwt_secret=secrets.token_hex(32))

    @pytest.mark.parametrize("secret", ["short1234", "a" * 32, "ab" * 40])
    def test_refuses_a_weak_secret_without_echoing_it(
        self, tmp_path: Path, secret: str
    ) -> None:
        with pytest.raises(ValidationError) as caught:
            _production(tmp_path, jwt_secret=secret)

        message = str(caught.value)
        assert secret not in message
        assert "input_value" not in message
        assert "openssl rand -hex 32" in message

    @pytest.mark.parametrize(
        "make",
        [
            lambda: secrets.token_hex(32),  # as `openssl rand -hex 32`
            lambda: secrets.token_urlsafe(32),
        ],
        ids=["hex-32", "urlsafe-32"],
    )
    def test_accepts_generated_secrets(
        self, tmp_path: Path, make: Callable[[], str]
    ) -> None:
        for _ in range(200):
            secret = make()
            assert _production(tmp_path, jwt_secret=secret).jwt_secret is not None

    def test_accepts_openssls_secret(self, tmp_path: Path) -> None:
        argv = ["openssl", "rand", "-hex", "32"]
        secret = subprocess.run(argv, capture_output=True, text=True, check=True)

        settings = _production(tmp_path, jwt_secret=secret.stdout.strip())

        assert settings.resolve_jwt_secret() == secret.stdout.strip()

    def test_hides_any_refused_input(self, tmp_path: Path) -> None:
        with pytest.raises(ValidationError) as caught:
            Settings(home=tmp_path, db_pool_size="not-a-number-s3cr3t")

        assert "s3cr3t" not in str(caught.value)


class TestMqtt:
    def test_reads_comma_separated_templates_from_the_environment(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("ATALAIA_MQTT_TOPICS", "a/{sensor}/{axis}, b/{series}")
        monkeypatch.setenv("ATALAIA_MQTT_URL", "mqtt://127.0.0.1:1883")
        settings = Settings(home=tmp_path)
        assert settings.mqtt_topics == ["a/{sensor}/{axis}", "b/{series}"]

    def test_refuses_a_broken_template_at_start(self, tmp_path: Path) -> None:
        with pytest.raises(ValidationError, match="appears twice"):
            Settings(home=tmp_path, mqtt_topics=["a/{sensor}/{sensor}"])

    def test_refuses_a_broker_url_of_another_scheme(self, tmp_path: Path) -> None:
        with pytest.raises(ValidationError, match="mqtt://host"):
            Settings(home=tmp_path, mqtt_url="http://127.0.0.1:1883")
