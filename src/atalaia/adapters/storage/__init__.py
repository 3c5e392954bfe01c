"""Artifact stores behind the core's ArtifactStore interface."""

from __future__ import annotations

import typing

from atalaia.adapters.storage._contract import ArtifactNotFound
from atalaia.adapters.storage.local import LocalArtifactStore

if typing.TYPE_CHECKING:  # for annotations only: not names of this package
    from atalaia.core.ports import ArtifactStore
    from atalaia.settings import Settings

__all__ = ["ArtifactNotFound", "LocalArtifactStore", "artifact_store_for"]


def artifact_store_for(settings: Settings) -> ArtifactStore:
    """The artifact store `settings` name: the bucket of ATALAIA_ARTIFACTS_URL,
    or else the folder ATALAIA_ARTIFACTS_DIR."""
    bucket = settings.artifacts_bucket
    if bucket is None:
        return LocalArtifactStore(settings.artifacts_path)
    # Imported here: boto3 takes a few hundred ms, which a process keeping its
    # artifacts in a folder need not spend.
    from atalaia.adapters.storage.s3 import S3ArtifactStore, S3Connection

    connection = S3Connection(
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        path_style=settings.s3_path_style,
        connect_timeout_s=settings.s3_connect_timeout_s,
        read_timeout_s=settings.s3_read_timeout_s,
        max_attempts=settings.s3_max_attempts,
    )
    return S3ArtifactStore(bucket.bucket, bucket.prefix, connection)
