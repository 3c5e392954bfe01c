"""The TLS settings, the self-signed pair and what a client trusts."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from pydantic import ValidationError

from atalaia.settings import Settings
from atalaia.tls import (
    RENEW_BEFORE,
    configured,
    ensure_self_signed,
    self_signed_files,
    server_files,
    trusted_ca,
)


class TestSelfSigned:
    def test_is_made_once_and_reused(self, tmp_path: Path) -> None:
        first, made = ensure_self_signed(tmp_path)
        cert, key = first.cert.read_bytes(), first.key.read_bytes()

        again, made_again = ensure_self_signed(tmp_path)

        assert (made, made_again) == (True, False)
        assert again == first == self_signed_files(tmp_path)
        assert (again.cert.read_bytes(), again.key.read_bytes()) == (cert, key)

    def test_the_key_is_private(self, tmp_path: Path) -> None:
        files, _ = ensure_self_signed(tmp_path)

        assert files.key.stat().st_mode & 0o777 == 0o600
        assert files.key.parent.stat().st_mode & 0o777 == 0o700
        assert files.key.parent == tmp_path.resolve() / "tls"

    def test_names_localhost_and_the_loopback_addresses(self, tmp_path: Path) -> None:
        files, _ = ensure_self_signed(tmp_path)
        cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
        names = cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value

        assert names.get_values_for_type(x509.DNSName) == ["localhost"]
        assert set(names.get_values_for_type(x509.IPAddress)) == {
            ipaddress.ip_address("127.0.0.1"),
            ipaddress.ip_address("::1"),
        }

    def test_one_about_to_expire_is_made_anew(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        first, _ = ensure_self_signed(tmp_path)
        cert = x509.load_pem_x509_certificate(first.cert.read_bytes())
        expiry = cert.not_valid_after_utc
        monkeypatch.setattr(
            "atalaia.tls.RENEW_BEFORE",
            expiry - dt.datetime.now(dt.UTC) + RENEW_BEFORE,
        )

        _, made = ensure_self_signed(tmp_path)

        assert made


class TestSettings:
    def test_a_pair_is_taken_and_served(self, tmp_path: Path) -> None:
        site, _ = ensure_self_signed(tmp_path / "site")

        settings = Settings(
            home=tmp_path, tls_cert_file=site.cert, tls_key_file=site.key
        )

        assert configured(settings) == site
        assert server_files(settings) == (site, False)

    def test_without_a_pair_the_self_signed_one_is_served(self, tmp_path: Path) -> None:
        settings = Settings(home=tmp_path)

        assert configured(settings) is None
        assert server_files(settings) == (self_signed_files(tmp_path), True)

    @pytest.mark.parametrize("given", ["tls_cert_file", "tls_key_file"])
    def test_one_without_the_other_is_refused(self, tmp_path: Path, given: str) -> None:
        site, _ = ensure_self_signed(tmp_path)
        path = site.cert if given == "tls_cert_file" else site.key

        with pytest.raises(ValidationError, match="set both, or neither"):
            Settings.model_validate({"home": tmp_path, given: path})

    @pytest.mark.parametrize("name", ["tls_cert_file", "tls_key_file", "tls_ca_file"])
    def test_a_missing_file_is_refused_naming_it(
        self, tmp_path: Path, name: str
    ) -> None:
        site, _ = ensure_self_signed(tmp_path)
        pair = {"tls_cert_file": site.cert, "tls_key_file": site.key}

        pair[name] = tmp_path / "missing.pem"

        with pytest.raises(ValidationError, match="cannot read") as caught:
            Settings.model_validate({"home": tmp_path, **pair})

        assert caught.value.errors()[0]["loc"] == (name,)

    def test_a_key_of_another_certificate_is_refused(self, tmp_path: Path) -> None:
        one, _ = ensure_self_signed(tmp_path / "one")
        other, _ = ensure_self_signed(tmp_path / "other")

        with pytest.raises(ValidationError, match="not a PEM certificate and its"):
            Settings(home=tmp_path, tls_cert_file=one.cert, tls_key_file=other.key)

    def test_clients_trust_the_ca_file_else_the_self_signed_one(
        self, tmp_path: Path
    ) -> None:
        assert trusted_ca(Settings(home=tmp_path)) is None
        made, _ = ensure_self_signed(tmp_path)
        other, _ = ensure_self_signed(tmp_path / "other")

        assert trusted_ca(Settings(home=tmp_path)) == made.cert
        assert trusted_ca(Settings(home=tmp_path, tls_ca_file=other.cert)) == (
            other.cert
        )
