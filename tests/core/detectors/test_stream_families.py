"""A streaming version's params and state, packed and read back as columns."""

from __future__ import annotations

import numpy as np
import pytest

from atalaia import detection
from atalaia.core.detectors.stream_families import STREAM_FAMILIES
from fixtures.streams import history


@pytest.mark.parametrize("name", sorted(STREAM_FAMILIES))
def test_packed_models_unpack_into_the_columns_of_their_fleet(name: str) -> None:
    family = STREAM_FAMILIES[name]
    models = [detection.fit(name, *history(seed)) for seed in (1, 2)]
    streams = [m for m in models if isinstance(m, detection.StreamModel)]
    assert len(streams) == 2
    packed = [family.pack(m.params, m.state, 100.0 + i) for i, m in enumerate(streams)]

    until, params, state = family.unpack(packed)

    assert until.tolist() == [100.0, 101.0]
    fleet = [
        family.params.join([m.params for m in streams]),
        family.state.join([m.state for m in streams]),
    ]
    for expected, got in zip(fleet, (params, state), strict=True):
        for column, values in expected.to_arrays().items():
            assert got.to_arrays()[column].dtype == values.dtype
            np.testing.assert_array_equal(got.to_arrays()[column], values)


def test_a_packed_model_of_another_size_is_refused() -> None:
    family = STREAM_FAMILIES["forecast"]
    with pytest.raises(ValueError, match="forecast model is"):
        family.unpack([b"\0" * 16])
