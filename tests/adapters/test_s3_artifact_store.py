"""The S3 artifact store on a real S3-compatible server: chosen by the settings,
keys under its prefix, listed page by page, and its faults (the server gone,
its bucket missing, a connection cut in the middle of an upload) raised as the
domain's DependencyUnavailable with nothing half-written left under a key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from botocore.exceptions import ConnectionClosedError
from pydantic import ValidationError

from atalaia.adapters.storage import LocalArtifactStore, artifact_store_for, s3
from atalaia.adapters.storage.s3 import S3ArtifactStore
from atalaia.api.common.errors import status_of
from atalaia.errors import DependencyUnavailable
from atalaia.settings import Settings
from fixtures.api import SettingsFactory
from fixtures.s3 import on_send, s3_client, s3_store, through
from fixtures.tcp_proxy import TcpProxy

MIB = 2**20
PART = 5 * MIB  # the smallest part S3 takes


class TestChosenBySettings:
    def test_a_bucket_url_names_the_s3_store_its_prefix_and_endpoint(
        self, s3_server: str, s3_bucket: str, make_settings: SettingsFactory
    ) -> None:
        settings = make_settings(
            "sqlite:///unused.db",
            artifacts_url=f"s3://{s3_bucket}/plant-7/atalaia",
            s3_endpoint_url=s3_server,
            s3_path_style=True,
        )

        store = artifact_store_for(settings)
        store.put("models/s1/a.npz", b"weights")

        assert isinstance(store, S3ArtifactStore)
        listed = s3_client(s3_server).list_objects_v2(Bucket=s3_bucket)
        assert [o["Key"] for o in listed["Contents"]] == [
            "plant-7/atalaia/models/s1/a.npz"
        ]
        assert list(store.keys()) == ["models/s1/a.npz"]
        assert not settings.artifacts_path.exists()  # no local folder made

    def test_without_a_bucket_url_artifacts_stay_in_the_folder(
        self, settings: Settings
    ) -> None:
        store = artifact_store_for(settings)

        assert isinstance(store, LocalArtifactStore)
        assert store.root == settings.artifacts_path

    @pytest.mark.parametrize(
        "url",
        [
            "bucket/prefix",
            "https://bucket/prefix",
            "s3://",
            "s3://Upper-Case",
            "s3://ab",
            "s3://bucket/../up",
            "s3://bucket/a b",
            "s3://bucket/a//b",
            "s3://bucket/p?versionId=1",
        ],
    )
    def test_a_malformed_bucket_url_is_refused_naming_the_setting(
        self, url: str
    ) -> None:
        with pytest.raises(ValidationError, match="ATALAIA_ARTIFACTS_URL must be"):
            Settings(artifacts_url=url)

    def test_a_bucket_url_s_prefix_ends_with_one_slash(self) -> None:
        location = Settings(artifacts_url="s3://my.bucket-1/a/b/").artifacts_bucket

        assert location is not None
        assert (location.bucket, location.prefix) == ("my.bucket-1", "a/b/")
        assert Settings(artifacts_url="s3://bucket").artifacts_bucket == ("bucket", "")

    @pytest.mark.parametrize("url", ["minio:9000", "ftp://minio", "http://"])
    def test_a_malformed_endpoint_is_refused_naming_the_setting(self, url: str) -> None:
        with pytest.raises(ValidationError, match="ATALAIA_S3_ENDPOINT_URL must be"):
            Settings(s3_endpoint_url=url)


def test_keys_lists_every_page_of_the_listing(
    s3_server: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3, "LIST_PAGE", 2)
    store = s3_store(s3_server, s3_bucket)
    keys = [f"models/s{i}/1.npz" for i in range(7)]
    for key in [*keys, "reports/w1.pdf"]:
        store.put(key, b"x")
    requests: list[int] = []
    on_send(store, "ListObjectsV2", lambda: requests.append(1))

    assert sorted(store.keys("models/")) == keys
    assert len(requests) == 4


class TestUnavailable:
    def test_an_unreachable_store_is_a_dependency_unavailable(
        self, s3_proxy: TcpProxy, s3_bucket: str
    ) -> None:
        store = s3_store(through(s3_proxy), s3_bucket, connect_timeout_s=0.5)
        s3_proxy.cut()

        uses: dict[str, Callable[[], object]] = {
            "put": lambda: store.put("a", b"x"),
            "get": lambda: store.get("a"),
            "exists": lambda: store.exists("a"),
            "delete": lambda: store.delete("a"),
            "keys": lambda: list(store.keys()),
        }
        for name, use in uses.items():
            with pytest.raises(DependencyUnavailable) as raised:
                use()
            assert raised.value.name == "artifact store", name
            assert status_of(raised.value) == 503

    def test_missing_credentials_are_named(
        self, s3_server: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
        store = s3_store(s3_server, s3_bucket)

        with pytest.raises(DependencyUnavailable, match="no credentials: set AWS_"):
            store.get("a")

    def test_a_missing_bucket_is_named(
        self,
        s3_server: str,
        s3_credentials: None,  # noqa: ARG002
    ) -> None:
        store = s3_store(s3_server, "atalaia-no-such-bucket")

        with pytest.raises(DependencyUnavailable, match="bucket does not exist"):
            store.put("a", b"x")
        with pytest.raises(DependencyUnavailable, match="bucket does not exist"):
            list(store.keys())


class TestUploadCutMidway:
    def test_an_unanswered_put_raises_and_leaves_nothing_under_the_key(
        self, s3_server: str, s3_proxy: TcpProxy, s3_bucket: str
    ) -> None:
        store = s3_store(through(s3_proxy), s3_bucket, read_timeout_s=1.0)
        on_send(store, "PutObject", s3_proxy.black_hole)  # bytes taken, no answer

        with pytest.raises(DependencyUnavailable):
            store.put("models/s1/a.npz", b"w" * (4 * MIB))

        assert not s3_store(s3_server, s3_bucket).exists("models/s1/a.npz")

    def test_a_multipart_upload_cut_after_it_began_leaves_nothing_under_the_key(
        self, s3_server: str, s3_proxy: TcpProxy, s3_bucket: str
    ) -> None:
        store = s3_store(through(s3_proxy), s3_bucket, multipart_threshold=PART)
        on_send(store, "UploadPart", s3_proxy.cut)
        data = b"w" * (3 * PART)
        direct = s3_store(s3_server, s3_bucket, multipart_threshold=PART)

        with pytest.raises(DependencyUnavailable):
            store.put("models/s1/a.npz", data)

        assert not direct.exists("models/s1/a.npz")
        begun = s3_client(s3_server).list_multipart_uploads(Bucket=s3_bucket)
        assert [u["Key"] for u in begun["Uploads"]] == ["atalaia/models/s1/a.npz"]
        direct.put("models/s1/a.npz", data)  # once back, the same put succeeds
        assert direct.get("models/s1/a.npz") == data

    def test_a_multipart_upload_that_fails_is_aborted_when_the_store_answers(
        self, s3_server: str, s3_bucket: str
    ) -> None:
        store = s3_store(s3_server, s3_bucket, multipart_threshold=PART)

        def drop() -> None:
            raise ConnectionClosedError(endpoint_url=s3_server)

        on_send(store, "UploadPart", drop)  # every part lost on the way

        with pytest.raises(DependencyUnavailable, match="ConnectionClosedError"):
            store.put("models/s1/a.npz", b"w" * (3 * PART))

        assert not store.exists("models/s1/a.npz")
        begun = s3_client(s3_server).list_multipart_uploads(Bucket=s3_bucket)
        assert begun.get("Uploads", []) == []  # aborted: no parts kept

    def test_a_download_cut_midway_leaves_the_target_untouched(
        self, s3_server: str, s3_proxy: TcpProxy, s3_bucket: str, tmp_path: Path
    ) -> None:
        s3_store(s3_server, s3_bucket).put("uploads/u1.csv", b"t,v\n" * MIB)
        store = s3_store(through(s3_proxy), s3_bucket, connect_timeout_s=0.5)
        on_send(store, "GetObject", s3_proxy.cut)  # after its size was read
        target = tmp_path / "u1.csv"
        target.write_bytes(b"before")

        with pytest.raises(DependencyUnavailable):
            store.get_file("uploads/u1.csv", target)

        assert target.read_bytes() == b"before"
        assert [p.name for p in tmp_path.iterdir()] == ["u1.csv"]
