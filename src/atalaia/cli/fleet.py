"""`atalaia fleet …`: promote, start canaries of or roll back many series as
one operation, and follow it, through the training service's API
(`/api/v1/operations`).

The service and the token: see `service_client`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from atalaia.cli.service_client import Token, Url, call, training_client

if TYPE_CHECKING:
    import httpx

app = typer.Typer(
    help="Fleet operations: promote, canary or roll back many series at once.",
    no_args_is_help=True,
)

OPERATIONS = "/api/v1/operations"
POLL_S = 0.5
ENDED = ("done", "failed", "cancelled")

Prefix = Annotated[str | None, typer.Option(help="Series whose id begins so.")]
Sensor = Annotated[str | None, typer.Option(help="A sensor's axes' series.")]
Batch = Annotated[
    str | None, typer.Option("--batch", help="A training batch's series.")
]
Every = Annotated[bool, typer.Option("--all", help="Every series with a model.")]
AssetNode = Annotated[
    str | None,
    typer.Option("--asset", help="The series under a node of the hierarchy."),
]
SeriesFile = Annotated[
    Path | None,
    typer.Option(help="A file of series ids, one a line.", exists=True, dir_okay=False),
]
MaxFalseAlarms = Annotated[
    float | None,
    typer.Option(help="Skip candidates flagging more of their holdout."),
]
AnomalyRateWithin = Annotated[
    float | None,
    typer.Option(
        help="Skip candidates whose holdout rate is not within ±this "
        "share of production's (0.2: ±20 %)."
    ),
]
BetterThanProduction = Annotated[
    bool,
    typer.Option(
        help="Skip candidates that found fewer injected anomalies on their "
        "holdout than production on its own, or raised more false alarms."
    ),
]
Reason = Annotated[str, typer.Option(help="Why: kept in the ledger and the audit log.")]
DryRun = Annotated[bool, typer.Option(help="Count what it would do; change nothing.")]
Wait = Annotated[bool, typer.Option(help="Show its progress until it ends.")]


@app.command("promote")
def promote(
    prefix: Prefix = None,
    sensor: Sensor = None,
    batch: Batch = None,
    every: Every = False,
    series_file: SeriesFile = None,
    asset: AssetNode = None,
    max_holdout_false_alarm_rate: MaxFalseAlarms = None,
    anomaly_rate_within: AnomalyRateWithin = None,
    better_than_production: BetterThanProduction = False,
    keep_existing: Annotated[
        bool, typer.Option(help="Send the production versions back to Staging.")
    ] = False,
    reason: Reason = "",
    dry_run: DryRun = False,
    wait: Wait = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Promote each selected series' newest Staging version."""
    body: dict[str, Any] = {
        "action": "promote",
        "selector": _selector(prefix, sensor, batch, every, series_file, asset),
        "archive_existing": not keep_existing,
        "reason": reason,
        "dry_run": dry_run,
    }
    body |= _condition(
        max_holdout_false_alarm_rate, anomaly_rate_within, better_than_production
    )
    _start(body, wait=wait, url=url, token=token)


