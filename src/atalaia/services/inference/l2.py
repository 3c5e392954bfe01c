"""The shared L2 cache of served models (Redis), from the predictor's side."""

from __future__ import annotations

from collections.abc import Sequence

from atalaia.core.ports import SharedModelCache
from atalaia.core.serving import ServedModel
from atalaia.services.inference.served import ServedTable
from atalaia.services.model_table import Source


class L2Models:
    """Serves what the L2 cache holds, and writes to it what the database said.

    Without a cache (`cache` None) it holds nothing and writes nowhere.
    """

    def __init__(self, served: ServedTable, cache: SharedModelCache | None) -> None:
        self.served = served
        self.cache = cache

    @property
    def enabled(self) -> bool:
        return self.cache is not None

    @property
    def ready(self) -> bool:
        """Would a read try the cache now?"""
        return self.cache is not None and self.cache.ready

    def serve(
        self, series_ids: Sequence[str], *, version: int | None = None
    ) -> list[str]:
        """Serve the models the cache holds for these series (of `version` only,
        if given); returns the series served so."""
        if self.cache is None:
            return []
        # Under the lock: a reload from the database may not interleave.
        with self.served.lock:
            models = list(self.cache.get_many(series_ids).values())
            if version is not None:
                models = [m for m in models if m.version == version]
            if models:
                self.served.table.set_models(models, Source.MEMORY)
        return [m.series_id for m in models]

    def record(
        self,
        changed: Sequence[ServedModel],
        cleared: Sequence[str],
        *,
        overwrite: bool,
    ) -> None:
        """Write the models the database just gave for some series, over what the
        cache holds (`overwrite`, after a registry change: also forget the series
        `cleared` of their model) or only where it holds none (after a miss)."""
        if self.cache is None:
            return
        self.cache.put_many(changed, overwrite=overwrite)
        if overwrite:
            self.cache.forget(cleared)
