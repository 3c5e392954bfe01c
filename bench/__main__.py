"""`python -m bench <benchmark> [options]`: run one benchmark, print and record it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from atalaia import detection
from atalaia.logging import configure_logging
from bench import (
    backup_bench,
    chart_bench,
    console_bench,
    fleet_bench,
    fleet_grid_bench,
    fleet_promotion_bench,
    forest_bench,
    groups_bench,
    incident_api_bench,
    incident_bench,
    ingest_bench,
    mqtt_bench,
    ops_views_bench,
    peers_bench,
    pitr_bench,
    platform_bench,
    predict_bench,
    quality_bench,
    quality_report_bench,
    report_bench,
    rollout_bench,
    scale_bench,
    seasonal_bench,
    skab,
    snapshot_bench,
    store_bench,
    stream_bench,
    streaming_http_bench,
    tracing_bench,
    upload_bench,
)
from bench._report import report

app = typer.Typer(add_completion=False, no_args_is_help=True)
Record = Annotated[bool, typer.Option(help="Append the figures to bench/RESULTS.md.")]
Url = Annotated[
    str | None, typer.Option(help="Database URL (default: a fresh SQLite file).")
]
EmptyPgUrl = Annotated[
    str | None,
    typer.Option(help="An empty PostgreSQL database (default: a fresh one)."),
]
PgUrl = Annotated[
    str | None, typer.Option(help="PostgreSQL URL (default: a fresh local database).")
]


@app.callback()
def main() -> None:
    """Run one benchmark: print its figures and append them to bench/RESULTS.md."""
    configure_logging(level="WARNING")  # here, the tests' runs log warnings only too


@app.command("train-accept")
def train_accept(
    requests: int = 50, points: int = 10_000, record: Record = True
) -> None:
    """POST /training with inline points: time to the 202, one request at a time."""
    report("train-accept", platform_bench.train_accept(requests, points), record=record)


@app.command("promote-visible")
def promote_visible(series: int = 20, record: Record = True) -> None:
    """Promotion answered → first prediction by the new version (embedded, SQLite)."""
    report("promote-visible", platform_bench.promote_visible(series), record=record)


@app.command("incident-cost")
def incident_cost(
    models: int = 100_000,
    duration_s: int = 5,
    runs: int = 3,
    url: Url = None,
    record: Record = True,
) -> None:
    """Single predictions at 1 % anomalies with incidents recorded and without."""
    figures, table = incident_bench.incident_cost(models, duration_s, runs, url)
    report("incident-cost", figures, record=record)
    typer.echo(table)


@app.command("mqtt-ingest")
def mqtt_ingest(
    readings: int = 1_000_000,
    per_message: int = 10,
    publishers: int = 2,
    sensors: int = 1000,
    batch_size: int = 20_000,
    url: Url = None,
    broker: str = mqtt_bench.DEFAULT_BROKER,
    record: Record = True,
) -> None:
    """MQTT (QoS 1) → `atalaia ingest mqtt` → `atalaia serve`: readings/s, latency."""
    figures = mqtt_bench.mqtt_ingest(
        readings, per_message, publishers, sensors, batch_size, url, broker
    )
    report("mqtt-ingest", figures, record=record)


@app.command("canary-cost")
def canary_cost(
    models: int = 100_000,
    percentage: float = 50.0,
    duration: int = 5,
    runs: int = 3,
    record: Record = True,
) -> None:
    """Single predictions of series in a canary at `percentage` and without one."""
    figures, table = rollout_bench.canary_cost(models, percentage, duration, runs)
    report("canary-cost", figures, record=record)
    typer.echo(table)


@app.command("groups-cost")
def groups_cost(
    models: int = 100_000,
    patterns: int = 20,
    duration: int = 5,
    runs: int = 3,
    record: Record = True,
) -> None:
    """Single predictions with a token limited to a sensor group and without."""
    figures, table = groups_bench.groups_cost(models, patterns, duration, runs)
    report("groups-cost", figures, record=record)
    typer.echo(table)


@app.command("incident-latency")
def incident_latency(
    models: int = 3_000,
    incidents: int = 200,
    interval_s: float = 0.05,
    record: Record = True,
) -> None:
    """An anomalous reading → its incident's webhook notification (embedded)."""
    figures, verdict = incident_bench.incident_latency(models, incidents, interval_s)
    report("incident-latency", figures, record=record)
    typer.echo(verdict)


@app.command("incidents")
def incidents(
    incidents: Annotated[int, typer.Option(help="Live incidents.")] = 100_000,
    sensors: int = 95_000,
    requests: Annotated[int, typer.Option(help="Timed requests a route.")] = 200,
    url: Url = None,
    record: Record = True,
) -> None:
    """GET /fleet/status and /incidents pages (first, filtered, deep) on
    `atalaia serve --role training` over a fleet of live incidents."""
    figures, table = incident_api_bench.incidents_api(incidents, sensors, requests, url)
    report("incidents", figures, record=record)
    typer.echo(table)


