"""ArtifactStore on an S3-compatible object store (AWS S3, MinIO, Ceph, ...).

A put is all or nothing: one PUT up to the multipart threshold, above it a
multipart upload completed only once every part is in (aborted on failure; one
that could not be aborted, the store unreachable, is never visible under its
key); `get_file` writes a temporary file beside its target, renamed once
whole. Every failure to reach or use the store is DependencyUnavailable (the
log has the store's own words); a missing key is ArtifactNotFound, as in the
local store.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from s3transfer.exceptions import RetriesExceededError

from atalaia.adapters.storage._contract import ArtifactNotFound, checked_key
from atalaia.errors import DependencyUnavailable

NAME = "artifact store"
MISSING_KEY = frozenset({"404", "NoSuchKey", "NotFound"})
REFUSED = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"}
)
NO_CREDENTIALS = (
    "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
    "AWS_PROFILE, or give the process a role"
)
MULTIPART_THRESHOLD = 8 * 2**20  # boto3's default; the parts are as large
LIST_PAGE = 1_000  # keys per listing request (S3's most)


@dataclass(frozen=True, slots=True)
class S3Connection:
    """How to reach the store: its endpoint (None: AWS), region, addressing,
    and how long and how many times a call may try."""

    endpoint_url: str | None = None
    region: str | None = None
    path_style: bool = False
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 30.0
    max_attempts: int = 3

    def client_config(self) -> Config:
        return Config(
            region_name=self.region,
            connect_timeout=self.connect_timeout_s,
            read_timeout=self.read_timeout_s,
            retries={"total_max_attempts": self.max_attempts, "mode": "standard"},
            s3={"addressing_style": "path" if self.path_style else "auto"},
        )


class S3ArtifactStore:
    """Artifacts as objects of `bucket`, each key under `prefix` ("" or ending
    with "/"); credentials from the AWS chain (variables, profile, role)."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        connection: S3Connection | None = None,
        *,
        multipart_threshold: int = MULTIPART_THRESHOLD,
    ) -> None:
        connection = connection or S3Connection()
        self.bucket, self.prefix = bucket, prefix
        self._client = boto3.session.Session().client(
            "s3",
            endpoint_url=connection.endpoint_url,
            config=connection.client_config(),
        )
        self._transfer = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_threshold,
        )
        self._threshold = multipart_threshold

    def put(self, key: str, data: bytes) -> None:
        name = self._name(key)
        with _translated():
            if len(data) <= self._threshold:
                self._client.put_object(Bucket=self.bucket, Key=name, Body=data)
            else:
                self._client.upload_fileobj(
                    io.BytesIO(data), self.bucket, name, Config=self._transfer
                )

    def put_file(self, key: str, path: Path) -> None:
        name = self._name(key)
        with path.open("rb") as content, _translated():
            self._client.upload_fileobj(
                content, self.bucket, name, Config=self._transfer
            )

    def get_file(self, key: str, path: Path) -> None:
        name = self._name(key)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out, _translated(missing=key):
                self._client.download_fileobj(
                    self.bucket, name, out, Config=self._transfer
                )
        except BaseException:
            os.unlink(tmp)
            raise
        os.replace(tmp, path)

    def get(self, key: str) -> bytes:
        with _translated(missing=key):
            found = self._client.get_object(Bucket=self.bucket, Key=self._name(key))
            return found["Body"].read()

    def delete(self, key: str) -> None:
        with _translated():
            self._client.delete_object(Bucket=self.bucket, Key=self._name(key))

    def exists(self, key: str) -> bool:
        try:
            with _translated(missing=key):
                self._client.head_object(Bucket=self.bucket, Key=self._name(key))
        except ArtifactNotFound:
            return False
        return True

    def keys(self, prefix: str = "") -> Iterator[str]:
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket,
            Prefix=self.prefix + prefix,
            PaginationConfig={"PageSize": LIST_PAGE},
        )
        with _translated():
            for page in pages:
                for listed in page.get("Contents", []):
                    yield listed["Key"].removeprefix(self.prefix)

    def _name(self, key: str) -> str:
        return self.prefix + checked_key(key)


@contextmanager
def _translated(*, missing: str | None = None) -> Iterator[None]:
    """The store's errors as the domain's: ArtifactNotFound for the key
    `missing` when it is absent, DependencyUnavailable for anything else."""
    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if missing is not None and code in MISSING_KEY:
            raise ArtifactNotFound(missing) from None
        raise DependencyUnavailable(NAME, _refusal(code)) from exc
    except NoCredentialsError as exc:
        raise DependencyUnavailable(NAME, NO_CREDENTIALS) from exc
    except (BotoCoreError, RetriesExceededError) as exc:  # unreachable, timed out…
        raise DependencyUnavailable(NAME, type(exc).__name__) from exc


def _refusal(code: str) -> str:
    """What an answer may say of the store's refusal (its endpoint and bucket
    stay in the log)."""
    if code == "NoSuchBucket":
        return "its bucket does not exist (create it: see the README)"
    if code in REFUSED:
        return f"it refused the credentials ({code}): check the AWS_* variables"
    return code or "an error without a code"
