from __future__ import annotations

from atalaia.services.mqtt_bridge import Batch


class TestBatch:
    def test_keeps_the_first_of_a_reading_sent_twice(self) -> None:
        batch = Batch(opened=0.0)
        batch.add("s_x", [(1.0, 0.5), (2.0, 0.6)])
        batch.add("s_x", [(2.0, 9.9), (3.0, 0.7)])  # (s_x, 2.0) again
        batch.add("s_y", [(2.0, 0.1)])  # same time, another series

        assert batch.series_ids == ["s_x", "s_x", "s_x", "s_y"]
        assert batch.timestamps == [1.0, 2.0, 3.0, 2.0]
        assert batch.values == [0.5, 0.6, 0.7, 0.1]
