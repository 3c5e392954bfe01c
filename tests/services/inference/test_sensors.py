"""Sensor models in memory: one reading per request, scored as the library
scores the same readings in a row."""

from __future__ import annotations

import numpy as np
import pytest

from atalaia.core.detectors.multivariate import Multivariate
from atalaia.core.sensors import StoredSensor
from atalaia.core.serving import ServedSensor
from atalaia.errors import InvalidInput, SensorNotServed
from atalaia.services.inference.sensors import SensorModels

AXES = ("a", "b")
RNG = np.random.default_rng(5)
LOAD = RNG.normal(size=600)
TRAIN = np.column_stack([LOAD, 2 * LOAD]) + RNG.normal(0, 0.05, (600, 2))
PARAMS = Multivariate().fit(TRAIN, {"threshold_sigma": 4.0, "window": 5.0})


def served(version: int = 1) -> ServedSensor:
    return ServedSensor("s", version, StoredSensor(AXES, PARAMS))


def test_readings_one_by_one_score_as_a_row_does() -> None:
    sensors = SensorModels()
    sensors.replace_all([served()])
    rows = np.column_stack([LOAD[:20], 2 * LOAD[:20]])
    rows[12:16, 1] += 0.4  # a slight, lasting break: the window sees it

    one_by_one = [
        sensors.score("s", float(t), dict(zip(AXES, row, strict=True))).score
        for t, row in enumerate(rows.tolist())
    ]

    assert one_by_one == PARAMS.score(rows).score.tolist()


def test_a_batch_scores_as_its_readings_one_by_one_in_time_order() -> None:
    rows = np.column_stack([LOAD[:20], 2 * LOAD[:20]])
    rows[12:16, 1] += 0.4
    values = [dict(zip(AXES, row, strict=True)) for row in rows.tolist()]
    shuffled = np.random.default_rng(0).permutation(20).tolist()
    sensors = SensorModels()
    sensors.replace_all([served()])
    sensors.score("s", -1.0, values[0])  # kept before the batches

    first = sensors.score_many("s", [float(t) for t in shuffled[:10]],
                               [values[t] for t in shuffled[:10]])  # fmt: skip
    # The second batch holds t=3 again: stale, scored one reading at a time.
    later = [*shuffled[10:], 3]
    second = sensors.score_many(
        "s", [float(t) for t in later], [values[t] for t in later]
    )

    one_by_one = SensorModels()
    one_by_one.replace_all([served()])
    one_by_one.score("s", -1.0, values[0])
    expected = {}
    for t in sorted(shuffled[:10]):  # all newer: one pass
        expected[t, 1] = one_by_one.score("s", float(t), values[t]).score
    for t in sorted(later):  # 3 is stale (seen, or older than the newest)
        expected[t, 2] = one_by_one.score("s", float(t), values[t]).score
    assert [v.score for v in first] == [expected[t, 1] for t in shuffled[:10]]
    assert [v.score for v in second] == [expected[t, 2] for t in later]


def test_a_new_version_starts_afresh_and_dropped_sensors_go() -> None:
    sensors = SensorModels()
    sensors.replace_all([served()])
    sensors.score("s", 1.0, {"a": 0.0, "b": 0.0})

    sensors.update(["s"], [served(version=2)])
    assert sensors.score("s", 2.0, {"a": 0.0, "b": 0.0}).version == 2
    sensors.update(["s"], [])
    with pytest.raises(SensorNotServed):
        sensors.score("s", 3.0, {"a": 0.0, "b": 0.0})


def test_values_must_name_every_axis() -> None:
    sensors = SensorModels()
    sensors.replace_all([served()])

    with pytest.raises(InvalidInput, match="axes a, b"):
        sensors.score("s", 1.0, {"a": 0.0, "c": 0.0})