@app.command("console")
def console(
    sensors: int = 95_000,
    incidents: Annotated[int, typer.Option(help="Live incidents.")] = 400,
    readings: Annotated[int, typer.Option(help="Readings charted.")] = 100_000,
    runs: Annotated[int, typer.Option(help="Timed visits a page.")] = 5,
    url: PgUrl = None,
    record: Record = True,
) -> None:
    """The fleet page and a series page in Chromium: painted, bytes, chart ready."""
    figures, verdict = console_bench.console(sensors, incidents, readings, runs, url)
    report("console", figures, record=record)
    typer.echo(verdict)


@app.command("fleet-grid")
def fleet_grid(
    sensors: int = 95_000,
    incidents: Annotated[int, typer.Option(help="Live incidents.")] = 400,
    requests: Annotated[int, typer.Option(help="Timed requests a route.")] = 200,
    url: PgUrl = None,
    record: Record = True,
) -> None:
    """GET /fleet/sensors over a fleet on PostgreSQL: the grid read, the
    answer kept, its bytes gzipped."""
    figures, table = fleet_grid_bench.fleet_grid(sensors, incidents, requests, url)
    report("fleet-grid", figures, record=record)


@app.command("fleet-promotion")
def fleet_promotion(
    series: int = 285_000,
    url: EmptyPgUrl = None,
    record: Record = True,
) -> None:
    """POST /operations promoting every series on PostgreSQL: its run, and the
    time until a running inference service serves the new versions."""
    figures, verdict = fleet_promotion_bench.fleet_promotion(series, url)
    report("fleet-promotion", figures, record=record)
    typer.echo(verdict)


@app.command("chart")
def chart(
    readings: Annotated[
        str, typer.Option(help="Comma-separated sizes of the series charted.")
    ] = "100000,2000000",
    requests: Annotated[int, typer.Option(help="Timed requests a route.")] = 30,
    points: Annotated[int, typer.Option(help="The chart's time buckets.")] = 1_000,
    url: Url = None,
    record: Record = True,
) -> None:
    """GET /series/{id}/chart of a week of 100,000 and 2,000,000 readings, beside
    GET /plot?format=json of the same window: latency and body bytes."""
    sizes = [int(size) for size in readings.split(",") if size.strip()]
    figures, table = chart_bench.chart(sizes, requests, points, url)
    report("chart", figures, record=record)
    typer.echo(table)


@app.command("report-week")
def report_week(
    series: Annotated[int, typer.Option(help="Series (three axes a sensor).")] = 30_000,
    incidents: Annotated[int, typer.Option(help="Incidents of the week.")] = 2_000,
    runs: Annotated[int, typer.Option(help="Timed runs of each step.")] = 3,
    url: EmptyPgUrl = None,
    record: Record = True,
) -> None:
    """The fleet's report of a week: gathered, laid out as PDF, written as Excel."""
    figures = report_bench.report_week(series, incidents, runs, url)
    report("report-week", figures, record=record)


@app.command("ops-views")
def ops_views(
    jobs: Annotated[int, typer.Option(help="Jobs of the retraining batch.")] = 285_000,
    older: Annotated[int, typer.Option(help="Finished batches as large.")] = 0,
    versions: int = 285_000,
    requests: Annotated[int, typer.Option(help="Timed requests a route.")] = 200,
    url: EmptyPgUrl = None,
    record: Record = True,
) -> None:
    """GET /training/batches (a page, one batch) and /models/overview on
    `atalaia serve --role training` over a fleet's batch and registry."""
    figures, table = ops_views_bench.ops_views(jobs, older, versions, requests, url)
    report("ops-views", figures, record=record)
    typer.echo(table)


@app.command("warm-load")
def warm_load(
    models: int = 285_000,
    url: Url = None,
    algorithm: Annotated[
        str, typer.Option(help="zscore, or seasonal (hour-of-week bands).")
    ] = "zscore",
    record: Record = True,
) -> None:
    """Start the inference service until every production model is loaded."""
    report("warm-load", store_bench.warm_load(models, url, algorithm), record=record)


@app.command("train-jobs")
def train_jobs(series: int = 200, url: Url = None, record: Record = True) -> None:
    """Run training jobs from each series' stored week, one after the other."""
    report("train-jobs", store_bench.train_jobs(series, url), record=record)


