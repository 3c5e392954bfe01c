"""A rollout's readings between production and its candidate, in the data plane."""

from __future__ import annotations

import numpy as np
import pytest

from atalaia.core.rollout import COUNTERS, draws, figures_of, series_key
from atalaia.core.serving import ServedModel, ServedRollout
from atalaia.services.inference import data_plane
from atalaia.services.inference.candidates import CANARY, CHALLENGER, PRODUCTION
from atalaia.services.model_table import ModelTable, Source
from fixtures.serving import FakeServing

T = 1_733_011_200.0
SERIES = [f"sensor_{i:03d}_radial" for i in range(20)]


def _serving(strategy: str = "canary", share: float = 0.3) -> FakeServing:
    """Production (a band 0 ± 3) for every series; the first ten in a rollout
    of a wider band (0 ± 6): readings at 4 are anomalies to production only."""
    table = ModelTable()
    table.set_models(
        [ServedModel(s, 1, "zscore", 0.0, 1.0, 3.0) for s in SERIES], Source.MEMORY
    )
    serving = FakeServing(table)
    serving.candidates.replace_all(
        [
            ServedRollout(
                100 + i,
                strategy,
                share,
                100.0,
                ServedModel(s, 2, "zscore", 0.0, 2.0, 3.0),
            )
            for i, s in enumerate(SERIES[:10])
        ]
    )
    return serving


def _readings(n: int = 2_000) -> tuple[list[str], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    ids = [SERIES[i] for i in rng.integers(0, len(SERIES), n).tolist()]
    timestamps = T + np.arange(n, dtype=np.float64)
    return ids, timestamps, np.full(n, 4.0)


def _counts(serving: FakeServing) -> dict[int, dict[str, float]]:
    drained = serving.candidates.drain()
    return {
        rid: dict(zip(COUNTERS, row, strict=True))
        for rid, row in zip(drained.rollout_ids, drained.counts.tolist(), strict=True)
    }


class TestCanary:
    def test_the_candidate_answers_the_readings_whose_draw_is_below_its_share(
        self,
    ) -> None:
        serving = _serving(share=0.3)
        ids, timestamps, values = _readings()

        scores = data_plane.score_batch(serving, ids, timestamps, values).scores

        keys = np.array([series_key(s) for s in ids], np.uint64)
        in_rollout = np.isin(ids, SERIES[:10])
        routed = in_rollout & (draws(keys, timestamps) < 0.3)
        assert scores.role is not None
        assert (scores.role == CANARY).tolist() == routed.tolist()
        assert set(scores.version[routed].tolist()) == {2}
        assert set(scores.version[~routed].tolist()) == {1}
        assert not scores.anomaly[routed].any()  # 4 is inside the wider band
        assert scores.anomaly[~routed].all()

    def test_one_at_a_time_is_the_batch(self) -> None:
        batch, single = _serving(), _serving()
        ids, timestamps, values = _readings(500)

        scores = data_plane.score_batch(batch, ids, timestamps, values).scores
        one = [
            data_plane.score_one(single, s, t, v)
            for s, t, v in zip(ids, timestamps.tolist(), values.tolist(), strict=True)
        ]

        assert scores.role is not None
        assert [r.role for r in one] == scores.role.tolist()
        assert [r.record.version for r in one] == scores.version.tolist()
        assert [r.anomaly for r in one] == scores.anomaly.tolist()
        by_batch, by_one = _counts(batch), _counts(single)
        for found in (by_batch, by_one):
            for c in found.values():
                c.pop("candidate_slow")
        assert by_batch.keys() == by_one.keys()
        for rid, counts in by_batch.items():
            assert counts == pytest.approx(by_one[rid]), rid

    def test_each_rollout_counts_its_answers_and_production_s(self) -> None:
        serving = _serving(share=0.3)
        ids, timestamps, values = _readings()
        data_plane.score_batch(serving, ids, timestamps, values)

        counts = _counts(serving)

        assert set(counts) == set(range(100, 110))
        total = sum(c["candidate_predictions"] + c["production_predictions"]
                    for c in counts.values())  # fmt: skip
        assert total == sum(s in SERIES[:10] for s in ids)
        figures = figures_of(counts[100])
        assert figures.candidate.anomalies == 0
        assert figures.production.anomaly_rate == 1.0
        assert figures.production_paired.anomaly_rate == 1.0  # the same readings
        assert figures.pairs.agreement == 0.0
        assert _counts(serving) == {}  # drained

    def test_counts_of_routes_replaced_meanwhile_are_kept(self) -> None:
        serving = _serving()
        ids, timestamps, values = _readings(200)
        data_plane.score_batch(serving, ids, timestamps, values)

        serving.candidates.update([SERIES[0]], [])  # its rollout ended

        counts = _counts(serving)
        assert 100 in counts
        assert serving.candidates.routes.splits.keys() == set(SERIES[1:10])


class TestShadowAndAb:
    def test_a_shadow_scores_every_reading_and_answers_none(self) -> None:
        serving = _serving("shadow", share=0.0)
        ids, timestamps, values = _readings()

        scores = data_plane.score_batch(serving, ids, timestamps, values).scores

        assert scores.role is None or not scores.role.any()
        counts = _counts(serving)
        scored = sum(c["candidate_predictions"] for c in counts.values())
        assert scored == sum(s in SERIES[:10] for s in ids)
        assert all(c["production_predictions"] == c["candidate_predictions"]
                   for c in counts.values())  # fmt: skip

    def test_an_ab_test_s_answers_name_the_challenger(self) -> None:
        serving = _serving("ab", share=0.5)
        ids, timestamps, values = _readings()

        one = data_plane.score_one(serving, SERIES[0], T, 4.0)
        scores = data_plane.score_batch(serving, ids, timestamps, values).scores

        assert scores.role is not None
        assert set(scores.role.tolist()) == {PRODUCTION, CHALLENGER}
        assert one.role in (PRODUCTION, CHALLENGER)


def test_a_series_new_to_production_has_no_candidate() -> None:
    serving = _serving()
    serving.table.set_models([ServedModel("new_one", 1, "zscore", 0.0, 1.0, 3.0)],
                             Source.MEMORY)  # fmt: skip

    scores = data_plane.score_batch(
        serving, ["new_one", SERIES[0]], np.array([T, T]), np.array([4.0, 4.0])
    ).scores

    assert scores.version[0] == 1
    assert scores.role is None or scores.role[0] == PRODUCTION


def test_a_full_load_finding_the_same_rollouts_keeps_their_routes() -> None:
    serving = _serving()
    routes = serving.candidates.routes
    same = [
        ServedRollout(
            100 + i, "canary", 0.3, 100.0, ServedModel(s, 2, "zscore", 0.0, 2.0, 3.0)
        )
        for i, s in enumerate(SERIES[:10])
    ]

    serving.candidates.replace_all(same)
    assert serving.candidates.routes is routes

    serving.candidates.replace_all(same[:5])
    assert serving.candidates.routes.splits.keys() == set(SERIES[:5])
