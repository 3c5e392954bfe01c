"""Heavy models in memory: a byte budget with least-recently-used eviction,
forests read from the artifact store on a miss, and each series' recent
readings, so that one reading at a time scores as the library scores them all."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from atalaia.adapters.storage import LocalArtifactStore
from atalaia.core.detectors.forest import Forest, fit_forest
from atalaia.services.inference.heavy import RETRY_S, HeavyModels
from fixtures.readings import sensor_series

T, V = sensor_series(2_000, seed=3)
LATER_T, LATER_V = sensor_series(60, seed=4, start=T[-1] + 60.0)


@pytest.fixture(scope="module")
def forests() -> list[Forest]:
    return [
        fit_forest(T, V + shift, {"trees": 20, "samples": 64}) for shift in (0, 1, 2)
    ]


@pytest.fixture
def store(tmp_path: Path, forests: list[Forest]) -> LocalArtifactStore:
    artifacts = LocalArtifactStore(tmp_path)
    for i, forest in enumerate(forests):
        artifacts.put(f"models/s{i}.npz", forest.to_bytes())
    return artifacts


def heavy(store: LocalArtifactStore, models: int) -> HeavyModels:
    """A cache whose budget holds `models` of the forests, not one more."""
    size = Forest.from_bytes(store.get("models/s0.npz")).nbytes
    return HeavyModels(load=store.get, budget_bytes=models * size + size // 2)


def test_one_reading_at_a_time_scores_as_the_readings_in_a_row(
    store: LocalArtifactStore, forests: list[Forest]
) -> None:
    models = heavy(store, 1)
    whole = forests[0].score(LATER_T, LATER_V).score

    one_by_one = [
        models.score("s0", 1, "models/s0.npz", LATER_T[i : i + 1], LATER_V[i : i + 1])
        for i in range(LATER_T.size)
    ]

    assert all(v is not None for v in one_by_one)
    scores = np.concatenate([v.score for v in one_by_one if v is not None])
    np.testing.assert_allclose(scores, whole, rtol=1e-12)


def test_a_batch_out_of_order_is_scored_in_time_order(
    store: LocalArtifactStore, forests: list[Forest]
) -> None:
    models = heavy(store, 1)
    shuffled = np.random.default_rng(0).permutation(LATER_T.size)

    verdicts = models.score(
        "s0", 1, "models/s0.npz", LATER_T[shuffled], LATER_V[shuffled]
    )

    assert verdicts is not None
    whole = forests[0].score(LATER_T, LATER_V)
    np.testing.assert_allclose(verdicts.score, whole.score[shuffled], rtol=1e-12)
    np.testing.assert_allclose(verdicts.expected, whole.expected[shuffled])


def test_a_new_version_starts_with_no_readings_kept(
    store: LocalArtifactStore, forests: list[Forest]
) -> None:
    models = heavy(store, 1)
    models.score("s0", 1, "models/s0.npz", LATER_T[:30], LATER_V[:30])

    fresh = models.score("s0", 2, "models/s0.npz", LATER_T[30:], LATER_V[30:])

    assert fresh is not None
    alone = forests[0].score(LATER_T[30:], LATER_V[30:]).score
    np.testing.assert_allclose(fresh.score, alone, rtol=1e-12)


def test_the_least_recently_used_forest_is_evicted_to_stay_in_budget(
    store: LocalArtifactStore,
) -> None:
    models = heavy(store, 2)
    t, v = LATER_T[:1], LATER_V[:1]
    for i in (0, 1, 0, 2, 0, 1):  # s1 is the least recently used when s2 comes
        models.score(f"s{i}", 1, f"models/s{i}.npz", t, v)

    counts = models.counts
    assert (counts.hits, counts.misses, counts.evictions) == (2, 4, 2)
    assert counts.models == 2
    assert counts.bytes <= models.budget_bytes
    assert not models.resident("models/s2.npz")
    assert models.resident("models/s0.npz")
    for i in (0, 1):  # held: s2 was evicted, they were not
        models.score(f"s{i}", 1, f"models/s{i}.npz", t, v)
    assert (counts.hits, counts.misses) == (4, 4)


def test_concurrent_misses_of_one_forest_read_it_once(
    store: LocalArtifactStore,
) -> None:
    reads: list[str] = []

    def slow_get(key: str) -> bytes:
        reads.append(key)
        time.sleep(0.05)
        return store.get(key)

    models = HeavyModels(load=slow_get, budget_bytes=10**9)
    t, v = LATER_T[:1], LATER_V[:1]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: models.score(f"s{i}", 1, "models/s0.npz", t, v),
                      range(8)))  # fmt: skip

    assert reads == ["models/s0.npz"]
    assert (models.counts.misses, models.counts.hits) == (1, 7)


def test_a_forest_bigger_than_the_budget_is_used_not_kept(
    store: LocalArtifactStore,
) -> None:
    models = HeavyModels(load=store.get, budget_bytes=1000)

    verdicts = models.score("s0", 1, "models/s0.npz", LATER_T[:5], LATER_V[:5])

    assert verdicts is not None
    assert (models.counts.models, models.counts.bytes) == (0, 0)


def test_an_unreadable_forest_answers_none_and_is_counted(
    store: LocalArtifactStore,
) -> None:
    store.put("models/damaged.npz", b"not a forest")
    models = heavy(store, 2)
    t, v = LATER_T[:1], LATER_V[:1]

    missing = models.score("s0", 1, "models/gone.npz", t, v)
    damaged = models.score("s0", 1, "models/damaged.npz", t, v)
    storeless = HeavyModels(load=None, budget_bytes=10**9).score(
        "s0", 1, "models/s0.npz", t, v
    )

    assert missing is None
    assert damaged is None
    assert storeless is None
    assert models.counts.failures == 2


def test_a_forest_that_failed_is_left_alone_for_a_while(
    store: LocalArtifactStore, forests: list[Forest]
) -> None:
    now = [0.0]
    models = heavy(store, 2)
    models.clock = lambda: now[0]
    t, v = LATER_T[:1], LATER_V[:1]
    store.delete("models/s0.npz")

    gone = models.score("s0", 1, "models/s0.npz", t, v)
    store.put("models/s0.npz", forests[0].to_bytes())  # the store has it again
    now[0] = RETRY_S / 2
    left_alone = models.score("s0", 1, "models/s0.npz", t, v)
    now[0] = RETRY_S + 1
    read_again = models.score("s0", 1, "models/s0.npz", t, v)

    assert gone is None
    assert left_alone is None
    assert read_again is not None
    assert (models.counts.failures, models.counts.misses) == (1, 2)
