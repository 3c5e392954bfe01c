"""How far PostgreSQL's continuous archiving is behind: what point-in-time
recovery could lose (its RPO) if the server were lost now.

Read from `pg_stat_archiver` and the current WAL position, which any role may
read; nothing on SQLite or while `archive_mode` is off.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

SEGMENT_NAME_LENGTH = 24  # timeline, log and segment: 8 hex digits each

_STATUS = text(
    "SELECT extract(epoch FROM now() - coalesce(last_archived_time,"
    " pg_postmaster_start_time())), last_archived_wal, failed_count,"
    " pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint,"
    " current_setting('wal_segment_size')"
    " FROM pg_stat_archiver"
)


@dataclass(frozen=True, slots=True)
class WalArchiveStatus:
    """`age_s`: seconds since the last WAL file was archived (since the server
    started, when none was); `unarchived_bytes`: WAL written past the last
    archived segment (None while the last file archived is a timeline's
    history); `failures`: failed attempts since the statistics' reset."""

    age_s: float
    unarchived_bytes: int | None
    failures: int


def wal_archive_status(session: Session) -> WalArchiveStatus | None:
    """The archive's status; None on SQLite or with archiving off."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    if session.execute(text("SHOW archive_mode")).scalar_one() == "off":
        return None
    age_s, last, failures, position, segment_size = session.execute(_STATUS).one()
    archived_to = segment_end(last, _bytes(segment_size)) if last else 0
    return WalArchiveStatus(
        age_s=float(age_s),
        unarchived_bytes=None
        if archived_to is None
        else max(0, position - archived_to),
        failures=int(failures),
    )


def segment_end(name: str, segment_bytes: int) -> int | None:
    """The WAL position (bytes from 0/0) where segment file `name` ends; None
    for a timeline's history file.

    A backup's label (`<segment>.<offset>.backup`) counts as its segment: the
    archiver takes files in name order, so every segment up to that one is
    archived (the backup may have ended in a later one: a lower bound).

    >>> segment_end("000000010000000000000003", 16 * 2**20)
    67108864
    >>> segment_end("0000000200000001000000FF", 16 * 2**20)
    8589934592
    >>> segment_end("000000010000000000000003.00000028.backup", 16 * 2**20)
    67108864
    >>> segment_end("00000002.history", 16 * 2**20) is None
    True
    """
    if len(name) < SEGMENT_NAME_LENGTH or name.endswith(".history"):
        return None
    log, segment = int(name[8:16], 16), int(name[16:24], 16)
    return log * 2**32 + (segment + 1) * segment_bytes


def _bytes(setting: str) -> int:
    """A size setting as PostgreSQL shows it ("16MB") in bytes."""
    units = {"kB": 2**10, "MB": 2**20, "GB": 2**30}
    return int(setting[:-2]) * units[setting[-2:]]
