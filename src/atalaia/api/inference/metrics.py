"""The inference service's Prometheus metrics and per-series prediction counts."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from atalaia.services.inference import Predictor
from atalaia.services.inference.heavy import HeavyModels
from atalaia.services.model_table import UNKNOWN_ROW, ModelTable, Scores, Tier


class ServingMetrics:
    """Counts scored readings (fleet-wide in Prometheus, per series in rollups)."""

    def __init__(self, registry: CollectorRegistry, predictor: Predictor) -> None:
        self.predictor = predictor
        # [production, fallback] × [normal, anomaly], plain integers counted on the
        # event loop's thread (no lock per reading), exported when scraped.
        self._counts = [[0, 0], [0, 0]]
        self._answered = [0, 0]  # production, fallback
        registry.register(_PredictionCounts(self._counts))
        self._unknown = Counter(
            "predictions_unknown_series",
            "Readings of series with no model and no history (a mistyped id?), "
            "answered with the default or refused",
            registry=registry,
        )
        load = Histogram(
            "model_load_duration_seconds",
            "Time to load the model table",
            ["source"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30),
            registry=registry,
        )
        predictor.on_load = lambda source, seconds: load.labels(source).observe(seconds)
        Gauge(
            "models_loaded", "Production models in memory", registry=registry
        ).set_function(lambda: len(predictor.table))
        Gauge(
            "model_cache_hit_rate",
            "Share of readings answered by a production model held in memory",
            registry=registry,
        ).set_function(lambda: self._answered[0] / max(1, sum(self._answered)))
        registry.register(_HeavyModelCounts(predictor.heavy))

    def unknown_series(self, readings: int) -> None:
        """Count readings of series unknown to the table (not per series: any
        string is a series id)."""
        self._unknown.inc(readings)

    def one(
        self,
        table: ModelTable,
        row: int,
        series_id: str,
        anomaly: bool,
        started: float,
    ) -> None:
        """Count a single reading of the table's row `row`, scored since `started`."""
        stage = 0 if row and table.cols.version[row] else 1
        self._counts[stage][anomaly] += 1
        self._answered[stage] += 1
        latency_ms = (time.perf_counter() - started) * 1000
        tally = self.predictor.tally
        if row:
            tally.add_one(table, row, anomaly, latency_ms)
        else:
            tally.add_named(table, {series_id: (1, int(anomaly))}, latency_ms)

    def batch(self, series_ids: Sequence[str], scores: Scores, started: float) -> None:
        """Count a batch's readings per series, in numpy."""
        model = scores.tier == Tier.MODEL
        n_model = int(model.sum())
        by_stage = (
            (0, n_model, int((model & scores.anomaly).sum())),
            (1, model.size - n_model, int((~model & scores.anomaly).sum())),
        )
        for stage, answered, flagged in by_stage:
            self._counts[stage][0] += answered - flagged
            self._counts[stage][1] += flagged
            self._answered[stage] += answered
        latency_ms = (time.perf_counter() - started) * 1000
        tally = self.predictor.tally
        rows, anomaly = scores.rows, scores.anomaly
        unknown = rows == UNKNOWN_ROW
        if unknown.any():  # series unknown to the table: count them by name
            named: dict[str, tuple[int, int]] = {}
            pairs = zip(series_ids, unknown.tolist(), anomaly.tolist(), strict=True)
            for series_id, is_unknown, flagged in pairs:
                if is_unknown:
                    n, anomalies = named.get(series_id, (0, 0))
                    named[series_id] = (n + 1, anomalies + flagged)
            tally.add_named(scores.table, named, latency_ms)
            rows, anomaly = rows[~unknown], anomaly[~unknown]
        tally.add_rows(scores.table, rows, anomaly, latency_ms)


class _HeavyModelCounts(Collector):
    """`heavy_model_cache_*`: what the heavy models' cache did and holds."""

    def __init__(self, heavy: HeavyModels) -> None:
        self._heavy = heavy

    def collect(self) -> Iterator[Metric]:
        c = self._heavy.counts
        for name, value, help_text in (
            ("hits", c.hits, "Heavy models found in memory"),
            ("misses", c.misses, "Heavy models read from the artifact store"),
            ("evictions", c.evictions, "Heavy models evicted to stay in budget"),
            ("load_failures", c.failures, "Heavy models unreadable: band answered"),
        ):
            yield CounterMetricFamily(
                f"heavy_model_cache_{name}", help_text, value=value
            )
        yield GaugeMetricFamily(
            "heavy_model_cache_bytes", "Bytes of heavy models in memory", value=c.bytes
        )
        yield GaugeMetricFamily(
            "heavy_model_cache_models", "Heavy models in memory", value=c.models
        )
        yield GaugeMetricFamily(
            "heavy_model_cache_budget_bytes",
            "Bytes heavy models may take (ATALAIA_INFERENCE_MODEL_MEMORY_MB)",
            value=self._heavy.budget_bytes,
        )


class _PredictionCounts(Collector):
    """`anomaly_predictions_total{stage, anomaly}` from `ServingMetrics`' counts."""

    def __init__(self, counts: list[list[int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "anomaly_predictions",
            "Readings scored, by the stage that answered and the verdict",
            labels=["stage", "anomaly"],
        )
        for stage, counts in zip(("production", "fallback"), self._counts, strict=True):
            for verdict, n in zip(("false", "true"), counts, strict=True):
                family.add_metric([stage, verdict], n)
        yield family
