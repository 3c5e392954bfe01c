"""TLS for the gateway and the services: which certificate they serve, a
self-signed one for local use, and the context a client trusts them with.

The certificate and key come from ATALAIA_TLS_CERT_FILE / ATALAIA_TLS_KEY_FILE;
without them `atalaia up` (and `atalaia serve --tls`) make a self-signed pair for
localhost under `<home>/tls/`, kept and reused while it is valid. Clients trust
ATALAIA_TLS_CA_FILE, else that self-signed certificate, beside the system's CAs.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from atalaia.files import PRIVATE_FILE, make_private_dir
from atalaia.settings import Settings

# TLS 1.2's suites: forward secrecy and AEAD only (TLS 1.3 has its own, all
# strong); the gateway and uvicorn use the same list.
MODERN_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    )
)
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
SELF_SIGNED_DAYS = 365
RENEW_BEFORE = dt.timedelta(days=7)  # a pair this close to expiry is made anew


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """A PEM certificate (chain) and its private key."""

    cert: Path
    key: Path


def self_signed_dir(home: Path) -> Path:
    return home.resolve() / "tls"


def self_signed_files(home: Path) -> TlsFiles:
    folder = self_signed_dir(home)
    return TlsFiles(cert=folder / "cert.pem", key=folder / "key.pem")


def configured(settings: Settings) -> TlsFiles | None:
    """The pair the settings name (the settings check both or neither is set)."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    return TlsFiles(cert=settings.tls_cert_file, key=settings.tls_key_file)


def server_files(settings: Settings) -> tuple[TlsFiles, bool]:
    """The configured pair, else the self-signed one; (files, just made)."""
    if (files := configured(settings)) is not None:
        return files, False
    return ensure_self_signed(settings.home)


def ensure_self_signed(home: Path) -> tuple[TlsFiles, bool]:
    """The self-signed pair under `home/tls`, made when missing or about to
    expire; (files, just made). The key is 0600, its folder 0700."""
    files = self_signed_files(home)
    if files.key.exists() and _valid_for_a_while(files.cert):
        return files, False
    make_private_dir(files.cert.parent)
    key = ec.generate_private_key(ec.SECP256R1())
    _write(
        files.key,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    _write(files.cert, _certificate(key).public_bytes(serialization.Encoding.PEM))
    return files, True


def trusted_ca(settings: Settings) -> Path | None:
    """What clients trust beside the system's CAs: ATALAIA_TLS_CA_FILE, else the
    self-signed certificate when there is one."""
    if settings.tls_ca_file is not None:
        return settings.tls_ca_file
    cert = self_signed_files(settings.home).cert
    return cert if cert.exists() else None


def client_context(settings: Settings) -> ssl.SSLContext:
    """A verifying client context: the system's CAs and `trusted_ca`."""
    context = ssl.create_default_context()
    if (ca := trusted_ca(settings)) is not None:
        context.load_verify_locations(cafile=ca)
    return context


def _certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    """A certificate for LOCAL_NAMES signed by `key` itself."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "atalaia local")])
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    names: list[x509.GeneralName] = [x509.DNSName(LOCAL_NAMES[0])] + [
        x509.IPAddress(ipaddress.ip_address(address)) for address in LOCAL_NAMES[1:]
    ]
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))  # clocks a little behind
        .not_valid_after(now + dt.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public), False
        )
        .sign(key, hashes.SHA256())
    )


def _valid_for_a_while(cert: Path) -> bool:
    if not cert.exists():
        return False
    found = x509.load_pem_x509_certificate(cert.read_bytes())
    return found.not_valid_after_utc - RENEW_BEFORE > dt.datetime.now(dt.UTC)


def _write(path: Path, data: bytes) -> None:
    """Write `path` 0600 whole or not at all (a reader never sees half of it)."""
    partial = path.with_name(f".{path.name}.partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(partial, path)
