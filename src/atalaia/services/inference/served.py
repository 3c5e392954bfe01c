"""The model table being served, where it was loaded from, and its writers' lock."""

from __future__ import annotations

import threading
from enum import StrEnum

from atalaia.services.model_table import ModelTable


class LoadState(StrEnum):
    """Where the table being served was loaded from (its value is what
    readiness, the reload answer, metrics and logs say)."""

    NOTHING = "nothing"  # not loaded yet: not ready
    DATABASE = "database"  # read whole from the registry
    SNAPSHOT = "snapshot"  # read from the on-disk snapshot (registry unreachable)


class ServedTable:
    """The table request threads score with, and the lock of its writers.

    Readers take no lock: a table is replaced whole (one assignment), and each
    row's serving record is written in one assignment (see `model_table`).
    Writers (a full load, a series' reload, models served from the L2 cache)
    hold `lock`, one at a time, so that a slower one never overwrites what a
    newer one wrote; `table` and `loaded_from` are replaced together under it.
    """

    def __init__(self) -> None:
        self.table = ModelTable()
        self.loaded_from = LoadState.NOTHING
        self.lock = threading.Lock()

    def replace(self, table: ModelTable, loaded_from: LoadState) -> None:
        """Serve `table` from now on (the caller holds `lock`)."""
        self.table, self.loaded_from = table, loaded_from
