"""The `atalaia` command line."""

from __future__ import annotations

import typer

from atalaia.cli import (
    assets,
    audit,
    backup,
    cluster,
    db,
    demo,
    failures,
    fleet,
    ingest,
    quality,
    report,
    scheduler,
    serve,
    token,
    upload,
    worker,
)

app = typer.Typer(
    name="atalaia",
    cls=failures.AtalaiaGroup,  # a failure the user can fix: one line, exit ≠ 0
    help="Anomaly detection for industrial sensor fleets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold secrets
)
app.command("serve")(serve.serve)
app.command("demo")(demo.demo)
app.command("up")(cluster.up)
app.command("status")(cluster.status)
app.command("down")(cluster.down)
app.command("worker")(worker.worker)
app.command("scheduler")(scheduler.scheduler)
app.command("quality")(quality.quality)
app.command("upload")(upload.upload)
app.command("restore")(backup.restore)
app.add_typer(db.app, name="db")
app.add_typer(token.app, name="token")
app.add_typer(fleet.app, name="fleet")
app.add_typer(ingest.app, name="ingest")
app.add_typer(report.app, name="report")
app.add_typer(assets.app, name="assets")
app.add_typer(backup.app, name="backup")
app.add_typer(audit.app, name="audit")


def main() -> None:
    app()


__all__ = ["app", "main"]
