"""`atalaia upload FILE`: send a file of readings (CSV, Parquet, Excel) to the
training service (`POST /api/v1/uploads`), streamed from disk with a progress
bar, then follow its ingest (`GET /api/v1/uploads/{id}`) and print what was
stored and which rows were not, with their line numbers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from atalaia.cli.failures import CommandFailed
from atalaia.cli.service_client import Token, Url, call, training_client

if TYPE_CHECKING:
    from rich.progress import Progress

UPLOADS = "/api/v1/uploads"
PIECE_BYTES = 1 << 20
POLL_S = 0.5
SHOWN_INVALID = 10
CONTENT_TYPES = {
    ".csv": "text/csv",
    ".parquet": "application/vnd.apache.parquet",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def upload(
    file: Annotated[
        Path, typer.Argument(help="CSV, Parquet or xlsx.", exists=True, dir_okay=False)
    ],
    form: Annotated[
        str | None, typer.Option(help="long or wide (default: told by the columns).")
    ] = None,
    sensor: Annotated[
        str | None, typer.Option(help="Wide: columns are this sensor's axes.")
    ] = None,
    mapping: Annotated[
        str | None,
        typer.Option(help='Wide: JSON column → series id, e.g. {"t1": "pump7_temp"}.'),
    ] = None,
    timestamp_column: Annotated[str | None, typer.Option()] = None,
    series_column: Annotated[str | None, typer.Option()] = None,
    value_column: Annotated[str | None, typer.Option()] = None,
    timezone: Annotated[
        str | None, typer.Option(help="The zone of naive times (default UTC).")
    ] = None,
    timestamp_unit: Annotated[
        str | None, typer.Option(help="s, ms, us or ns (default: by magnitude).")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Follow the ingest until it ends.")] = True,
    url: Url = None,
    token: Token = None,
) -> None:
    """Upload a file of readings and follow its ingest."""
    from rich.console import Console

    params = {
        "form": form, "sensor": sensor, "mapping": mapping,
        "timestamp_column": timestamp_column, "series_column": series_column,
        "value_column": value_column, "timezone": timezone,
        "timestamp_unit": timestamp_unit,
    }  # fmt: skip
    console = Console(stderr=True)
    with training_client(url, token) as client:
        accepted = _send(client, file, {k: v for k, v in params.items() if v}, console)
        upload_id = accepted["upload_id"]
        typer.echo(f"upload {upload_id} queued: {_detected(accepted)}")
        if not wait:
            return
        ended = _follow(client, upload_id, console)
    _summary(ended)
    if ended["status"] != "done":
        raise typer.Exit(1)


def _send(
    client: Any, file: Path, params: dict[str, str], console: Any
) -> dict[str, Any]:
    import httpx
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    size = file.stat().st_size
    headers = {
        "Content-Type": CONTENT_TYPES.get(file.suffix.lower(), "text/csv"),
        "Content-Length": str(size),
        "Content-Disposition": f'attachment; filename="{file.name}"',
    }
    with Progress(
        *Progress.get_default_columns()[:2], DownloadColumn(), TransferSpeedColumn(),
        console=console,
    ) as bar:  # fmt: skip
        task = bar.add_task(f"send {file.name}", total=size)
        try:
            answer = client.post(
                UPLOADS, params=params, headers=headers,
                content=_pieces(file, bar, task), timeout=None,
            )  # fmt: skip
        except httpx.HTTPError as exc:
            raise CommandFailed(
                f"cannot send to the training service at {client.base_url} "
                f"({type(exc).__name__}): start it, or set --url"
            ) from None
    found: dict[str, Any] = answer.json() if answer.content else {}
    if answer.status_code >= 400:
        rule = found.get("rule", "")
        raise CommandFailed(
            f"HTTP {answer.status_code} {rule}: {found.get('detail', answer.text)}"
        )
    return found


def _pieces(file: Path, bar: Progress, task: Any) -> Iterator[bytes]:
    with file.open("rb") as source:
        while piece := source.read(PIECE_BYTES):
            bar.advance(task, len(piece))
            yield piece


def _follow(client: Any, upload_id: str, console: Any) -> dict[str, Any]:
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    path = f"{UPLOADS}/{upload_id}"
    columns = (
        TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
        TextColumn("{task.fields[counts]}"),
    )  # fmt: skip
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(f"ingest {upload_id[:8]}", total=1.0, counts="")
        while True:
            found = call(client, "GET", path)
            counts = (
                f"{found['rows_read']:,} rows, {found['readings_stored']:,} stored, "
                f"{found['invalid']:,} invalid"
            )
            bar.update(task, completed=found["progress"], counts=counts)
            if found["status"] in ("done", "failed"):
                return found
            time.sleep(POLL_S)


def _detected(found: dict[str, Any]) -> str:
    detected = found["detected"]
    return f"{detected['format']}, {detected['form']} form"


def _summary(found: dict[str, Any]) -> None:
    times = found["detected"].get("timestamps", {})
    typer.echo(
        f"upload {found['upload_id']}: {found['status']}; "
        f"{found['readings_stored']:,} readings stored, "
        f"{found['readings_already_stored']:,} already stored, "
        f"{found['invalid']:,} invalid; times: {_times(times)}"
    )
    if found["error"]:
        typer.echo(f"  error: {found['error']}", err=True)
    for reason, n in found["invalid_by_reason"].items():
        typer.echo(f"  {n:,} {reason}", err=True)
    for row in found["invalid_rows"][:SHOWN_INVALID]:
        where = f"line {row['line']}" if row["line"] is not None else "a line"
        typer.echo(f"  {where}, {row['column']}: {row['reason']}", err=True)


def _times(described: dict[str, Any]) -> str:
    if described.get("encoding") == "epoch":
        return f"epoch {described['unit']} ({described['unit_was']})"
    if described:
        return f"{described['encoding']}, naive in {described['naive_times_in']}"
    return "none read"
