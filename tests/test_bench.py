"""Every benchmark runs once at a tiny size, so that none rots (no timing asserted)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bench.__main__ import app
from bench.corpus import KINDS, PERIODS, STEPS, Case, make_corpus, offset
from bench.nab import LOW_FN, STANDARD, NabTally, Profile, edges
from typer.testing import CliRunner

SMOKE = [
    ["train-accept", "--requests", "2", "--points", "10000"],
    ["promote-visible", "--series", "2"],
    ["warm-load", "--models", "300"],
    ["warm-load", "--models", "300", "--algorithm", "seasonal"],
    ["train-jobs", "--series", "2"],
    ["predict-single", "--models", "300", "--duration", "1", "--runs", "1"],
    ["predict-batch", "--models", "300", "--readings", "1000"]
    + ["--series-per-request", "100", "--duration", "1", "--runs", "1"],
    ["predict-seasonal", "--models", "300", "--readings", "1000"]
    + ["--series-per-request", "100", "--duration", "1", "--runs", "1"],
    ["predict-streaming", "--models", "300", "--readings", "50", "--duration", "1"]
    + ["--runs", "1"],
    ["predict-forest", "--models", "20", "--forests", "1", "--points", "3000"]
    + ["--readings", "100", "--series-per-request", "10", "--duration", "1"]
    + ["--runs", "1"],
    ["streaming", "--models", "300", "--batch", "50", "--single", "200"]
    + ["--runs", "1"],
    ["incidents", "--incidents", "400", "--sensors", "500", "--requests", "5"],
    ["canary-cost", "--models", "300", "--duration", "1", "--runs", "1"],
    ["groups-cost", "--models", "300", "--duration", "1", "--runs", "1"],
    ["quality-report", "--runs", "1", "--jobs", "1"],
    ["upload", "--readings", "5000", "--series", "10"],
    ["training-snapshot", "--series", "20", "--points", "500", "--runs", "1"],
    ["scale", "--sizes", "20k,40k", "--series", "10", "--step-s", "600"]
    + ["--samples", "3"],
    # no peer: their virtualenvs take minutes to make (see bench/peers_bench.py)
    ["peers", "--models", "300", "--peers", "none", "--runs", "1", "--duration", "1"],
]


@pytest.mark.parametrize("args", SMOKE, ids=[a[0] for a in SMOKE])
def test_benchmark_runs_and_reports(args: list[str]) -> None:
    result = CliRunner().invoke(app, [*args, "--no-record"])

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{args[0]}: ")


@pytest.mark.usefixtures("mosquitto")
def test_mqtt_ingest_runs_and_reports() -> None:
    args = ["mqtt-ingest", "--readings", "2000", "--per-message", "10"]
    args += ["--sensors", "10", "--publishers", "1", "--no-record"]
    result = CliRunner().invoke(app, args)

    assert result.exit_code == 0, result.output
    assert "mqtt-ingest: readings 2000, lost 0," in result.output


@pytest.mark.postgres
@pytest.mark.parametrize("algorithm", ["zscore", "seasonal"])
def test_fleet_retrain_runs_and_reports(own_postgres: str, algorithm: str) -> None:
    args = ["fleet-retrain", "--series", "20", "--points", "10000"]
    args += ["--algorithm", algorithm, "--url", own_postgres, "--no-record"]
    result = CliRunner().invoke(app, args)

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("fleet-retrain: ")
    assert "registered 20, jobs_succeeded 20," in result.output


def test_quality_scores_a_labelled_folder(tmp_path: Path) -> None:
    """One SKAB-shaped experiment: 400 normal rows, then a shift the labels mark."""
    rng = np.random.default_rng(0)
    values = rng.normal(0, 1, (600, 2))
    labels = np.zeros(600)
    values[500:, 1] += 50.0
    labels[500:] = 1
    (tmp_path / "valve1").mkdir()
    lines = ["datetime;A;B;anomaly;changepoint"] + [
        f"2020-03-09 10:{i // 60:02d}:{i % 60:02d};{a};{b};{y};{int(i == 500)}"
        for i, ((a, b), y) in enumerate(zip(values, labels, strict=True))
    ]
    (tmp_path / "valve1" / "1.csv").write_text("\n".join(lines) + "\n")

    families = "zscore,seasonal,multivariate"  # the slower ones have their tests
    result = CliRunner().invoke(
        app,
        ["quality", "--data", str(tmp_path), "--algorithms", families, "--no-record"],
    )

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("quality: files 1, flag_all_f1 0.667, ")
    cells = result.stdout.strip().split(", ")
    assert "zscore_valve1_f1 1" in cells
    assert "zscore_nab 100" in cells  # its flags start at the changepoint
    assert "multivariate_valve1_f1 1" in cells  # both channels as one sensor
    assert "valve2" not in result.output  # no experiment of that kind
    assert "corpus_cases 30" in cells
    assert "corpus_drift_detectable_30 0.417" in cells  # 10 s ramps are slow
    assert "demo_readings 3600" in cells
    for kind in KINDS:
        assert any(c.startswith(f"seasonal_{kind}_recall ") for c in cells)
    assert not any(c.startswith("robust_") for c in cells)


@pytest.fixture(scope="module")
def corpus() -> list[Case]:
    return make_corpus(seed=0)


class TestCorpus:
    def test_is_the_same_for_a_seed_and_differs_between_seeds(
        self, corpus: list[Case]
    ) -> None:
        again, other = make_corpus(seed=0), make_corpus(seed=1)

        for a, b in zip(corpus, again, strict=True):
            assert (a.name, a.train, a.events) == (b.name, b.train, b.events)
            assert np.array_equal(a.timestamps, b.timestamps)
            assert np.array_equal(a.values, b.values)
        assert not np.array_equal(corpus[0].values[:100], other[0].values[:100])

    def test_holds_every_kind_period_and_sampling_step(
        self, corpus: list[Case]
    ) -> None:
        kinds = {e.kind for case in corpus for e in case.events}
        names = {case.name for case in corpus}

        assert kinds == set(KINDS)
        for period in (*PERIODS, "axes"):
            for step in STEPS:
                assert {f"{period}-{step}-low", f"{period}-{step}-high"} <= names
        for case in corpus:
            assert case.values.shape == (
                case.timestamps.size,
                3 if "axes" in case.name else 1,
            )
            assert set(np.diff(case.timestamps)) == {STEPS[case.name.split("-")[1]]}

    def test_changes_readings_only_where_its_labels_say(
        self, corpus: list[Case]
    ) -> None:
        for case in corpus:
            labelled = np.zeros(case.values.shape, np.bool_)
            for e in case.events:
                assert case.train < e.start < e.stop <= case.timestamps.size
                changed = case.values[e.start : e.stop] != case.clean[e.start : e.stop]
                assert changed[:, e.axis].any(), (case.name, e)
                labelled[e.start : e.stop, e.axis] = True

            assert not (case.values != case.clean)[~labelled].any(), case.name

    def test_injects_the_stated_sizes(self, corpus: list[Case]) -> None:
        for case in corpus:
            for e in case.events:
                sigma = case.sigma[e.axis]
                added = (case.values - case.clean)[e.start : e.stop, e.axis] / sigma
                if e.kind == "spike":
                    assert e.stop - e.start == 1
                    assert 6 <= abs(e.magnitude) <= 10
                    assert added == pytest.approx([e.magnitude])
                if e.kind == "level_shift":
                    assert 4 <= abs(e.magnitude) <= 6
                    assert added == pytest.approx(np.full(added.size, e.magnitude))
                if e.kind == "drift":
                    assert added[-1] == pytest.approx(e.magnitude)
                if e.kind in ("spike", "level_shift", "drift"):
                    assert added == pytest.approx(offset(e))
                if e.kind == "stuck":
                    stuck = case.values[e.start - 1 : e.stop, e.axis]
                    assert (stuck == stuck[0]).all()
                if e.kind == "axis_break":
                    train = case.clean[: case.train, e.axis]
                    broken = case.values[e.start : e.stop, e.axis]
                    assert train.min() <= broken.min() <= broken.max() <= train.max()

    def test_normal_readings_separate_the_events(self, corpus: list[Case]) -> None:
        for case in corpus:
            step = case.timestamps[1] - case.timestamps[0]
            bounds = [(case.train, case.train)]
            bounds += [(e.start, e.stop) for e in case.events]
            bounds += [(case.timestamps.size, case.timestamps.size)]
            for (_, stop), (start, _) in zip(bounds, bounds[1:], strict=False):
                assert (start - stop) * step >= 3 * 3600 - step


class TestNabScore:
    """SKAB's NAB scoring, a 60 s window to the right of each changepoint."""

    @staticmethod
    def score(
        changepoints: list[float], detections: list[float], profile: Profile = STANDARD
    ) -> float:
        tally = NabTally(profile)
        tally.add(np.array(changepoints), np.array(detections))
        return tally.score()

    def test_a_perfect_detector_scores_100_and_a_silent_one_0(self) -> None:
        assert self.score([100.0, 500.0], [100.0, 500.0]) == pytest.approx(100.0)
        assert self.score([100.0, 500.0], []) == pytest.approx(0.0)
        assert self.score([100.0], [], profile=LOW_FN) == pytest.approx(0.0)

    def test_a_detection_is_worth_less_the_later_it_comes(self) -> None:
        # Half-way: A_fp + (A_tp − A_fp)/2 × (1 − tanh(x)/tanh(π/2)) at
        # x = −π/2 + 500π/999 = 0.001572, tanh(x)/tanh(π/2) = 0.001714:
        # −0.11 + 0.555 × 0.998286 = 0.444049; 100 × (0.444049 + 1) / 2.
        assert self.score([100.0], [130.0]) == pytest.approx(72.2024, abs=1e-4)
        # At the window's end a true positive is worth A_fp: 100 × 0.89 / 2.
        assert self.score([100.0], [160.0]) == pytest.approx(44.5)
        # After it, it is a false positive and the changepoint is missed.
        assert self.score([100.0], [161.0]) == pytest.approx(100 * -0.11 / 2)

    def test_only_the_first_detection_in_a_window_counts(self) -> None:
        assert self.score([100.0], [100.0, 110.0, 150.0]) == pytest.approx(100.0)

    def test_a_false_positive_costs_a_fp(self) -> None:
        assert self.score([100.0], [100.0, 1000.0]) == pytest.approx(94.5)
        assert self.score([100.0], [50.0, 100.0]) == pytest.approx(94.5)

    def test_an_overlapping_window_starts_where_the_one_before_ends(self) -> None:
        # Windows [100, 160] and [160, 190]: 135 is the first window's second.
        assert self.score([100.0, 130.0], [100.0, 160.0]) == pytest.approx(100.0)
        assert self.score([100.0, 130.0], [100.0, 135.0]) == pytest.approx(50.0)

    def test_files_add_up(self) -> None:
        tally = NabTally(STANDARD)
        tally.add(np.array([100.0]), np.array([100.0]))
        tally.add(np.array([100.0]), np.array([], dtype=np.float64))

        assert tally.score() == pytest.approx(50.0)

    def test_a_run_of_flags_changes_at_its_first_row_and_after_its_last(
        self,
    ) -> None:
        flags = np.array([False, True, True, False, False, True])

        assert np.flatnonzero(edges(flags)).tolist() == [1, 3, 5]
        assert np.flatnonzero(edges(np.array([True, True, False]))).tolist() == [0, 2]
