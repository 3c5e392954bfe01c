"""`atalaia token …`: JWT bearer tokens for users and machines."""

from __future__ import annotations

from typing import Annotated

import typer

from atalaia.api.common.auth import Role
from atalaia.api.common.resources import authenticator_for
from atalaia.core.access import GROUP_NAME
from atalaia.settings import load_settings

app = typer.Typer(help="API tokens.", no_args_is_help=True)

ROLE_NAMES = [r.label for r in Role]


@app.command("create")
def create(
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLE_NAMES)}.")],
    subject: Annotated[str, typer.Option(help="Who the token is for.")],
    ttl_hours: Annotated[float, typer.Option(help="Validity in hours.")] = 24 * 30,
    group: Annotated[
        list[str] | None,
        typer.Option(
            help="A sensor group (ATALAIA_ACCESS_GROUPS) the token is limited "
            "to; repeat for several. None: every series."
        ),
    ] = None,
) -> None:
    """Print a token signed with this installation's secret."""
    try:
        parsed = Role.parse(role)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--role") from None
    groups = _groups(group)
    settings = load_settings()
    unknown = sorted((groups or set()) - set(settings.access_groups))
    if unknown:
        typer.echo(
            f"warning: groups {', '.join(unknown)} are not in ATALAIA_ACCESS_GROUPS "
            "here: they cover nothing until configured",
            err=True,
        )
    token = authenticator_for(settings).issue(
        subject=subject, role=parsed, ttl_s=ttl_hours * 3600, groups=groups
    )
    typer.echo(token)


def _groups(names: list[str] | None) -> frozenset[str] | None:
    """The --group names, each checked (None: none given)."""
    if not names:
        return None
    for name in names:
        if not GROUP_NAME.fullmatch(name):
            raise typer.BadParameter(
                f"group name {name!r} must match [A-Za-z0-9_.:-]{{1,64}}",
                param_hint="--group",
            )
    return frozenset(names)
