"""The on-disk snapshot of the table: written after each full load from the
registry, read at start when the registry is unreachable."""

from __future__ import annotations

from pathlib import Path

import structlog

from atalaia.services.inference.served import LoadState, ServedTable
from atalaia.services.model_table import ModelTable, SnapshotUnreadable

log = structlog.get_logger()


class Snapshot:
    """Writes the served table to `path`, atomically, and reads it back.

    Written by the change feed's thread after each full load (serving does not
    wait for the disk) and at shutdown; `_written` (the generation of the table
    written last) is only touched under the table's lock.
    """

    def __init__(self, served: ServedTable, path: Path) -> None:
        self.served = served
        self.path = path
        self._written = served.table.generation

    def read(self) -> ModelTable | None:
        """The table last written, or None when there is none (or it is one
        this release cannot read: an older release's)."""
        if not self.path.exists():
            return None
        try:
            return ModelTable.load(self.path)
        except SnapshotUnreadable as exc:
            log.warning("inference.snapshot_unreadable", error=str(exc))
            return None

    def save_if_due(self) -> None:
        """Write the table if it was loaded from the registry since the last write."""
        served = self.served
        if (
            served.loaded_from is LoadState.DATABASE
            and served.table.generation != self._written
        ):
            self.save()

    def save(self) -> None:
        """Write the table now: the fallback at the next start."""
        with self.served.lock:  # no reload writes rows while they are copied
            table = self.served.table
            self._written = table.generation
            try:
                table.save(self.path)
            except OSError as exc:
                log.warning("inference.snapshot_failed", error=str(exc))
