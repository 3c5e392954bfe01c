"""`atalaia token …`: JWT bearer tokens for users and machines."""

from __future__ import annotations

from typing import Annotated

import typer

from atalaia.api.common.auth import Role
from atalaia.api.common.resources import authenticator_for
from atalaia.settings import load_settings

app = typer.Typer(help="API tokens.", no_args_is_help=True)

ROLE_NAMES = [r.label for r in Role]


@app.command("create")
def create(
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLE_NAMES)}.")],
    subject: Annotated[str, typer.Option(help="Who the token is for.")],
    ttl_hours: Annotated[float, typer.Option(help="Validity in hours.")] = 24 * 30,
) -> None:
    """Print a token signed with this installation's secret."""
    try:
        parsed = Role.parse(role)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--role") from None
    settings = load_settings()
    token = authenticator_for(settings).issue(
        subject=subject, role=parsed, ttl_s=ttl_hours * 3600
    )
    typer.echo(token)
