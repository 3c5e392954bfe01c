"""`atalaia quality SERIES_ID`: a stored window's data-quality report, from the
training service's API (`GET /api/v1/series/{id}/quality`)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from atalaia.cli.service_client import Token, Url, call, training_client
from atalaia.core.series import describe_time

TIMEOUT_S = 60.0  # a window of up to 2,000,000 readings is read and measured

Moment = Annotated[
    str | None,
    typer.Option(
        help="ISO 8601 (UTC when no offset) or epoch seconds; default: the 7 "
        "days up to the newest reading.",
        show_default=False,
    ),
]


def quality(
    series_id: Annotated[
        str, typer.Argument(help="A series, or with --sensor a sensor.")
    ],
    start: Moment = None,
    end: Moment = None,
    sensor: Annotated[
        bool, typer.Option(help="SERIES_ID is a sensor: report each of its axes.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the JSON answer.")
    ] = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Print whether a series' data is fit to train on, and why."""
    path = f"/api/v1/{'sensors' if sensor else 'series'}/{series_id}/quality"
    window = {k: v for k, v in (("start", start), ("end", end)) if v is not None}
    with training_client(url, token, TIMEOUT_S) as client:
        found = call(client, "GET", path, params=window)
    if as_json:
        typer.echo(json.dumps(found))
        return
    if sensor:
        typer.echo(f"sensor {series_id}: {_verdict(found['fit_to_train'])}")
        for one in found["axes"].values():
            typer.echo("\n".join(["", *describe_report(one)]))
        return
    typer.echo("\n".join(describe_report(found)))


def describe_report(found: dict[str, Any]) -> list[str]:
    """A series' report (as the API answers it) in lines for a terminal."""
    report = found["report"]
    timing, gaps, stuck = report["sampling"], report["gaps"], report["stuck"]
    lines = [
        f"{found['series_id']}  {describe_time(found['start'])} … "
        f"{describe_time(found['end'])}",
        f"fit to train: {_verdict(found['fit_to_train'])}",
        *(
            f"  {'✗' if f['blocking'] else '·'} {f['rule']}: {f['detail']}"
            for f in report["findings"]
        ),
        f"readings {report['count']} ({report['usable']} usable), "
        f"non-finite {report['non_finite']}, duplicates {report['duplicates']} "
        f"({report['conflicting_duplicates']} conflicting), "
        f"out of order {report['out_of_order']}",
    ]
    if timing["interval_s"] is not None:
        lines.append(
            f"interval {timing['interval_s']:g} s ({timing['regular_share']:.0%} "
            f"regular, cv {timing['spacing_cv']:.2f}), missing "
            f"{report['missing_rate']:.1%}"
        )
    lines.append(
        f"gaps {gaps['count']} ({gaps['total_s']:g} s, {gaps['share']:.1%}), "
        f"stuck runs {stuck['count']} ({stuck['share']:.1%} of readings), "
        f"spikes {report['spikes']}, unit switches {len(report['unit_jumps'])}"
    )
    if report["value_range"] is not None:
        span = report["value_range"]
        lines.append(
            f"values {span['min']:g} … {span['max']:g} "
            f"(p1 {span['p1']:g}, p99 {span['p99']:g})"
        )
    return lines


def _verdict(fit: bool) -> str:
    return "yes" if fit else "no"