@app.command("training-snapshot")
def training_snapshot(
    series: int = 500,
    points: int = 10_080,
    runs: int = 5,
    algorithm: Annotated[str, typer.Option(help="The family fitted.")] = "zscore",
    record: Record = True,
) -> None:
    """Keep a training chunk's data (Parquet) and fit it, in turns: the ratio."""
    figures = snapshot_bench.training_snapshot(series, points, runs, algorithm)
    report("training-snapshot", figures, record=record)


@app.command("fleet-retrain")
def fleet_retrain(
    series: int = 10_000,
    points: int = 10_080,
    url: PgUrl = None,
    threads: Annotated[int, typer.Option(help="Training threads.")] = 2,
    algorithm: Annotated[str, typer.Option(help="The family retrained.")] = "zscore",
    record: Record = True,
) -> None:
    """Ingest a week of every series into PostgreSQL, then retrain all in one batch."""
    figures = fleet_bench.fleet_retrain(series, points, url, threads, algorithm)
    report("fleet-retrain", figures, record=record)


@app.command("predict-single")
def predict_single(
    models: int = 285_000,
    duration: int = 5,
    runs: int = 3,
    url: Url = None,
    record: Record = True,
) -> None:
    """POST /predict/{id} under wrk at c=1/16/64, beside bare reference servers."""
    figures, table = predict_bench.predict_single(models, duration, runs, url)
    report("predict-single", figures, record=record)
    typer.echo(table)


@app.command("tracing")
def tracing(
    models: int = 100_000, duration: int = 5, runs: int = 3, record: Record = True
) -> None:
    """Single predictions with tracing off, sampling off, 1 % and every request."""
    figures, table = tracing_bench.tracing_cost(models, duration, runs)
    report("tracing", figures, record=record)
    typer.echo(table)


@app.command("predict-batch")
def predict_batch(
    models: int = 285_000,
    readings: int = 10_000,
    series_per_request: int = 1_000,
    duration: int = 5,
    runs: int = 3,
    url: Url = None,
    record: Record = True,
) -> None:
    """POST /predict/batch as rows and as columns, beside a numpy reference."""
    figures, table = predict_bench.predict_batch(
        models, readings, series_per_request, duration, runs, url
    )
    report("predict-batch", figures, record=record)
    typer.echo(table)


@app.command("predict-seasonal")
def predict_seasonal(
    models: int = 285_000,
    readings: int = 10_000,
    series_per_request: int = 1_000,
    duration: int = 5,
    runs: int = 3,
    record: Record = True,
) -> None:
    """Seasonal (hour-of-week) models beside z-score ones: single, columns, table."""
    figures, table = seasonal_bench.predict_seasonal(
        models, readings, series_per_request, duration, runs
    )
    report("predict-seasonal", figures, record=record)
    typer.echo(table)


@app.command("predict-streaming")
def predict_streaming(
    models: int = 285_000,
    readings: Annotated[
        int, typer.Option(help="Readings of distinct series a batch.")
    ] = 1_000,
    duration: int = 5,
    runs: int = 3,
    record: Record = True,
) -> None:
    """forecast (streaming) models beside z-score ones over HTTP, every reading
    fresh: single at 64 connections, columns at 2."""
    figures, table = streaming_http_bench.predict_streaming(
        models, readings, duration, runs
    )
    report("predict-streaming", figures, record=record)
    typer.echo(table)


@app.command("predict-forest")
def predict_forest(
    models: int = 200,
    forests: Annotated[
        int, typer.Option(help="Forests fitted (series share them).")
    ] = 5,
    points: Annotated[
        int, typer.Option(help="Readings each forest is fitted on.")
    ] = 10_080,
    readings: int = 1_000,
    series_per_request: int = 100,
    duration: int = 5,
    runs: int = 3,
    record: Record = True,
) -> None:
    """isolation_forest models beside z-score ones: single (every forest in
    memory, a tenth), columns."""
    figures, table = forest_bench.predict_forest(
        models, forests, points, readings, series_per_request, duration, runs
    )
    report("predict-forest", figures, record=record)
    typer.echo(table)


@app.command("peers")
def peers(
    models: int = 285_000,
    peers: peers_bench.Peers = peers_bench.Peers.ALL,
    venvs: Annotated[
        Path, typer.Option(help="Folder of the peers' virtualenvs, made once.")
    ] = peers_bench.CACHE,
    connections: int = 64,
    duration: int = 10,
    runs: int = 3,
    record: Record = True,
) -> None:
    """The same models served by MLflow and KServe, beside atalaia, under wrk."""
    figures, table = peers_bench.peers(
        models, peers, venvs, connections, duration, runs
    )
    report("peers", figures, record=record)
    typer.echo(table)


