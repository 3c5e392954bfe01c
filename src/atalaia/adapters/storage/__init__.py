"""Artifact stores behind the core's ArtifactStore interface."""

from atalaia.adapters.storage.local import LocalArtifactStore

__all__ = ["LocalArtifactStore"]
