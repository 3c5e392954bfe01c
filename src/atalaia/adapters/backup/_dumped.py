"""What every database kind offers a backup, and what a dump says of itself."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

# Read in the dump's own snapshot: the blobs it names and what it holds. The
# artifacts: heavy models, and the training-data snapshots their lineage names
# (`{snapshot}`: the backend's expression for that JSON field).
ARTIFACTS_SQL = (
    "SELECT artifact FROM model_versions WHERE artifact IS NOT NULL "
    "UNION SELECT {snapshot} FROM model_versions WHERE {snapshot} IS NOT NULL"
)
SEGMENTS_SQL = "SELECT path FROM reading_segments"
REVISION_SQL = "SELECT version_num FROM alembic_version"
COUNTS_SQL = {
    "series": "SELECT count(*) FROM series",
    "model_versions": "SELECT count(*) FROM model_versions",
    "hot_readings": "SELECT count(*) FROM readings",
    "cold_readings": "SELECT coalesce(sum(rows), 0) FROM reading_segments",
    "segments": "SELECT count(*) FROM reading_segments",
    "training_jobs": "SELECT count(*) FROM training_jobs",
}


@dataclass(frozen=True, slots=True)
class Dumped:
    """A dump's schema revision, counts, and the blobs its rows reference: model
    artifacts (keys in the artifact store) and cold segments (their paths)."""

    revision: str | None
    counts: dict[str, int]
    artifacts: frozenset[str]
    segments: frozenset[str]


class DatabaseBackup(Protocol):
    kind: str  # "postgresql" or "sqlite"
    file_name: str  # the dump's name in a backup folder
    url_text: str  # the database's URL

    def dump(self, target: Path) -> Dumped:
        """Write a consistent dump of the database to `target`."""
        ...

    def is_empty(self) -> bool:
        """Whether the database is missing or holds no table."""
        ...

    def restore(self, dump: Path, *, force: bool) -> None:
        """Load `dump` into the database: created if missing, refused
        (RestoreTargetNotEmpty) if it holds tables, unless `force` wipes it."""
        ...


def read_dumped(cursor: Any, *, snapshot_field: str) -> Dumped:
    """The `Dumped` of the database `cursor` (DB-API) reads, in its snapshot;
    `snapshot_field` reads a version's lineage's `data_snapshot`."""

    def column(sql: str) -> list[Any]:
        cursor.execute(sql)
        return [row[0] for row in cursor.fetchall()]

    (revision,) = column(REVISION_SQL) or [None]
    return Dumped(
        revision=revision,
        counts={name: int(column(sql)[0]) for name, sql in COUNTS_SQL.items()},
        artifacts=frozenset(column(ARTIFACTS_SQL.format(snapshot=snapshot_field))),
        segments=frozenset(column(SEGMENTS_SQL)),
    )
