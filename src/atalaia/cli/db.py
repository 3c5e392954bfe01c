"""`atalaia db …`: schema migrations, and what the database holds."""

from __future__ import annotations

from typing import Annotated

import typer

from atalaia.adapters.db.engine import make_engine
from atalaia.adapters.db.migrate import upgrade_database
from atalaia.adapters.db.timescale import readings_layout
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
    from alembic.migration import MigrationContext  # slow to import: only here

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            revision = MigrationContext.configure(connection).get_current_revision()
            layout = readings_layout(connection) if revision else "(no schema yet)"
    finally:
        engine.dispose()
    return [
        f"database: {engine.url.render_as_string(hide_password=True)}",
        f"revision: {revision or '(none)'}",
        f"readings: {layout}",
    ]
