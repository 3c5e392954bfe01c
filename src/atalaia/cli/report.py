"""`atalaia report fleet|sensor …`: a report of a period saved to a file, made
by the training service (`/api/v1/reports`); `atalaia report files|file ID`:
the scheduled reports' stored files, listed and saved."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from atalaia.cli.service_client import Token, Url, answered, call, training_client

app = typer.Typer(
    help="Reports of a period as PDF or Excel: the fleet's, a site's, a sensor's.",
    no_args_is_help=True,
)

REPORTS = "/api/v1/reports"
TIMEOUT_S = 300.0  # a year of a large fleet takes a while to lay out


class Format(StrEnum):
    PDF = "pdf"
    XLSX = "xlsx"


_WHEN = "ISO 8601 (UTC when no offset) or epoch seconds"
Start = Annotated[
    str | None, typer.Option(help=f"{_WHEN}; default: 7 days before the end.")
]
End = Annotated[str | None, typer.Option(help=f"{_WHEN}; default: now.")]
FormatOption = Annotated[Format, typer.Option("--format", help="The file's format.")]
Output = Annotated[
    Path | None,
    typer.Option(
        "--output", "-o",
        help="The file to write (default: the name the service gives).",
        dir_okay=False, show_default=False,
    ),
]  # fmt: skip


@app.command("fleet")
def fleet(
    start: Start = None,
    end: End = None,
    asset: Annotated[
        str | None, typer.Option(help="Only the sensors under this node (a site…).")
    ] = None,
    format_: FormatOption = Format.PDF,
    output: Output = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """The fleet's report (or a site's, with --asset)."""
    params = {"start": start, "end": end, "asset": asset, "format": format_.value}
    _save(f"{REPORTS}/fleet", params, output, url, token)


@app.command("sensor")
def sensor(
    sensor_id: Annotated[str, typer.Argument(help="The sensor, e.g. sensor_001.")],
    start: Start = None,
    end: End = None,
    format_: FormatOption = Format.PDF,
    output: Output = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """A sensor's report: its axes with their model's band, incidents, versions."""
    params = {"start": start, "end": end, "format": format_.value}
    _save(f"{REPORTS}/sensors/{sensor_id}", params, output, url, token)


@app.command("files")
def files(
    limit: Annotated[int, typer.Option(help="The newest so many.")] = 20,
    url: Url = None,
    token: Token = None,
) -> None:
    """The scheduled reports' stored files, newest first, and where each went."""
    with training_client(url, token) as client:
        page = call(client, "GET", f"{REPORTS}/files", params={"limit": limit})
    for f in page["files"]:
        sent = ", ".join(f"{d['channel']}: {d['state']}" for d in f["deliveries"])
        typer.echo(f"{f['id']}\t{f['file_name']}\t{f['size']:,} bytes\t{sent or '-'}")


@app.command("file")
def file(
    file_id: Annotated[str, typer.Argument(help="Its id (`atalaia report files`).")],
    output: Output = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Save a stored report file."""
    _save(f"{REPORTS}/files/{file_id}", {}, output, url, token)


def _save(
    path: str,
    params: dict[str, str | None],
    output: Path | None,
    url: str | None,
    token: str | None,
) -> None:
    given = {k: v for k, v in params.items() if v is not None}
    with training_client(url, token, TIMEOUT_S) as client:
        answer = answered(client, "GET", path, params=given)
    target = output or Path(_filename(answer.headers.get("content-disposition", "")))
    target.write_bytes(answer.content)
    typer.echo(f"{target} ({len(answer.content):,} bytes)")


def _filename(disposition: str) -> str:
    """The file name of a `Content-Disposition: attachment; filename="…"`."""
    _, _, name = disposition.partition('filename="')
    return Path(name.rstrip('"')).name or "report"
