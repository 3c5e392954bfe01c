"""`atalaia db …`: schema migrations, and what the database holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NamedTuple

import typer
from sqlalchemy.engine import make_url

from atalaia.adapters.db.engine import make_engine
from atalaia.adapters.db.migrate import upgrade_database
from atalaia.adapters.db.timescale import readings_layout
from atalaia.cli.failures import FIX_URL, CommandFailed
from atalaia.settings import load_settings

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Migrate the database of ATALAIA_DATABASE_URL to the latest schema."""
    settings = load_settings()
    upgrade_database(settings.database_url, revision)
    typer.echo(f"database at revision {revision}")
    typer.echo(describe(settings.database_url)[-1])


@app.command("info")
def info() -> None:
    """Show the database, its schema revision and how it stores readings."""
    for line in describe(load_settings().database_url):
        typer.echo(line)


def describe(url: str) -> list[str]:
    """Lines naming the database at `url`, its revision and its readings' layout."""
    found = inspect_database(url)
    return [
        f"database: {found.shown_url}",
        f"revision: {found.revision or '(none)'}",
        f"readings: {found.layout}",
    ]


def require_schema(url: str) -> None:
    """Fail unless the database at `url` exists and has a schema."""
    found = inspect_database(url)
    if found.revision is None:
        raise CommandFailed(
            f"the database {found.shown_url} has no schema: run `atalaia db upgrade`"
        )


class Found(NamedTuple):
    shown_url: str  # without its password
    revision: str | None
    layout: str


def inspect_database(url: str) -> Found:
    """The database at `url`: its schema revision and readings' layout.

    Creates nothing: a missing SQLite file is a failure, not a new database.
    """
    from alembic.migration import MigrationContext  # slow to import: only here

    parsed = make_url(url)
    if (
        parsed.get_backend_name() == "sqlite"
        and not Path(parsed.database or "").is_file()
    ):
        raise CommandFailed(
            f"the database {parsed.database} does not exist: `atalaia db upgrade` "
            f"creates it; or {FIX_URL}"
        )
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            revision = MigrationContext.configure(connection).get_current_revision()
            layout = readings_layout(connection) if revision else "(no schema yet)"
    finally:
        engine.dispose()
    return Found(engine.url.render_as_string(hide_password=True), revision, layout)
