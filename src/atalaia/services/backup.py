"""Backups of the platform and their restore (`core.backup` has the format).

A backup dumps the database first, then copies the blobs: every artifact of
the store and every cold segment the dump references. Model artifacts and
training-data snapshots (keyed by their digest) and segments (named once,
never rewritten) are immutable, so a blob copied after the dump is the one
the dump names; a blob written after the dump is a harmless extra. A
referenced blob that is missing fails the backup. The manifest is written
last, so a backup cut short is never taken for a whole one.

A restore checks the manifest and every part's checksum, refuses a schema
newer than this code's and a target holding data (unless forced), puts the
blobs back first and the database last, then migrates an older schema to
this code's.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import structlog

from atalaia import __version__
from atalaia.adapters.backup import DatabaseBackup, check_known_revision
from atalaia.adapters.db.migrate import upgrade_database
from atalaia.adapters.db.repositories import AuditLog
from atalaia.core.backup import (
    MANIFEST,
    NAME_PREFIX,
    BackupIncomplete,
    BackupInvalid,
    Manifest,
    Part,
    RestoreTargetNotEmpty,
    backup_name,
    to_prune,
)
from atalaia.core.ports import ArtifactStore
from atalaia.core.schedule import Task
from atalaia.errors import AtalaiaError, NotFound
from atalaia.files import PRIVATE_FILE, make_private_dir
from atalaia.services.training_chunk import SessionFactory

log = structlog.get_logger()

ACTOR = "scheduler"
ARTIFACTS = "artifacts/"
COLD = "cold/"
CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Platform:
    """What a backup holds: the database and the artifact store."""

    database: DatabaseBackup
    artifacts: ArtifactStore


def create_backup(platform: Platform, folder: Path, now: datetime) -> Path:
    """Back up `platform` into a new folder under `folder`; its path. A failed
    backup removes what it wrote."""
    began = time.perf_counter()
    target = folder / backup_name(now)
    make_private_dir(target)
    try:
        database = platform.database
        dumped = database.dump(target / database.file_name)
        parts = [_part(target, database.file_name)]
        parts += _copy_artifacts(platform.artifacts, target, dumped.artifacts)
        segments = {path: f"{COLD}{Path(path).name}" for path in dumped.segments}
        if len(set(segments.values())) < len(segments):
            raise BackupIncomplete("two cold segments share a file name")
        parts += [_copy_file(Path(p), target, n) for p, n in sorted(segments.items())]
        manifest = Manifest(
            created_at=now.astimezone(UTC).isoformat(), atalaia_version=__version__,
            database_kind=database.kind, database_file=database.file_name,
            schema_revision=dumped.revision, counts=dumped.counts, parts=parts,
            segments=segments, seconds=round(time.perf_counter() - began, 3),
        )  # fmt: skip
        _write_manifest(target, manifest)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return target


def list_backups(folder: Path) -> list[tuple[Path, Manifest]]:
    """The complete backups under `folder` (those with a manifest), oldest first."""
    found = []
    for path in _backup_folders(folder):
        if (path / MANIFEST).is_file():
            found.append((path, read_manifest(path)))
    return found


def read_manifest(backup: Path) -> Manifest:
    """The manifest of the backup at `backup`; BackupInvalid without one."""
    try:
        return Manifest.from_json((backup / MANIFEST).read_text())
    except FileNotFoundError:
        raise BackupInvalid(
            f"{backup} has no {MANIFEST}: it is no backup, or one that never finished"
        ) from None


def verify_backup(backup: Path) -> Manifest:
    """The manifest of `backup` once every part's size and SHA-256 match it."""
    manifest = read_manifest(backup)
    for part in manifest.parts:
        path = backup / part.name
        if not path.is_file():
            raise BackupInvalid(f"{backup}: {part.name} is missing")
        if path.stat().st_size != part.bytes or _sha256(path) != part.sha256:
            raise BackupInvalid(f"{backup}: {part.name} does not match its checksum")
    return manifest


def restore_backup(platform: Platform, backup: Path, *, force: bool) -> Manifest:
    """Restore `backup` into `platform`: blobs first, the database last."""
    manifest = verify_backup(backup)
    check_known_revision(manifest.schema_revision, manifest.atalaia_version)
    database = platform.database
    if manifest.database_kind != database.kind:
        raise BackupInvalid(
            f"a {manifest.database_kind} backup restores into {manifest.database_kind},"
            f" not {database.kind}: set ATALAIA_DATABASE_URL"
        )
    if not force:
        _refuse_data(platform)
    for part in manifest.parts:
        if part.name.startswith(ARTIFACTS):
            key = part.name.removeprefix(ARTIFACTS)
            platform.artifacts.put_file(key, backup / part.name)
    for recorded, name in manifest.segments.items():
        make_private_dir(Path(recorded).parent)
        shutil.copyfile(backup / name, recorded)
        os.chmod(recorded, PRIVATE_FILE)
    database.restore(backup / manifest.database_file, force=force)
    upgrade_database(database.url_text)
    return manifest


