"""The artifact stores behind the core's ArtifactStore interface: one contract,
run over the local folder and a bucket of a real S3-compatible server."""

from __future__ import annotations

from pathlib import Path

import pytest

from atalaia.adapters.storage import ArtifactNotFound, LocalArtifactStore
from atalaia.api.common.errors import status_of
from atalaia.core.ports import ArtifactStore
from fixtures.s3 import s3_store

MIB = 2**20
# The smallest part S3 takes: a put above it is a multipart upload in the bucket.
PART = 5 * MIB


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        return LocalArtifactStore(tmp_path / "artifacts")
    endpoint = request.getfixturevalue("s3_server")
    bucket = request.getfixturevalue("s3_bucket")
    return s3_store(endpoint, bucket, multipart_threshold=PART)


def test_what_is_put_is_got_back(store: ArtifactStore) -> None:
    store.put("models/s1/1.npz", b"weights")

    assert store.get("models/s1/1.npz") == b"weights"
    assert store.exists("models/s1/1.npz")


def test_a_put_replaces_what_the_key_held(store: ArtifactStore) -> None:
    store.put("models/s1/1.npz", b"first")
    store.put("models/s1/1.npz", b"second")

    assert store.get("models/s1/1.npz") == b"second"


def test_a_large_artifact_comes_back_whole(store: ArtifactStore) -> None:
    data = bytes(range(256)) * (12 * MIB // 256) + b"tail"  # parts of 5, 5, 2 MiB

    store.put("payloads/big.bin", data)

    assert store.get("payloads/big.bin") == data


def test_a_file_put_is_got_back_as_a_file(store: ArtifactStore, tmp_path: Path) -> None:
    source, copy = tmp_path / "upload.csv", tmp_path / "copy.csv"
    source.write_bytes(b"t,v\n" * (3 * MIB))  # 12 MiB: parts of 5, 5, 2 MiB

    store.put_file("uploads/u1.csv", source)
    store.get_file("uploads/u1.csv", copy)

    assert copy.read_bytes() == source.read_bytes()
    assert store.get("uploads/u1.csv") == source.read_bytes()


def test_a_missing_key_got_as_a_file_leaves_no_file(
    store: ArtifactStore, tmp_path: Path
) -> None:
    with pytest.raises(ArtifactNotFound):
        store.get_file("uploads/none.csv", tmp_path / "copy.csv")

    assert list(tmp_path.glob("*.csv")) == []
    assert list(tmp_path.glob(".tmp-*")) == []


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


def test_deleting_a_missing_key_is_no_error(store: ArtifactStore) -> None:
    store.delete("never/put")

    assert not store.exists("never/put")


def test_a_missing_key_is_not_found(store: ArtifactStore) -> None:
    with pytest.raises(ArtifactNotFound, match="'models/none.npz' does not exist") as e:
        store.get("models/none.npz")

    assert e.value.rule == "artifact_exists"
    assert status_of(e.value) == 404


@pytest.mark.parametrize(
    "key", ["", "/etc/passwd", "models/../../x", "models/a b", "models/é", "a\\b"]
)
def test_an_unsafe_key_is_refused_before_the_store_is_used(
    store: ArtifactStore, key: str
) -> None:
    for use in (store.get, store.exists, store.delete):
        with pytest.raises(ValueError, match="unsafe artifact key"):
            use(key)
    with pytest.raises(ValueError, match="unsafe artifact key"):
        store.put(key, b"x")
