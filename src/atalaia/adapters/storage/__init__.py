"""Artifact stores behind the core's ArtifactStore interface."""

from atalaia.adapters.storage.local import LocalArtifactStore
from atalaia.core.ports import ArtifactStore
from atalaia.settings import Settings

__all__ = ["LocalArtifactStore", "artifact_store_for"]


def artifact_store_for(settings: Settings) -> ArtifactStore:
    """The artifact store `settings` name."""
    return LocalArtifactStore(settings.artifacts_path)
