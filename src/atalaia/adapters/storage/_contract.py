"""What every artifact store keeps alike: the keys' rule, the missing-key error."""

from __future__ import annotations

from atalaia.errors import NotFound

_SAFE_KEY_CHARS = set(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-/"
)


class ArtifactNotFound(NotFound):
    def __init__(self, key: str) -> None:
        super().__init__(f"artifact {key!r} does not exist", rule="artifact_exists")


def checked_key(key: str) -> str:
    """`key`, refused (ValueError) unless it is relative, without `..`, of
    letters, digits and `_.:-/` only."""
    if not key or set(key) - _SAFE_KEY_CHARS or ".." in key or key.startswith("/"):
        raise ValueError(f"unsafe artifact key {key!r}")
    return key