def prune_backups(folder: Path, keep: int) -> list[str]:
    """Remove all but the newest `keep` complete backups, and the incomplete
    ones older than the newest complete one; their names."""
    names = {path.name: path for path in _backup_folders(folder)}
    complete = [name for name, path in names.items() if (path / MANIFEST).is_file()]
    incomplete = sorted(set(names) - set(complete))
    doomed = to_prune(complete, incomplete, keep)
    for name in doomed:
        shutil.rmtree(names[name])
    return doomed


@dataclass(slots=True)
class BackupReport:
    """A scheduled backup: where, how big, how long, and what retention removed."""

    path: str = ""
    bytes: int = 0
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    pruned: list[str] = field(default_factory=list)
    error: str | None = None

    def detail(self) -> dict[str, object]:
        return {"task": Task.BACKUP.value} | asdict(self)


def scheduled_backup(
    platform: Platform,
    *,
    sessions: SessionFactory,
    folder: Path,
    keep: int,
    now: datetime,
) -> BackupReport:
    """The scheduler's backup: one more, then retention (only once it is
    complete); audited."""
    report = BackupReport()
    try:
        path = create_backup(platform, folder, now)
        manifest = read_manifest(path)
        report.path, report.bytes = str(path), manifest.total_bytes
        report.seconds, report.counts = manifest.seconds, manifest.counts
        report.pruned = prune_backups(folder, keep)
        log.info("backup.created", **report.detail())
    except (AtalaiaError, OSError) as exc:
        report.error = str(exc)
        log.error("backup.failed", error=report.error)
    with sessions() as session:
        AuditLog(session).record(
            actor=ACTOR, action=Task.BACKUP.audit_action, target="platform",
            **report.detail(),
        )  # fmt: skip
        session.commit()
    return report


def forget_inference_snapshot(snapshot_path: Path) -> None:
    """Remove the inference service's on-disk snapshots, which hold the models
    of before a restore (the service writes new ones from the database)."""
    for path in snapshot_path.parent.glob(f"{snapshot_path.stem}*.npz"):
        path.unlink()


def _refuse_data(platform: Platform) -> None:
    if not platform.database.is_empty():
        raise RestoreTargetNotEmpty(
            "the database holds tables: restore into an empty one, or pass --force"
        )
    if next(iter(platform.artifacts.keys()), None) is not None:
        raise RestoreTargetNotEmpty(
            "the artifact store holds artifacts: restore into an empty one, or "
            "pass --force"
        )


def _copy_artifacts(
    artifacts: ArtifactStore, target: Path, required: frozenset[str]
) -> list[Part]:
    parts = []
    for key in sorted(artifacts.keys()):
        path = target / f"{ARTIFACTS}{key}"
        make_private_dir(path.parent)
        try:
            artifacts.get_file(key, path)  # streamed: an upload may be large
        except NotFound:  # deleted since it was listed: not one the dump names
            continue
        parts.append(_part(target, f"{ARTIFACTS}{key}"))
    copied = {part.name.removeprefix(ARTIFACTS) for part in parts}
    if missing := sorted(required - copied):
        raise BackupIncomplete(
            f"the database references {len(missing)} artifact(s) the store lacks, "
            f"first {missing[0]!r}"
        )
    return parts


def _copy_file(source: Path, target: Path, name: str) -> Part:
    path = target / name
    make_private_dir(path.parent)
    digest = hashlib.sha256()
    try:
        with source.open("rb") as src, path.open("wb") as out:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
    except FileNotFoundError:
        raise BackupIncomplete(
            f"the database references the cold segment {source}, which is missing"
        ) from None
    return Part(name, path.stat().st_size, digest.hexdigest())


def _part(target: Path, name: str) -> Part:
    path = target / name
    return Part(name, path.stat().st_size, _sha256(path))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as src:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _write_manifest(target: Path, manifest: Manifest) -> None:
    """Write the manifest last, whole or not at all, once every part is on disk."""
    os.sync()
    staged = target / f".{MANIFEST}.partial"
    with staged.open("w") as out:
        out.write(manifest.to_json())
        out.flush()
        os.fsync(out.fileno())
    os.replace(staged, target / MANIFEST)


def _backup_folders(folder: Path) -> Iterator[Path]:
    if folder.is_dir():
        yield from sorted(
            path
            for path in folder.iterdir()
            if path.is_dir() and path.name.startswith(NAME_PREFIX)
        )
