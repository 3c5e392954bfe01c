"""Detection quality on labelled data, for every detector of the library
(`atalaia.detection.ALGORITHMS`), each with its default hyperparameters:

- SKAB's protocol (bench/skab.py): F1, FAR, MAR overall and per kind of
  anomaly, and the changepoints' NAB score;
- the synthetic corpus (bench/corpus.py), fitted on each case's training part
  and scored on the rest: recall per kind of event and false alarms per 10,000
  normal readings (a reading is a row: the three values of a three-axis case
  at one time, scored whole by a sensor family, else flagged when any axis
  is). An event is detected when any reading from its first to GRACE readings
  after its last is flagged (a spike is one reading; a detector on
  differences or windows flags a little later); the readings outside every
  such span are the normal ones. For level shifts and drifts, the delay
  (readings from an event's start to its first flag, over the events
  detected): median and the share within PROMPT readings; and per event
  detected, its alarms: the alarm onsets (a flagged reading whose previous
  reading was not) within its detecting span, the mean per kind and over
  every kind. Beside them, detector-free, the share of drifts a detector
  could flag within PROMPT readings at all (`corpus_drift_detectable_30`):
  those whose first PROMPT readings hold enough of the ramp for a matched
  filter that knows its start and slope, the best test there is, to reach
  DETECTABLE_SNR noise sigmas (a slow ramp sampled every 10 s is still a
  fraction of a sigma after 30 readings);
- the demo fleet of `atalaia demo`'s defaults (20 sensors × 3 axes, 7 days of
  readings a minute apart, seed 7; its axes are independent series, so every
  family, a sensor family too, fits each alone), two ways. The demo's: each
  series fitted on its whole history (its injected anomalies included, as the
  demo trains), then the hour of fresh readings the demo streams
  (`atalaia.synthetic.stream`: spikes, one sensor's level shift) scored
  against their truth, precision and recall per reading. The history's: each
  series fitted on its readings outside every injected anomaly (spikes, level
  shifts, drifts; they lie anywhere in the first 85 % of the week, so no
  stretch of it is both clean and two days long), then its whole history
  scored (the normal readings are those it was fitted on): precision per
  reading, recall per injected anomaly (a drift ramps up from nothing, so its
  first readings cannot be told from normal ones).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from atalaia import detection
from atalaia.synthetic import SyntheticSeries, make_fleet, stream
from bench._verdicts import BoolArray, Tally, flag_rows
from bench.corpus import KINDS, Case, make_corpus, offset
from bench.skab import SKAB, skab_figures

GRACE = 5  # readings after an event that still count as detecting it
PROMPT = 30  # readings: a level shift or drift flagged within them is prompt
TIMED: tuple[str, ...] = ("level_shift", "drift")  # kinds whose delay counts
DETECTABLE_SNR = 4.0  # a matched filter's reach at a ~1 in 30,000 false alarm
CORPUS_SEED = 0
# `atalaia demo`'s defaults.
DEMO_SENSORS, DEMO_DAYS, DEMO_MINUTES, DEMO_SEED = 20, 7, 60, 7


def quality(
    root: Path = SKAB, algorithms: Sequence[str] = detection.ALGORITHMS
) -> dict[str, float | int]:
    """Every figure of `algorithms`: SKAB's under `root`, the corpus', the demo
    fleet's."""
    figures = skab_figures(root, algorithms)
    figures |= corpus_figures(make_corpus(CORPUS_SEED), algorithms)
    figures |= demo_figures(algorithms)
    return figures


def corpus_figures(
    cases: Sequence[Case], algorithms: Sequence[str]
) -> dict[str, float | int]:
    """Recall per kind of event and false alarms per 10,000 normal readings."""
    spans = [_spans(case) for case in cases]
    figures: dict[str, float | int] = {
        "corpus_cases": len(cases),
        "corpus_events": sum(len(case.events) for case in cases),
        "corpus_normal": int(sum((~s).sum() for s in spans)),
        f"corpus_drift_detectable_{PROMPT}": _detectable(cases, "drift"),
    }
    for algorithm in algorithms:
        found: Counter[str] = Counter()
        events: Counter[str] = Counter()
        delays: dict[str, list[int]] = {kind: [] for kind in KINDS}
        onsets: dict[str, list[int]] = {kind: [] for kind in KINDS}
        alarms = 0
        for case, span in zip(cases, spans, strict=True):
            flagged = flag_rows(algorithm, case.timestamps, case.values, case.train)
            alarms += int((flagged & ~span).sum())
            onset = flagged & ~np.concatenate(([False], flagged[:-1]))
            for e in case.events:
                events[e.kind] += 1
                hits = np.flatnonzero(flagged[_detecting(case, e.start, e.stop)])
                if hits.size:
                    found[e.kind] += 1
                    delays[e.kind].append(int(hits[0]))
                    onsets[e.kind].append(
                        int(onset[_detecting(case, e.start, e.stop)].sum())
                    )
        for kind in KINDS:
            figures[f"{algorithm}_{kind}_recall"] = round(found[kind] / events[kind], 3)
        normal = max(int(figures["corpus_normal"]), 1)
        figures[f"{algorithm}_fa_per_10k"] = round(1e4 * alarms / normal, 2)
        figures |= _promptness(algorithm, delays, onsets)
    return figures


