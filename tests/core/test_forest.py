"""The isolation forest detector: its trees as arrays, its windowed features,
its threshold, its storage."""

from __future__ import annotations

import io
from functools import cache

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.ensemble import IsolationForest

from atalaia import detection
from atalaia.core.detectors.forest import DEFAULTS, Forest, fit_forest
from atalaia.core.detectors.trees import Trees, average_path_length
from atalaia.core.detectors.windows import FEATURES, window_features
from atalaia.errors import InvalidHyperparameters, InvalidSeries

FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]

DAY = 86400.0
STEP = 300.0
T = 1.7e9 + np.arange(0.0, 8 * DAY, STEP)
V = 5.0 + np.sin(2 * np.pi * T / DAY) + np.random.default_rng(3).normal(0, 0.05, T.size)
FLAT = 5.0 + np.random.default_rng(4).normal(0, 0.05, T.size)


@cache
def model() -> Forest:
    return fit_forest(T, V, {})


def later(hours: float) -> FloatArray:
    """Timestamps after the training readings, `hours` of them."""
    times: FloatArray = T[-1] + STEP * np.arange(1, int(hours * 3600 / STEP) + 1)
    return times


def normal(times: FloatArray, seed: int) -> FloatArray:
    noise = np.random.default_rng(seed).normal(0, 0.05, times.size)
    return 5.0 + np.sin(2 * np.pi * times / DAY) + noise


def flat_later(seed: int) -> FloatArray:
    """A day of readings after the training ones, like FLAT."""
    values: FloatArray = 5.0 + np.random.default_rng(seed).normal(0, 0.05, 288)
    return values


class TestTrees:
    @settings(max_examples=25, deadline=None)
    @given(
        readings=st.integers(2, 400),
        trees=st.integers(1, 12),
        samples=st.integers(2, 300),
        probes=st.integers(1, 50),
        seed=st.integers(0, 2**16),
    )
    def test_score_as_scikit_learns_score_samples_to_the_bit(
        self, readings: int, trees: int, samples: int, probes: int, seed: int
    ) -> None:
        rng = np.random.default_rng(seed)
        features = rng.standard_t(3, size=(readings, 4)).astype(np.float32)
        forest = IsolationForest(
            n_estimators=trees, max_samples=min(samples, readings), random_state=seed
        ).fit(features)
        probe = (3 * rng.standard_t(3, size=(probes, 4))).astype(np.float32)
        ours = Trees.of(forest, features).scores(probe, beyond=False)
        np.testing.assert_array_equal(ours, -forest.score_samples(probe))

    def test_beyond_the_ranges_as_a_plain_walk_counts_it(self) -> None:
        rng = np.random.default_rng(0)
        features = rng.normal(size=(500, 3)).astype(np.float32)
        forest = IsolationForest(n_estimators=20, random_state=0).fit(features)
        probe = (3 * rng.normal(size=(40, 3))).astype(np.float32)
        expected = [plain_score(forest, features, p) for p in probe]
        ours = Trees.of(forest, features).scores(probe)
        np.testing.assert_allclose(ours, expected, rtol=1e-6)

    def test_keeps_scoring_higher_beyond_the_training_range(self) -> None:
        features = np.random.default_rng(1).normal(size=(2000, 3)).astype(np.float32)
        trees = Trees.grow(features, trees=100, samples=256, seed=0)
        out = np.array([[x, 0, 0] for x in (5.0, 10.0, 100.0)], np.float32)
        beyond, inside = trees.scores(out), trees.scores(out, beyond=False)
        assert beyond[0] < beyond[1] < beyond[2]
        assert inside[0] == inside[2]  # scikit-learn's saturates
        assert beyond[1] > trees.scores(features).max()


def plain_score(
    forest: IsolationForest, features: Float32Array, reading: Float32Array
) -> float:
    """The extended score of one reading, one tree and one node at a time."""
    total = 0.0
    for estimator, drawn in zip(
        forest.estimators_, forest.estimators_samples_, strict=True
    ):
        tree, members = estimator.tree_, features[drawn]
        node, depth, length, remaining = 0, 0, 0.0, 1.0
        while tree.children_left[node] >= 0:
            depth += 1
            f, split = tree.feature[node], tree.threshold[node]
            low, high = members[:, f].min(), members[:, f].max()
            gap = max(low - reading[f], reading[f] - high, 0.0)
            isolated = gap / (high - low + gap)
            length += remaining * isolated * depth
            remaining *= 1.0 - isolated
            left = reading[f] <= split
            members = members[(members[:, f] <= split) == left]
            node = tree.children_left[node] if left else tree.children_right[node]
        leaf = depth + average_path_length(tree.n_node_samples[node])
        total += length + remaining * float(leaf)
    expected = len(forest.estimators_) * average_path_length(forest.max_samples_)
    return float(2.0 ** (-total / expected))


class TestWindowFeatures:
    def test_first_readings_take_the_typical_statistics(self) -> None:
        typical = np.arange(len(FEATURES), dtype=np.float64)
        values = np.array([1.0, 2.0, 4.0, 4.0])
        features = window_features(values, np.zeros(4), np.ones(4), 3, typical)
        assert features[0, 1:].tolist() == typical[1:].tolist()
        assert features[1, 2:].tolist() == typical[2:].tolist()
        assert features[3].tolist() == pytest.approx(
            [4.0, 0.0, 10 / 3, np.log(np.std([2.0, 4.0, 4.0])), np.log(2.0)]
        )

    def test_a_stuck_window_lies_far_below_a_noisy_one(self) -> None:
        values = np.array([1.0, 1.0, 1.0])
        features = window_features(values, np.zeros(3), np.ones(3), 3, np.zeros(5))
        assert features[2, 3] == features[2, 4] == pytest.approx(np.log(1e-6))


