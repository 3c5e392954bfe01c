"""Training-data snapshots: one Parquet file per trained chunk, read back by job."""

from __future__ import annotations

import numpy as np

from atalaia.adapters import training_snapshots
from atalaia.core.sensors import SensorData
from atalaia.core.series import Readings


def _readings(n: int, seed: int) -> Readings:
    rng = np.random.default_rng(seed)
    timestamps = 1.7e9 + 60.0 * np.arange(n, dtype=np.float64)
    return Readings(timestamps, np.round(rng.normal(20.0, 3.0, n), 2))


def test_each_job_reads_back_the_data_it_was_fitted_on() -> None:
    sensor = SensorData(
        ("axial", "radial"),
        1.7e9 + np.arange(50.0),
        np.random.default_rng(3).normal(size=(50, 2)),
    )
    first = _readings(100_000, 1)
    data: dict[str, Readings | SensorData] = {
        "j1": first,
        "j2": sensor,
        "j3": _readings(7, 2),
    }

    _, body = training_snapshots.encode(data)

    back = training_snapshots.decode(body, "j1")
    assert isinstance(back, Readings)
    np.testing.assert_array_equal(back.timestamps, first.timestamps)
    np.testing.assert_array_equal(back.values, first.values)
    axes = training_snapshots.decode(body, "j2")
    assert isinstance(axes, SensorData)
    assert axes.axes == ("axial", "radial")
    np.testing.assert_array_equal(axes.values, sensor.values)
    np.testing.assert_array_equal(axes.timestamps, sensor.timestamps)


def test_the_key_is_the_digest_of_what_is_kept() -> None:
    first, _ = training_snapshots.encode({"j1": _readings(10, 1)})
    again, _ = training_snapshots.encode({"j1": _readings(10, 1)})
    other, _ = training_snapshots.encode({"j1": _readings(10, 2)})

    assert first == again != other
    assert first.startswith("training-data/")
    assert first.endswith(".parquet")


def test_a_regular_clock_and_quantized_readings_take_few_bytes() -> None:
    _, body = training_snapshots.encode({"j1": _readings(100_000, 1)})

    assert len(body) < 100_000 * 5  # of the 16 bytes of two float64s