@app.command("canary")
def canary(
    prefix: Prefix = None,
    sensor: Sensor = None,
    batch: Batch = None,
    every: Every = False,
    series_file: SeriesFile = None,
    asset: AssetNode = None,
    max_holdout_false_alarm_rate: MaxFalseAlarms = None,
    anomaly_rate_within: AnomalyRateWithin = None,
    better_than_production: BetterThanProduction = False,
    initial_percentage: Annotated[
        float, typer.Option(help="Each candidate's first share of the readings.")
    ] = 5.0,
    increment_percentage: Annotated[
        float, typer.Option(help="How much more at each step the gates pass.")
    ] = 15.0,
    increment_interval_hours: Annotated[
        float, typer.Option(help="How long between two steps.")
    ] = 2.0,
    reason: Reason = "",
    dry_run: DryRun = False,
    wait: Wait = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Start a canary of each selected series' newest Staging version beside
    its production version; the rollout task grows or rolls back each one."""
    body: dict[str, Any] = {
        "action": "canary",
        "selector": _selector(prefix, sensor, batch, every, series_file, asset),
        "canary_config": {
            "initial_percentage": initial_percentage,
            "increment_percentage": increment_percentage,
            "increment_interval_hours": increment_interval_hours,
        },
        "reason": reason,
        "dry_run": dry_run,
    }
    body |= _condition(
        max_holdout_false_alarm_rate, anomaly_rate_within, better_than_production
    )
    _start(body, wait=wait, url=url, token=token)


@app.command("rollback")
def rollback(
    prefix: Prefix = None,
    sensor: Sensor = None,
    batch: Batch = None,
    every: Every = False,
    series_file: SeriesFile = None,
    asset: AssetNode = None,
    reason: Reason = "",
    dry_run: DryRun = False,
    wait: Wait = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Put back, for each selected series, the version promoted before."""
    body = {
        "action": "rollback",
        "selector": _selector(prefix, sensor, batch, every, series_file, asset),
        "reason": reason,
        "dry_run": dry_run,
    }
    _start(body, wait=wait, url=url, token=token)


def _condition(
    max_holdout_false_alarm_rate: float | None,
    anomaly_rate_within: float | None,
    better_than_production: bool,
) -> dict[str, Any]:
    """The body's `condition`, when any part of one is asked."""
    condition: dict[str, Any] = {
        "max_holdout_false_alarm_rate": max_holdout_false_alarm_rate,
        "anomaly_rate_within": anomaly_rate_within,
        "better_than_production": better_than_production or None,
    }
    asked = {k: v for k, v in condition.items() if v is not None}
    return {"condition": asked} if asked else {}


@app.command("status")
def status(
    operation_id: Annotated[str, typer.Argument(help="The operation's id.")],
    wait: Wait = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Print an operation's progress (as JSON), or follow it with `--wait`."""
    with training_client(url, token) as client:
        if wait:
            _follow(client, operation_id)
        else:
            typer.echo(json.dumps(call(client, "GET", f"{OPERATIONS}/{operation_id}")))


@app.command("cancel")
def cancel(
    operation_id: Annotated[str, typer.Argument(help="The operation's id.")],
    url: Url = None,
    token: Token = None,
) -> None:
    """Stop an operation between two chunks: what was done stays done."""
    with training_client(url, token) as client:
        found = call(client, "POST", f"{OPERATIONS}/{operation_id}/cancel")
    typer.echo(f"operation {operation_id}: {found['status']} ({_counts(found)})")


def _selector(
    prefix: str | None,
    sensor: str | None,
    batch: str | None,
    every: bool,
    series_file: Path | None,
    asset: str | None,
) -> dict[str, Any]:
    chosen: dict[str, Any] = {}
    if asset is not None:
        chosen["asset"] = asset
    if prefix is not None:
        chosen["prefix"] = prefix
    if sensor is not None:
        chosen["sensor"] = sensor
    if batch is not None:
        chosen["batch_id"] = batch
    if every:
        chosen["all"] = True
    if series_file is not None:
        lines = series_file.read_text().splitlines()
        chosen["series_ids"] = [line.strip() for line in lines if line.strip()]
    if len(chosen) != 1:
        raise typer.BadParameter(
            "choose exactly one of --prefix, --sensor, --batch, --asset, --all, "
            "--series-file"
        )
    return chosen


def _start(
    body: dict[str, Any], *, wait: bool, url: str | None, token: str | None
) -> None:
    with training_client(url, token) as client:
        answer = call(client, "POST", OPERATIONS, body)
        if body["dry_run"]:
            typer.echo(json.dumps(answer))
            return
        operation_id = answer["operation_id"]
        typer.echo(f"operation {operation_id} queued: {answer['total']} series")
        if wait:
            _follow(client, operation_id)


def _follow(client: httpx.Client, operation_id: str) -> None:
    """Show the operation's progress until it ends; exit 1 unless it is done."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    path = f"{OPERATIONS}/{operation_id}"
    found = call(client, "GET", path)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[pace]}"),
    )
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(f"{found['action']} {operation_id[:8]}", pace="")
        while True:
            handled = found["total"] - found["remaining"]
            bar.update(task, completed=handled, total=found["total"], pace=_pace(found))
            if found["status"] in ENDED:
                break
            time.sleep(POLL_S)
            found = call(client, "GET", path)
    typer.echo(f"operation {operation_id}: {found['status']} ({_counts(found)})")
    for error in found["errors"]:
        typer.echo(f"  {error['series_id']}: {error['error']}", err=True)
    if found["status"] != "done":
        raise typer.Exit(1)


def _pace(found: dict[str, Any]) -> str:
    rate, eta = found["rate_per_s"], found["eta_s"]
    shown = f"{rate:,.0f} series/s" if rate else ""
    return shown + (f", ETA {eta:,.0f} s" if eta is not None else "")


def _counts(found: dict[str, Any]) -> str:
    skipped = ", ".join(f"{n} {why}" for why, n in found["skipped_by_reason"].items())
    return (
        f"{found['done']} done, {found['skipped']} skipped"
        + (f" [{skipped}]" if skipped else "")
        + f", {found['failed']} failed, {found['remaining']} remaining"
    )
