"""`atalaia db …`: schema migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from atalaia.adapters.db.migrate import upgrade_database
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
