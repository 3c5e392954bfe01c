"""`atalaia token …`: JWT bearer tokens for users and machines."""

from __future__ import annotations

import getpass
import os
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from atalaia.adapters.db.engine import engine_for, make_session_factory
from atalaia.adapters.db.migrate import upgrade_database
from atalaia.adapters.db.repositories import AuditLog
from atalaia.api.common.auth import Role
from atalaia.api.common.resources import authenticator_for
from atalaia.api.common.sign_ins import fingerprint
from atalaia.core.access import GROUP_NAME
from atalaia.logging import configure_logging
from atalaia.settings import Settings, load_settings

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
    """Print a token signed with this installation's secret; the audit log
    records it (`token.create`: subject, role, expiry, fingerprint, groups)."""
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
    record_creation(settings, token, subject, parsed, ttl_hours * 3600, groups)
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


def record_creation(
    settings: Settings,
    token: str,
    subject: str,
    role: Role,
    ttl_s: float,
    groups: frozenset[str] | None = None,
    *,
    quiet: bool = False,
) -> None:
    """The `token.create` entry (the token's fingerprint, never the token),
    written before the token is handed out: no token goes unrecorded. Its log
    line goes to stderr, but `quiet` (a command's own first start: only
    warnings)."""
    expires = datetime.now(UTC) + timedelta(seconds=ttl_s)
    limited = {} if groups is None else {"groups": sorted(groups)}
    level = "WARNING" if quiet else settings.log_level
    configure_logging(level=level, json=settings.log_json)  # stderr
    upgrade_database(settings.database_url)  # as the services do on start
    engine = engine_for(settings, serving=False)
    try:
        with make_session_factory(engine)() as session:
            AuditLog(session).record(
                actor=f"cli:{_os_user()}", action="token.create", target=subject,
                role=role.label, expires_at=expires.isoformat(),
                fingerprint=fingerprint(token, {}), **limited,
            )  # fmt: skip
            session.commit()
    finally:
        engine.dispose()


def _os_user() -> str:
    """Who runs the command (a container's user may have no name)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"
