"""Series a request misses: looked up once a minute; an outage is retried sooner,
a bug surfaces."""

from __future__ import annotations

import pytest

from atalaia.errors import DependencyUnavailable
from atalaia.services.inference import Predictor
from atalaia.services.model_table import Source

from .conftest import MODEL, FakeStore

UNKNOWN = "sensor_404_radial"


class TestMissLookup:
    def test_a_series_found_or_not_is_not_looked_up_again_for_a_while(
        self, predictor: Predictor
    ) -> None:
        predictor.reload_all()
        predictor.table.clear_model(MODEL.series_id)
        del predictor.table.index[MODEL.series_id]  # unknown to the table again

        found = predictor.look_up([MODEL.series_id, UNKNOWN])

        assert found == {MODEL.series_id: Source.DATABASE}
        assert predictor.due_lookups([UNKNOWN, "another"]) == {"another"}

    def test_nothing_is_looked_up_while_the_database_is_down_and_no_cache(
        self, predictor: Predictor, store: FakeStore
    ) -> None:
        store.failure = DependencyUnavailable("database")

        predictor.warm_load()

        assert not predictor.database_ok
        assert predictor.due_lookups([UNKNOWN]) == set()

    def test_an_outage_during_a_lookup_marks_the_database_down(
        self, predictor: Predictor, store: FakeStore
    ) -> None:
        predictor.reload_all()
        store.failure = DependencyUnavailable("database")

        assert predictor.look_up([UNKNOWN]) == {}
        assert not predictor.database_ok

    def test_a_bug_during_a_lookup_surfaces_and_is_no_outage(
        self, predictor: Predictor, store: FakeStore
    ) -> None:
        predictor.reload_all()
        store.failure = KeyError("a bug")

        with pytest.raises(KeyError):
            predictor.look_up([UNKNOWN])
        assert predictor.database_ok

    def test_a_new_table_forgets_the_misses(self, predictor: Predictor) -> None:
        predictor.reload_all()
        predictor.look_up([UNKNOWN])

        predictor.reload_all()

        assert predictor.due_lookups([UNKNOWN]) == {UNKNOWN}
