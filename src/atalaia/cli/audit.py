"""`atalaia audit list`: the audit log, read from the training service
(`/api/v1/audit`, admin only), filtered like the route."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from atalaia.cli.service_client import Token, Url, call, training_client

app = typer.Typer(
    help="The audit log: who did what, to what, when and from where.",
    no_args_is_help=True,
)

AUDIT = "/api/v1/audit"
_WHEN = "ISO 8601 (UTC when no offset) or epoch seconds"


@app.command("list")
def list_entries(
    actor: Annotated[str | None, typer.Option(help="A token's subject…")] = None,
    action: Annotated[
        list[str] | None,
        typer.Option(help="Repeatable; one ending in `.` is a prefix (`model.`)."),
    ] = None,
    target: Annotated[str | None, typer.Option(help="A version, a route…")] = None,
    since: Annotated[str | None, typer.Option(help=f"{_WHEN}, at or after.")] = None,
    until: Annotated[str | None, typer.Option(help=f"{_WHEN}, before.")] = None,
    limit: Annotated[int, typer.Option(help="At most so many (1–1000).")] = 100,
    cursor: Annotated[
        str | None, typer.Option(help="The page after this one (as printed).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object a line, every field.")
    ] = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Entries newest first: time, actor, action, target, address, request id."""
    params: dict[str, Any] = {
        "actor": actor, "action": action or None, "target": target,
        "since": since, "until": until, "limit": limit, "cursor": cursor,
    }  # fmt: skip
    given = {k: v for k, v in params.items() if v is not None}
    with training_client(url, token) as client:
        page = call(client, "GET", AUDIT, params=given)
    for entry in page["entries"]:
        typer.echo(json.dumps(entry) if as_json else _line(entry))
    if page["next_cursor"]:
        typer.echo(f"more: --cursor {page['next_cursor']}", err=True)


def _line(entry: dict[str, Any]) -> str:
    fields = ("at", "actor", "action", "target", "address", "request_id")
    return "\t".join(str(entry[f] or "-") for f in fields)
