"""Database dumps and restores for backups: PostgreSQL (pg_dump / pg_restore)
and SQLite (its online backup API), behind one `DatabaseBackup` interface."""

from __future__ import annotations

from sqlalchemy.engine import make_url

from atalaia.adapters.backup._dumped import DatabaseBackup, Dumped
from atalaia.adapters.backup.postgres import PostgresBackup
from atalaia.adapters.backup.schema import check_known_revision
from atalaia.adapters.backup.sqlite import SqliteBackup

__all__ = [
    "DatabaseBackup",
    "Dumped",
    "PostgresBackup",
    "SqliteBackup",
    "check_known_revision",
    "database_backup_for",
]


def database_backup_for(url: str) -> DatabaseBackup:
    """The dump and restore of the database at `url` (SQLite or PostgreSQL)."""
    if make_url(url).get_backend_name() == "sqlite":
        return SqliteBackup(url)
    return PostgresBackup(url)
