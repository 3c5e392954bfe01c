"""`atalaia backup [list|verify]` and `atalaia restore`: the platform's backups
(`services.backup`), of ATALAIA_DATABASE_URL and the artifact store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from atalaia.cli.failures import CommandFailed
from atalaia.settings import Settings, load_settings

if TYPE_CHECKING:
    from atalaia.core.backup import Manifest

app = typer.Typer(
    help="Back up the database, the artifacts and the cold history.",
    invoke_without_command=True,
)
Folder = Annotated[
    Path | None,
    typer.Option("--dir", help="The backups' folder (default: ATALAIA_BACKUP_DIR)."),
]
RELOAD = (
    "restored: start the services (or, if they run, POST /api/v1/admin/reload to "
    "every inference replica)"
)


@app.callback()
def backup(ctx: typer.Context, folder: Folder = None) -> None:
    """Make a backup now (with no command), into its own folder under --dir."""
    if ctx.invoked_subcommand is not None:
        return
    from atalaia.scheduler import backup_platform
    from atalaia.services.backup import create_backup, read_manifest

    settings = load_settings()
    path = create_backup(
        backup_platform(settings), _folder(settings, folder), datetime.now(UTC)
    )
    typer.echo(f"{path}\n{_describe(read_manifest(path))}")


@app.command("list")
def list_backups(folder: Folder = None) -> None:
    """List the complete backups, oldest first (unfinished ones are left out)."""
    from atalaia.services.backup import list_backups as complete_backups

    for path, manifest in complete_backups(_folder(load_settings(), folder)):
        typer.echo(f"{path.name}  {_describe(manifest)}")


@app.command("verify")
def verify(path: Annotated[Path, typer.Argument(help="A backup's folder.")]) -> None:
    """Check a backup's manifest and every part's checksum."""
    from atalaia.services.backup import verify_backup

    typer.echo(f"ok: {_describe(verify_backup(path))}")


def restore(
    path: Annotated[Path, typer.Argument(help="A backup's folder.")],
    force: Annotated[
        bool,
        typer.Option(help="Wipe a database that holds tables; overwrite artifacts."),
    ] = False,
) -> None:
    """Restore a backup into ATALAIA_DATABASE_URL and the artifact store (stop
    the services first on SQLite: its file is replaced)."""
    from atalaia.scheduler import backup_platform
    from atalaia.services.backup import forget_inference_snapshot, restore_backup

    settings = load_settings()
    manifest = restore_backup(backup_platform(settings), path, force=force)
    forget_inference_snapshot(settings.snapshot_path)
    typer.echo(f"{_describe(manifest)}\n{RELOAD}")


def _folder(settings: Settings, folder: Path | None) -> Path:
    chosen = folder or settings.backup_dir
    if chosen is None:
        raise CommandFailed("no backups' folder: pass --dir or set ATALAIA_BACKUP_DIR")
    return chosen


def _describe(manifest: Manifest) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in sorted(manifest.counts.items()))
    return (
        f"{manifest.created_at}  {manifest.database_kind} at "
        f"{manifest.schema_revision}  {manifest.total_bytes / 1e6:.1f} MB in "
        f"{manifest.seconds:.1f} s  ({counts})"
    )
