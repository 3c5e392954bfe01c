"""`atalaia assets import FILE | list`: the asset hierarchy (sites, lines,
machines, sensors) through the training service (`/api/v1/assets`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from atalaia.cli.failures import CommandFailed
from atalaia.cli.service_client import (
    Token,
    Url,
    answered,
    call,
    json_of,
    training_client,
)

app = typer.Typer(
    help="The asset hierarchy: sites, areas, lines, machines, sensors.",
    no_args_is_help=True,
)

ASSETS = "/api/v1/assets"
PAGE = 1_000
MEDIA_TYPES = {
    ".csv": "text/csv",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
}


@app.command("import")
def import_file(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV (id, kind, name, parent, …) or YAML (nested).",
            exists=True,
            dir_okay=False,
        ),
    ],
    url: Url = None,
    token: Token = None,
) -> None:
    """Create or replace the nodes of a file: all of them, or none, with each
    error's line, node and rule."""
    media_type = MEDIA_TYPES.get(file.suffix.lower())
    if media_type is None:
        raise CommandFailed(f"{file.name}: an asset file is .csv, .yaml or .yml")
    with training_client(url, token) as client:
        answer = answered(
            client, "POST", f"{ASSETS}/import", kept=(422,),
            content=file.read_bytes(), headers={"Content-Type": media_type},
        )  # fmt: skip
    found = json_of(answer)
    if answer.status_code == 422:
        for error in found.get("errors", []):
            typer.echo(describe_error(error), err=True)
        raise CommandFailed(f"{file.name}: {found.get('detail', answer.text)}")
    created, replaced = found["created"], found["replaced"]
    typer.echo(
        f"imported {created + replaced} node(s) from {file.name}: "
        f"{created} created, {replaced} replaced"
    )


@app.command("list")
def list_assets(
    kind: Annotated[
        str | None, typer.Option(help="Only nodes of this kind (site, line…).")
    ] = None,
    under: Annotated[
        str | None, typer.Option(help="Only this node and those under it.")
    ] = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Every node in tree order (each after its parent): path, kind, name."""
    params: dict[str, Any] = {"kind": kind, "under": under, "limit": PAGE}
    cursor: str | None = None
    with training_client(url, token) as client:
        while True:
            given = {k: v for k, v in (params | {"cursor": cursor}).items() if v}
            page = call(client, "GET", ASSETS, params=given)
            for asset in page["assets"]:
                typer.echo(f"{asset['path']}\t{asset['kind']}\t{asset['name']}")
            cursor = page.get("next_cursor")
            if not cursor:
                return


def describe_error(error: dict[str, Any]) -> str:
    """One line of an import's error: where (line, node), the rule, why.

    >>> describe_error({"id": "press7", "rule": "parent_exists",
    ...                 "detail": "no node line9", "line": 4})
    'line 4: node press7: parent_exists: no node line9'
    """
    where = f"line {error['line']}: " if error.get("line") is not None else ""
    return f"{where}node {error.get('id')}: {error.get('rule')}: {error.get('detail')}"
