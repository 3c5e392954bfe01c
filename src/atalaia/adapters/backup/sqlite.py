"""SQLite backups through its online backup API: a consistent copy of a live
database, page by page, while writers go on."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url

from atalaia.adapters.backup._dumped import Dumped, read_dumped
from atalaia.core.backup import RestoreTargetNotEmpty
from atalaia.errors import DependencyUnavailable
from atalaia.files import touch_private

PAGES_PER_STEP = 4096  # writers get the database between steps
SNAPSHOT_FIELD = "json_extract(lineage, '$.data_snapshot')"


class SqliteBackup:
    kind = "sqlite"
    file_name = "database.sqlite"

    def __init__(self, url: str) -> None:
        self.url_text = url
        self.path = Path(make_url(url).database or "")

    def dump(self, target: Path) -> Dumped:
        touch_private(target)
        try:
            live_url = f"file:{self.path}?mode=rw"  # a missing file is no database
            with (
                contextlib.closing(sqlite3.connect(live_url, uri=True)) as live,
                contextlib.closing(sqlite3.connect(target)) as copy,
            ):
                live.backup(copy, pages=PAGES_PER_STEP)
                return read_dumped(copy.cursor(), snapshot_field=SNAPSHOT_FIELD)
        except sqlite3.Error as exc:
            raise DependencyUnavailable("database", str(exc)) from exc

    def is_empty(self) -> bool:
        if not self.path.is_file():
            return True
        with contextlib.closing(sqlite3.connect(self.path)) as conn:
            (tables,) = conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
            ).fetchone()
        return int(tables) == 0

    def restore(self, dump: Path, *, force: bool) -> None:
        if not force and not self.is_empty():
            raise RestoreTargetNotEmpty(
                f"the database {self.path} holds tables: restore into a new file, "
                "or pass --force to replace it"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staged = self.path.with_name(f".{self.path.name}.restoring")
        touch_private(staged)
        with (
            contextlib.closing(sqlite3.connect(dump)) as source,
            contextlib.closing(sqlite3.connect(staged)) as copy,
        ):
            source.backup(copy)
        # The old file's write-ahead log must not be replayed onto the new one.
        for suffix in ("-wal", "-shm"):
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
        os.replace(staged, self.path)
