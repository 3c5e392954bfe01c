"""The data plane: the fallback chain for every caller, off the event loop when it
blocks."""

from __future__ import annotations

import threading
from collections.abc import Iterable

import anyio
import numpy as np
import pytest

from atalaia.core.explanations import Reason
from atalaia.core.serving import ServedModel
from atalaia.errors import InvalidSeriesId
from atalaia.services.inference import data_plane
from atalaia.services.model_table import REASONS, UNKNOWN_ROW, ModelTable, Source, Tier
from fixtures.serving import FakeServing

T = 1_733_011_200.0  # a reading's time


class WatchedServing(FakeServing):
    """Notes the thread each lookup runs in."""

    def __init__(self) -> None:
        table = ModelTable()
        table.set_models(
            [ServedModel("known", 1, "zscore", 0.0, 1.0, 3.0)], Source.MEMORY
        )
        elsewhere = {
            "far": (ServedModel("far", 2, "zscore", 0.0, 1.0, 3.0), Source.REDIS)
        }
        super().__init__(table, elsewhere)
        self.threads: list[threading.Thread] = []

    def look_up(self, series_ids: Iterable[str]) -> dict[str, Source]:
        self.threads.append(threading.current_thread())
        return super().look_up(series_ids)


class TestSingleReading:
    def test_a_model_fetched_on_a_miss_says_where_from(self) -> None:
        serving = WatchedServing()

        first = data_plane.score_one(serving, "far", T, 9.0)
        again = data_plane.score_one(serving, "far", T, 9.0)

        assert (first.record.version, first.fetched, first.anomaly) == (
            2, Source.REDIS, True
        )  # fmt: skip
        assert again.fetched == Source.NONE  # in memory now
        assert len(serving.threads) == 1  # looked up once

    def test_an_unknown_series_is_answered_by_the_default(self) -> None:
        scored = data_plane.score_one(WatchedServing(), "typo", T, 1e9)

        assert (scored.row, scored.known, scored.score) == (UNKNOWN_ROW, False, 0.0)
        assert scored.record.tier == Tier.DEFAULT

    def test_an_id_that_breaks_the_rule_is_never_looked_up(self) -> None:
        serving = WatchedServing()

        with pytest.raises(InvalidSeriesId):
            data_plane.score_one(serving, "no spaces", T, 1.0)
        assert not serving.looked_up


class TestBatch:
    def test_names_fetched_rows_and_the_readings_of_unknown_series(self) -> None:
        serving = WatchedServing()
        ids = ["known", "far", "typo", "far", "typo"]

        scored = data_plane.score_batch(
            serving, ids, np.full(len(ids), T), np.zeros(len(ids))
        )

        assert scored.fetched == {serving.table.index["far"]: Source.REDIS}
        assert list(scored.unknown) == ["typo", "typo"]
        model, default = Tier.MODEL, Tier.DEFAULT
        assert scored.scores.tier.tolist() == [model, model, default, model, default]

    def test_series_all_in_memory_look_nothing_up(self) -> None:
        serving = WatchedServing()

        scored = data_plane.score_batch(
            serving, ["known"] * 3, np.full(3, T), np.zeros(3)
        )

        assert not scored.fetched
        assert not scored.unknown
        assert not serving.looked_up


class TestOnTheEventLoop:
    def test_a_lookup_runs_in_a_worker_thread(self) -> None:
        serving = WatchedServing()
        loop: list[threading.Thread] = []

        async def score() -> tuple[data_plane.ScoredReading, data_plane.ScoredBatch]:
            loop.append(threading.current_thread())
            one = await data_plane.score_one_async(serving, "far", T, 0.0)
            batch = await data_plane.score_batch_async(
                serving, ["typo", "known"], np.full(2, T), np.zeros(2)
            )
            return one, batch

        one, batch = anyio.run(score)

        assert one.fetched == Source.REDIS
        assert list(batch.unknown) == ["typo"]
        assert len(serving.threads) == 2
        assert loop[0] not in serving.threads

    def test_a_reading_from_memory_stays_on_the_loop(self) -> None:
        serving = WatchedServing()

        scored = anyio.run(data_plane.score_one_async, serving, "known", T, 0.0)

        assert scored.known
        assert not serving.threads


class TestStreams:
    """Each series' stream: stale readings, and the stuck guard of `auto`'s
    models, the same whether read one at a time or in batches."""

    @staticmethod
    def guarded() -> FakeServing:
        table = ModelTable()
        table.set_models(
            [
                ServedModel("held", 1, "zscore", 0.0, 1.0, 3.0, stuck_after=2),
                ServedModel("free", 1, "zscore", 0.0, 1.0, 3.0),
            ],
            Source.MEMORY,
        )
        return FakeServing(table)

    def test_a_value_held_past_the_limit_is_stuck(self) -> None:
        serving = self.guarded()
        times = T + 60.0 * np.arange(5)

        one = [data_plane.score_one(serving, "held", t, 0.5) for t in times]
        free = [data_plane.score_one(serving, "free", t, 0.5) for t in times]

        assert [s.anomaly for s in one] == [False, False, True, True, True]
        assert {REASONS[s.reason] for s in one[2:]} == {Reason.STUCK}
        assert one[-1].score == 5 / 2
        assert not any(s.anomaly for s in free)  # no guard: a band alone

    def test_batches_count_runs_as_single_readings_do(self) -> None:
        one_by_one, batched = self.guarded(), self.guarded()
        ids = ["held", "free"] * 4
        times = np.repeat(T + 60.0 * np.arange(4), 2)
        values = np.array([0.5, 0.5, 0.5, 0.5, 0.5, 0.7, 0.5, 0.7])

        singles = [
            data_plane.score_one(one_by_one, s, t, v)
            for s, t, v in zip(ids, times, values, strict=True)
        ]
        first = data_plane.score_batch(batched, ids[:4], times[:4], values[:4])
        rest = data_plane.score_batch(batched, ids[4:][::-1], times[4:][::-1],
                                      values[4:][::-1])  # fmt: skip

        scores = [*first.scores.score.tolist(), *rest.scores.score[::-1].tolist()]
        assert scores == [s.score for s in singles]
        assert rest.scores.reason[::-1][0] == REASONS.index(Reason.STUCK)

    def test_a_reading_not_newer_than_the_newest_is_stale(self) -> None:
        serving = self.guarded()
        for t in (T, T + 60.0, T + 120.0):
            data_plane.score_one(serving, "held", t, 0.5)

        retried = data_plane.score_one(serving, "held", T + 120.0, 0.5)
        late = data_plane.score_one(serving, "held", T, 0.9)
        batch = data_plane.score_batch(
            serving, ["held", "held", "typo"], np.array([T + 60, T + 180, T]),
            np.array([0.5, 0.1, 0.0]),
        )  # fmt: skip

        assert (retried.stale, retried.anomaly) == (True, True)  # as first answered
        assert (late.stale, late.anomaly) == (True, False)
        assert batch.scores.stale is not None
        assert batch.scores.stale.tolist() == [True, False, False]
