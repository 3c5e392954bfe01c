"""The table's generation: a new table numbers its rows afresh, a growing one not."""

from __future__ import annotations

import numpy as np

from atalaia.core.serving import ServedModel
from atalaia.services.model_table import ModelTable, Source


class TestGeneration:
    def test_each_new_table_is_of_a_later_generation(self) -> None:
        first, second = ModelTable(), ModelTable()

        assert second.generation > first.generation

    def test_a_table_keeps_its_generation_as_series_arrive(self) -> None:
        table = ModelTable()
        generation = table.generation

        table.set_models([ServedModel("a", 1, "zscore", 0, 1, 3)], Source.MEMORY)
        table.set_history(["b"], np.array([1.0]), np.array([0.5]))

        assert table.generation == generation
        assert table.ids == ["", "a", "b"]