class TestForest:
    @settings(max_examples=30, deadline=None)
    @given(cut=st.integers(1, 150), seed=st.integers(0, 2**16))
    def test_appending_readings_never_changes_earlier_scores(
        self, cut: int, seed: int
    ) -> None:
        times = later(12.5)
        values = normal(times, seed)
        values[cut // 2] += 1.0  # something to score
        whole = model().score(times, values)
        head = model().score(times[:cut], values[:cut])
        np.testing.assert_array_equal(head.score, whole.score[:cut])
        np.testing.assert_array_equal(head.expected, whole.expected[:cut])

    def test_readings_like_the_training_ones_are_rarely_anomalies(self) -> None:
        times = later(24 * 7)
        assert (model().score(times, normal(times, 1)).score > 1).mean() < 1e-3

    # A model allowed one false alarm in 1,000 readings: at the default one in
    # 10,000, a model of a few days' readings gets a conservative threshold
    # (its tail extrapolated a hundredfold), and a stuck stretch of a series
    # whose window statistics alone change scores about 1.
    RATE = 1e-3

    def test_detects_a_stuck_stretch_a_band_misses(self) -> None:
        values = flat_later(2)
        values[100:136] = values[99]  # three hours
        self.assert_forest_alone_flags(values, slice(100, 136))

    def test_detects_a_burst_of_noise_a_band_misses(self) -> None:
        values = flat_later(3)
        burst = 3 * (values[100:124] - 5.0)
        values[100:124] = 5.0 + np.clip(burst, -0.175, 0.175)  # inside 3.5 sigmas
        self.assert_forest_alone_flags(values, slice(100, 124))

    def assert_forest_alone_flags(self, values: FloatArray, event: slice) -> None:
        times = later(values.size * STEP / 3600)
        band = detection.fit("seasonal", T, FLAT).score(times, values)
        forest = detection.fit(
            "isolation_forest", T, FLAT, false_alarm_rate=self.RATE
        ).score(times, values)
        assert not band.anomaly.any()
        assert forest.anomaly[event].any()
        # The trees' call (the forest's band is narrower than seasonal's: a
        # reading of the burst may lie outside it too).
        assert "isolated_pattern" in set(forest.reason[event][forest.anomaly[event]])
        outside = np.ones(times.size, np.bool_)
        outside[event.start : event.stop + int(DEFAULTS["window"])] = False
        assert forest.anomaly[outside].mean() < 0.01

    def test_spikes_among_the_training_readings_hide_no_later_ones(self) -> None:
        spiked = FLAT.copy()
        spiked[100::400] += 0.4  # 8 sigmas, six times
        values = flat_later(5)
        values[[60, 150]] += 0.4
        result = fit_forest(T, spiked, {}).score(later(24), values)
        assert (result.score[[60, 150]] > 1).all()

    def test_round_trips_through_bytes_without_pickle(self) -> None:
        blob = model().to_bytes()
        with np.load(io.BytesIO(blob), allow_pickle=False) as data:
            assert all(data[name].dtype != object for name in data.files)
        loaded = Forest.from_bytes(blob)
        times = later(6)
        values = normal(times, 4)
        again, first = loaded.score(times, values), model().score(times, values)
        np.testing.assert_array_equal(again.score, first.score)
        np.testing.assert_array_equal(again.half_width, first.half_width)
        assert loaded.hyperparameters == model().hyperparameters
        assert loaded.nbytes == model().nbytes

    def test_refuses_bytes_it_did_not_write(self) -> None:
        with pytest.raises(ValueError, match="not an isolation_forest model"):
            Forest.from_bytes(b"not a model")
        out = io.BytesIO()
        np.savez(out, format=np.array("atalaia.isolation_forest.1"))
        with pytest.raises(ValueError, match="not an isolation_forest model"):
            Forest.from_bytes(out.getvalue())

    def test_nbytes_counts_what_it_holds(self) -> None:
        small = fit_forest(T, V, {"trees": 50})
        large = fit_forest(T, V, {"trees": 100})
        trees = small.trees
        assert small.nbytes > trees.nbytes > 0
        assert small.nbytes - trees.nbytes < 2_000  # the band and the medians
        assert large.nbytes / small.nbytes == pytest.approx(2, rel=0.1)
        assert abs(len(small.to_bytes()) - small.nbytes) < 10_000  # npz headers


class TestValidation:
    @pytest.mark.parametrize(
        ("given", "match"),
        [
            ({"window": 2.5}, "whole number"),
            ({"trees": 5000}, "whole number in 1 … 1000"),
            ({"false_alarm_rate": 1.0}, "below 1"),
            ({"false_alarm_rate": 0}, "> 0"),
            ({"depth": 3}, "known: false_alarm_rate, period_s, phases, samples"),
        ],
    )
    def test_refuses_bad_hyperparameters(
        self, given: dict[str, float], match: str
    ) -> None:
        with pytest.raises(InvalidHyperparameters, match=match):
            fit_forest(T, V, given)

    def test_needs_enough_readings_that_vary(self) -> None:
        with pytest.raises(InvalidSeries, match="at least 68 readings") as short:
            fit_forest(T[:60], V[:60], {})
        assert short.value.rule == "min_points"
        with pytest.raises(InvalidSeries, match="vary") as flat:
            fit_forest(T, np.ones(T.size), {})
        assert flat.value.rule == "non_constant"