@app.command("ingest")
def ingest(
    models: int = 285_000,
    series_per_request: int = 1_000,
    duration: int = 5,
    runs: int = 3,
    url: Url = None,
    record: Record = True,
) -> None:
    """POST /series/points: readings of modelled series (stored and scored)
    against readings of series without a model (stored only)."""
    figures, table = ingest_bench.ingest(
        models, series_per_request, duration, runs, url
    )
    report("ingest", figures, record=record)
    typer.echo(table)


@app.command("upload")
def upload(
    readings: int = 10_000_000,
    series: int = 1_000,
    url: PgUrl = None,
    record: Record = True,
) -> None:
    """Upload ingest into PostgreSQL: readings/s from Parquet and from CSV."""
    figures, table = upload_bench.upload(readings, series, url)
    report("upload", figures, record=record)
    typer.echo(table)


@app.command("scale")
def scale(
    sizes: Annotated[
        str, typer.Option(help="Comma-separated history sizes: 10M,100M,1B.")
    ] = "10M,100M,1B",
    series: int = 1_000,
    step_s: float = 60.0,
    hot_days: int = 3,
    samples: int = 30,
    ingest_minutes: float = 60.0,
    folder: Annotated[
        Path | None, typer.Option(help="Where the cold segments go (default: /tmp).")
    ] = None,
    url: PgUrl = None,
    record: Record = True,
) -> None:
    """A history growing from 10 M to 1 B readings (hot days in PostgreSQL, the
    rest Parquet segments): ingest, windows, quality report, training read."""
    figures, table = scale_bench.scale(
        sizes.split(","), series=series, step_s=step_s, hot_days=hot_days,
        samples=samples, ingest_minutes=ingest_minutes, url=url, folder=folder,
    )  # fmt: skip
    report("scale", figures, record=record)
    typer.echo(table)


@app.command("backup")
def backup(
    models: int = 285_000,
    readings: int = 10_000_000,
    heavy: int = 1_000,
    every_hours: float = 6.0,
    target_readings: int = 100_000_000,
    url: PgUrl = None,
    record: Record = True,
) -> None:
    """Backup and restore on PostgreSQL: backup time and size, restore and
    reload (RTO), RPO at `every_hours`; scaled to `target_readings`."""
    figures = backup_bench.backup(
        models, readings, heavy=heavy, every_hours=every_hours,
        target_readings=target_readings, url=url,
    )  # fmt: skip
    report("backup", figures, record=record)


@app.command("pitr")
def pitr(
    models: int = 30_000,
    readings: int = 1_000_000,
    archive_timeout: int = 30,
    samples: int = 3,
    record: Record = True,
) -> None:
    """PITR with pgBackRest on a throwaway cluster: the WAL archive's lag behind
    a commit (with `archive_timeout` s), restore and recovery time (RTO)."""
    figures = pitr_bench.pitr(
        models, readings, archive_timeout_s=archive_timeout, samples=samples
    )
    report("pitr", figures, record=record)


@app.command("streaming")
def streaming(
    models: int = 285_000,
    batch: int = 1_000,
    single: int = 20_000,
    depth: int = 10,
    runs: int = 3,
    url: Annotated[
        str | None,
        typer.Option(help="A fresh PostgreSQL database to rebuild the state from."),
    ] = None,
    record: Record = True,
) -> None:
    """Streaming models in process: a forecast fleet against a zscore one
    (single readings, columnar batches), a minute of the fleet's stream as a
    share of one core, the state's memory and its rebuild."""
    report(
        "streaming",
        stream_bench.streaming(models, batch, single, depth, runs, url),
        record=record,
    )


@app.command("quality")
def quality(
    data: Annotated[
        Path, typer.Option(help="SKAB's folder (valve1/, valve2/, other/).")
    ] = skab.SKAB,
    algorithms: Annotated[
        str, typer.Option(help="Comma-separated families (default: every one).")
    ] = ",".join(detection.ALGORITHMS),
    record: Record = True,
) -> None:
    """Detection quality per detector: SKAB, the synthetic corpus, the demo fleet."""
    chosen = [a.strip() for a in algorithms.split(",") if a.strip()]
    unknown = sorted(set(chosen) - set(detection.ALGORITHMS))
    if unknown:
        raise typer.BadParameter(
            f"unknown {', '.join(unknown)}; known: {', '.join(detection.ALGORITHMS)}"
        )
    report("quality", quality_bench.quality(data, chosen), record=record)


@app.command("quality-report")
def quality_report(
    runs: int = 5, jobs: int = 5, url: Url = None, record: Record = True
) -> None:
    """The data-quality report: its time over 10 k–1 M readings and a 7-day
    1 Hz window, and its share of a training job."""
    report(
        "quality-report",
        quality_report_bench.quality_report(runs, url, jobs),
        record=record,
    )


if __name__ == "__main__":
    app()
