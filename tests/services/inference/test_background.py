"""The feed and counts threads: an outage marks the database down, a bug does not."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from atalaia.core.serving import ServedModel
from atalaia.errors import ConcurrentChange, DependencyUnavailable
from atalaia.services.inference import Predictor
from fixtures.api import wait_for

from .conftest import MODEL, FakeStore, LogRecorder


def until(condition: Callable[[], bool]) -> None:
    wait_for(lambda: True if condition() else None)


@contextmanager
def following(
    predictor: Predictor, store: FakeStore, *, failing: Exception
) -> Iterator[None]:
    """The predictor loaded and following, its store failing with `failing`."""
    predictor.warm_load()
    store.failure = failing
    predictor.start_following()
    try:
        yield
    finally:
        predictor.stop()


def _served_version(predictor: Predictor) -> int | None:
    model = predictor.table.model_of(MODEL.series_id)
    return model.version if model else None


class TestFeedThread:
    def test_a_bug_is_logged_with_its_traceback_and_the_feed_goes_on(
        self, predictor: Predictor, store: FakeStore, logs: LogRecorder
    ) -> None:
        with following(predictor, store, failing=KeyError("a bug")):
            until(lambda: "inference.feed_crashed" in logs.events("error"))
            assert predictor.database_ok  # a bug is no outage
            store.failure = None
            store.models = [ServedModel(MODEL.series_id, 2, "zscore", 0.0, 1.0, 3.0)]
            store.changed = {MODEL.series_id}
            until(lambda: _served_version(predictor) == 2)

        _, _, fields = next(r for r in logs.records if r[1] == "inference.feed_crashed")
        assert fields["exc_info"] is True
        assert "inference.database_down" not in logs.events()

    def test_an_unavailable_database_is_marked_down_until_it_answers(
        self, predictor: Predictor, store: FakeStore, logs: LogRecorder
    ) -> None:
        with following(predictor, store, failing=DependencyUnavailable("database")):
            until(lambda: not predictor.database_ok)
            store.failure = None
            until(lambda: predictor.database_ok)

        assert logs.events("error") == []
        assert logs.events("warning") == ["inference.database_down"]
        assert logs.events("info")[-1] == "inference.database_back"


class TestCountsThread:
    @pytest.mark.parametrize(
        "failure", [DependencyUnavailable("database"), ConcurrentChange("race")]
    )
    def test_counts_a_flush_could_not_write_wait_for_the_next(
        self, predictor: Predictor, store: FakeStore, failure: Exception
    ) -> None:
        predictor.warm_load()
        predictor.tally.add_one(predictor.table, 1, False, 1.0)
        store.failure = failure

        with pytest.raises(type(failure)):
            predictor.tally.flush(store)
        store.failure = None
        predictor.stop()  # the final flush

        assert [r.series_ids for r in store.rollups] == [[MODEL.series_id]]

    def test_a_bug_in_a_flush_is_logged_and_the_thread_goes_on(
        self, store: FakeStore, logs: LogRecorder, predictor: Predictor
    ) -> None:
        predictor.threads.flush_s = 0.01
        with following(predictor, store, failing=RuntimeError("a bug")):
            predictor.tally.add_one(predictor.table, 1, False, 1.0)
            until(lambda: "inference.counts_crashed" in logs.events("error"))
            store.failure = None
            predictor.tally.add_one(predictor.table, 1, False, 1.0)
            until(lambda: bool(store.rollups))
            assert predictor.database_ok
