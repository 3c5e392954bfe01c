"""The incidents' signals queue of inference: anomalies queued from every kind
of scoring, recoveries counted, kept through a failed write, bounded."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from atalaia.api.common.explained import AnomalyView
from atalaia.core.incidents import Recovery
from atalaia.core.serving import ScoredAnomaly
from atalaia.errors import DependencyUnavailable
from atalaia.services.inference.sensors import SensorVerdict
from atalaia.services.inference.signals import IncidentSignals
from atalaia.services.model_table import ModelTable, Scores, Tier
from fixtures.serving import scored_reading

T0 = 1_733_587_200.0
MODEL = int(Tier.MODEL)
ANOMALY, NORMAL = scored_reading(anomaly=True), scored_reading(anomaly=False, score=0.2)


class Sink:
    def __init__(self) -> None:
        self.anomalies: list[ScoredAnomaly] = []
        self.recoveries: list[Recovery] = []
        self.down = False

    def add_signals(
        self, anomalies: Sequence[ScoredAnomaly], recoveries: Sequence[Recovery]
    ) -> None:
        if self.down:
            raise DependencyUnavailable("database", "down")
        self.anomalies += anomalies
        self.recoveries += recoveries

    def live_series(self) -> list[str]:
        return []


def test_a_single_anomaly_is_queued_explained_and_its_series_watched() -> None:
    signals, sink = IncidentSignals(resolve_after=2), Sink()
    signals.one("pump_1_x", T0, 9.0, ANOMALY)
    signals.one("pump_1_x", T0 + 1, 1.0, NORMAL)
    signals.one("pump_1_x", T0 + 2, 1.0, NORMAL)
    history = scored_reading(anomaly=True, tier=Tier.HISTORY)  # no model: ignored
    signals.one("pump_2_x", T0, 9.0, history)

    assert signals.flush(sink) == 2
    (a,) = sink.anomalies
    assert (a.series_id, a.anomaly_score, a.lower, a.upper, a.direction) == (
        "pump_1_x", 3.0, 0.5, 1.5, "above",
    )  # fmt: skip
    assert sink.recoveries == [Recovery("pump_1_x", T0 + 2)]
    assert signals.watch == {}


def scores_of(anomaly: Sequence[bool]) -> Scores:
    """Scores of readings by production models, anomalous where `anomaly` says."""
    n = len(anomaly)
    scores = ModelTable().score(np.zeros(n, np.int64), np.full(n, T0), np.zeros(n))
    scores.tier[:] = MODEL
    scores.anomaly[:] = anomaly
    scores.expected[:], scores.width[:] = 0.0, 1.0
    return scores


def test_a_batch_queues_its_anomalies_and_counts_normal_readings() -> None:
    signals, sink = IncidentSignals(resolve_after=2), Sink()
    signals.follow(["b"])

    signals.many(
        ["a", "b", "b", "c"], np.full(4, T0), np.array([5.0, 0, 0, 0]),
        scores_of([True, False, False, False]),
    )  # fmt: skip
    signals.flush(sink)

    assert [x.series_id for x in sink.anomalies] == ["a"]
    assert sink.recoveries == [Recovery("b", T0)]


def test_anomalies_sent_in_are_only_watched_they_are_logged_already() -> None:
    signals = IncidentSignals()
    signals.many(["a"], np.full(1, T0), np.array([5.0]), scores_of([True]), logged=True)

    assert signals.pending == 0
    assert signals.watch == {"a": 0}


def test_a_sensors_anomaly_is_its_top_axis_and_reads_back_as_a_view() -> None:
    signals, sink = IncidentSignals(), Sink()
    verdict = SensorVerdict(
        "press_3", 4, ("axial", "radial"), True, 2.5, np.array([1.0, 7.0]),
        np.array([1.0, np.nan]), np.array([0.5, np.nan]), np.array([1.5, np.nan]),
        np.array([0.2, 0.8]), None, "axis_correlation_break",
    )  # fmt: skip
    signals.sensor(verdict, T0)
    signals.flush(sink)

    (a,) = sink.anomalies
    assert (a.series_id, a.expected, a.algorithm) == (
        "press_3_radial",
        None,
        "multivariate",
    )
    view = AnomalyView.of(a)
    assert (view.reason, view.type) == ("axis_correlation_break", "multivariate")


def test_a_failed_write_keeps_the_signals_in_order_and_the_queue_is_bounded() -> None:
    signals, sink = IncidentSignals(max_pending=3), Sink()
    for i in range(2):
        signals.one(f"s{i}_x", T0 + i, 9.0, ANOMALY)
    sink.down = True
    with pytest.raises(DependencyUnavailable):
        signals.flush(sink)
    for i in range(2, 5):
        signals.one(f"s{i}_x", T0 + i, 9.0, ANOMALY)
    sink.down = False
    signals.flush(sink)

    assert [a.series_id for a in sink.anomalies] == ["s2_x", "s3_x", "s4_x"]


def test_nothing_is_queued_when_incidents_are_off() -> None:
    signals = IncidentSignals(enabled=False)
    signals.one("a_x", T0, 9.0, ANOMALY)
    signals.follow(["b_x"])
    assert signals.pending == 0
    assert signals.watch == {}
