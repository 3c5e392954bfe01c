"""The one scoring rule: the plot, the training metrics and serving score alike."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from atalaia.core.detectors import (
    MIN_SCALE,
    band_width,
    score_columns,
    score_reading,
    score_readings,
)

finite = st.floats(min_value=-1e100, max_value=1e100)
positive = st.floats(min_value=0.0, max_value=1e100)


class TestScoreColumns:
    def test_a_zero_scale_scores_finite_and_flags_only_what_leaves_the_centre(
        self,
    ) -> None:
        score, anomaly = score_columns(
            np.zeros(2), np.zeros(2), np.full(2, 3.0), np.array([0.0, 1.0])
        )

        assert np.isfinite(score).all()
        assert anomaly.tolist() == [False, True]

    def test_an_infinite_width_scores_zero(self) -> None:
        score, anomaly = score_readings(np.zeros(1), np.full(1, np.inf), np.ones(1))

        assert score.tolist() == [0.0]
        assert anomaly.tolist() == [False]


@given(center=finite, scale=positive, threshold=st.floats(0.1, 1e6), value=finite)
def test_one_reading_scores_as_a_column_does(
    center: float, scale: float, threshold: float, value: float
) -> None:
    width = band_width(np.array([scale]), np.array([threshold]))
    scores, _ = score_readings(np.array([center]), width, np.array([value]))

    assert score_reading(center, float(width[0]), value) == scores[0]
    assert width[0] >= MIN_SCALE * threshold