def _promptness(
    algorithm: str, delays: dict[str, list[int]], onsets: dict[str, list[int]]
) -> dict[str, float | int]:
    """The delays and alarms per event of the detected events (NaN: none)."""
    figures: dict[str, float | int] = {}
    for kind in TIMED:
        delay = np.array(delays[kind], np.float64)
        figures[f"{algorithm}_{kind}_delay_median"] = (
            float(np.median(delay)) if delay.size else float("nan")
        )
        figures[f"{algorithm}_{kind}_within_{PROMPT}"] = round(
            float((delay <= PROMPT).mean()) if delay.size else 0.0, 3
        )
        figures[f"{algorithm}_{kind}_alarms"] = _mean(onsets[kind])
    figures[f"{algorithm}_alarms_per_event"] = _mean(
        [n for kind in KINDS for n in onsets[kind]]
    )
    return figures


def _detectable(cases: Sequence[Case], kind: str) -> float:
    """The share of `kind` events whose offset over their first PROMPT readings
    (in noise sigmas; `corpus.offset`) a matched filter tells from the noise
    at DETECTABLE_SNR."""
    reach = [
        float(np.linalg.norm(offset(e)[:PROMPT])) >= DETECTABLE_SNR
        for case in cases
        for e in case.events
        if e.kind == kind
    ]
    return round(float(np.mean(reach)), 3) if reach else float("nan")


def _mean(counts: list[int]) -> float:
    return round(float(np.mean(counts)), 2) if counts else float("nan")


def _detecting(case: Case, start: int, stop: int) -> slice:
    """The test readings that detect an event over readings [start, stop)."""
    end = min(stop + GRACE, case.timestamps.size)
    return slice(start - case.train, end - case.train)


def _spans(case: Case) -> BoolArray:
    """The test readings within some event's detecting span."""
    inside = np.zeros(case.timestamps.size - case.train, np.bool_)
    for e in case.events:
        inside[_detecting(case, e.start, e.stop)] = True
    return inside


def demo_figures(algorithms: Sequence[str]) -> dict[str, float | int]:
    """Precision and recall on the demo's stream and on the fleet's history."""
    fleet = make_fleet(sensors=DEMO_SENSORS, days=DEMO_DAYS, seed=DEMO_SEED)
    ids, timestamps, values, truth = stream(fleet, DEMO_MINUTES, DEMO_SEED)
    where = {s.series_id: i for i, s in enumerate(fleet)}
    series = np.array([where[i] for i in ids])
    events = sum(len(s.injected) for s in fleet)
    figures: dict[str, float | int] = {
        "demo_readings": int(truth.size),
        "demo_anomalies": int(truth.sum()),
        "demo_history_events": events,
    }
    for algorithm in algorithms:
        flagged = np.zeros(truth.size, np.bool_)
        for i, s in enumerate(fleet):
            model = detection.fit(algorithm, s.timestamps, s.values)
            mine = series == i
            flagged[mine] = model.score(timestamps[mine], values[mine]).anomaly
        now = Tally()
        now.add(flagged, truth)
        history, found = _score_history(algorithm, fleet)
        figures[f"{algorithm}_demo_precision"] = round(now.precision(), 3)
        figures[f"{algorithm}_demo_recall"] = round(now.recall(), 3)
        figures[f"{algorithm}_demo_history_precision"] = round(history.precision(), 3)
        figures[f"{algorithm}_demo_history_recall"] = round(found / max(events, 1), 3)
    return figures


def _score_history(
    algorithm: str, fleet: Sequence[SyntheticSeries]
) -> tuple[Tally, int]:
    """Each series fitted on its readings outside its injected anomalies, then
    its whole history scored: the readings' tally, the anomalies detected."""
    tally, found = Tally(), 0
    for s in fleet:
        injected = np.zeros(s.values.size, np.bool_)
        for e in s.injected:
            injected[e.start_index : e.end_index] = True
        clean = ~injected
        model = detection.fit(algorithm, s.timestamps[clean], s.values[clean])
        flagged = model.score(s.timestamps, s.values).anomaly
        tally.add(flagged, injected)
        found += sum(
            bool(flagged[e.start_index : e.end_index].any()) for e in s.injected
        )
    return tally, found
