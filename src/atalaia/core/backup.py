"""A backup's manifest and the retention of scheduled backups.

A backup is a folder: the database's dump, the artifacts (`artifacts/<key>`),
the cold history's segments (`cold/<file>`) and, written last, `manifest.json`
naming each part with its size and SHA-256. A folder without a manifest is a
backup that never finished: it is neither listed nor restorable.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from atalaia.errors import AtalaiaError, Conflict, InvalidInput

FORMAT = 1
MANIFEST = "manifest.json"
NAME_PREFIX = "atalaia-backup-"


class BackupInvalid(InvalidInput):
    """A folder that is no whole backup: no manifest, or a part missing or changed."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, rule="backup_valid")


class BackupIncomplete(AtalaiaError):
    """The database references a blob the artifact store or cold folder lacks."""

    rule = "backup_complete"


class BackupTooNew(Conflict):
    """A backup whose schema revision this version of atalaia does not know."""

    rule = "backup_schema_known"


class RestoreTargetNotEmpty(Conflict):
    """The database or artifact store to restore into holds data already."""

    rule = "restore_target_empty"


@dataclass(frozen=True, slots=True)
class Part:
    """A file of a backup, by its path inside the backup folder."""

    name: str
    bytes: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a backup holds; `segments` maps each segment's recorded path (as the
    database names it) to its part's name."""

    created_at: str
    atalaia_version: str
    database_kind: str
    database_file: str
    schema_revision: str | None
    counts: dict[str, int]
    parts: list[Part]
    segments: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    format: int = FORMAT

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """The manifest in `text`; BackupInvalid when it is not one."""
        try:
            raw: dict[str, Any] = json.loads(text)
            if raw.get("format") != FORMAT:
                raise BackupInvalid(
                    f"backup format {raw.get('format')!r} is not {FORMAT}"
                )
            parts = [Part(**p) for p in raw.pop("parts")]
            return cls(parts=parts, **raw)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise BackupInvalid(f"the manifest is unreadable: {exc}") from None

    @property
    def total_bytes(self) -> int:
        return sum(part.bytes for part in self.parts)


def backup_name(moment: datetime) -> str:
    """The folder name of a backup begun at `moment`; names sort by time.

    >>> backup_name(datetime(2026, 12, 3, 14, 5, 9, 120000, tzinfo=UTC))
    'atalaia-backup-20261203T140509.120Z'
    """
    moment = moment.astimezone(UTC)
    return f"{NAME_PREFIX}{moment:%Y%m%dT%H%M%S}.{moment.microsecond // 1000:03d}Z"


def to_prune(complete: list[str], incomplete: list[str], keep: int) -> list[str]:
    """The backups to delete, keeping the newest `keep` complete ones; an
    incomplete one (a run that died) goes once a newer backup is complete.

    >>> to_prune(["b1", "b2", "b3"], ["b0", "b4"], keep=2)
    ['b0', 'b1']
    """
    if keep < 1:
        raise ValueError(f"keep at least one backup, not {keep}")
    done = sorted(complete)
    newest = done[-1] if done else ""
    stale = [name for name in sorted(incomplete) if name < newest]
    return sorted(stale + done[:-keep])
