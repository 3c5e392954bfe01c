"""The artifact stores behind the core's ArtifactStore interface."""

from __future__ import annotations

from pathlib import Path

import pytest

from atalaia.adapters.storage import LocalArtifactStore
from atalaia.core.ports import ArtifactStore


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return LocalArtifactStore(tmp_path / "artifacts")


def test_what_is_put_is_got_back(store: ArtifactStore) -> None:
    store.put("models/s1/1.npz", b"weights")

    assert store.get("models/s1/1.npz") == b"weights"
    assert store.exists("models/s1/1.npz")


def test_keys_lists_what_starts_with_a_prefix(store: ArtifactStore) -> None:
    for key in ("models/s1/1.npz", "models/s2/1.npz", "reports/w1.pdf"):
        store.put(key, b"x")

    assert sorted(store.keys("models/")) == ["models/s1/1.npz", "models/s2/1.npz"]
    assert len(list(store.keys())) == 3


def test_a_deleted_key_is_gone(store: ArtifactStore) -> None:
    store.put("a", b"x")
    store.delete("a")

    assert not store.exists("a")
    assert list(store.keys()) == []
