"""Streaming models (`forecast`, `changepoint`) in the serving path: cold until
rebuilt, then each reading advances its series' state once, one reading or a
batch at a time, as the library scores; the state survives a restart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from atalaia import detection
from atalaia.core.fitting import fit_series
from atalaia.core.series import Readings
from atalaia.core.serving import ServedModel
from atalaia.services.inference import Predictor, data_plane
from atalaia.services.inference.stream_models import COLD, STATELESS, WARM
from atalaia.services.inference.streams import SeriesStreams
from atalaia.services.model_table import REASONS, ModelTable, Source
from fixtures.serving import FakeServing
from fixtures.streams import STEP, continued, history

from .conftest import FakeStore

FAMILIES = ("forecast", "changepoint")


def served(algorithm: str, series_id: str, seed: int, version: int = 1) -> ServedModel:
    """A production version of `algorithm` trained as the training jobs do."""
    t, v = history(seed)
    [fit] = fit_series(algorithm, {}, [Readings.of(t, v)])
    band = fit.band.to_bytes() if fit.band is not None else None
    p = fit.params
    return ServedModel(
        series_id, version, algorithm, p.center, p.scale, p.threshold, band,
        stream=fit.stream,
    )  # fmt: skip


def serving_of(*models: ServedModel) -> FakeServing:
    table = ModelTable()
    table.set_models(list(models), Source.MEMORY)
    return FakeServing(table)


def warmed(serving: FakeServing) -> None:
    """Start every streaming model and rebuild it with no stored readings."""
    streams = serving.streams
    streams.start_all(serving.table)
    streams.rebuild(serving.table, streams.cold(serving.table, 100), {})


def later(n: int, shift_at: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`n` readings after the training ones, a level shift at `shift_at`."""
    t = history(0)[0][-1] + STEP * np.arange(1, n + 1)
    v = continued(t)
    if shift_at is not None:
        v[shift_at:] += 3.0
    return t, v


@pytest.mark.parametrize("algorithm", FAMILIES)
def test_a_streaming_model_is_cold_until_rebuilt_and_its_band_answers(
    algorithm: str,
) -> None:
    serving = serving_of(served(algorithm, "s", 1))
    t, v = later(2)

    cold = data_plane.score_one(serving, "s", t[0], v[0])
    serving.streams.rebuild(serving.table, serving.streams.cold(serving.table, 10), {})
    warm = data_plane.score_one(serving, "s", t[1], v[1])

    assert (cold.state, warm.state) == (COLD, WARM)
    band = serving.table.record("s", t[0])
    assert (cold.expected, cold.width) == (band[2], band[3])  # the stateless band


@pytest.mark.parametrize("algorithm", FAMILIES)
def test_served_answers_are_the_library_s(algorithm: str) -> None:
    serving = serving_of(served(algorithm, "s", 1))
    warmed(serving)
    t, v = later(300, shift_at=150)
    model = detection.fit(algorithm, *history(1))

    answers = [
        data_plane.score_one(serving, "s", ti, vi) for ti, vi in zip(t, v, strict=True)
    ]

    expected = model.score(t, v)
    got = np.array([a.score for a in answers])
    np.testing.assert_allclose(got, expected.anomaly_score, rtol=1e-9)
    np.testing.assert_allclose([a.expected for a in answers], expected.expected)
    flagged = [REASONS[a.reason] for a in answers if a.anomaly]
    assert set(flagged) <= set(expected.reason[expected.anomaly])
    assert any(a.anomaly for a in answers[150:160])  # the shift, seen at once


@pytest.mark.parametrize("algorithm", FAMILIES)
def test_one_batch_of_many_readings_of_a_series_is_one_reading_at_a_time(
    algorithm: str,
) -> None:
    models = [served(algorithm, f"s{i}", i) for i in range(3)]
    one, batch = serving_of(*models), serving_of(*models)
    warmed(one)
    warmed(batch)
    t, v = later(40, shift_at=20)
    ids = [f"s{i}" for i in range(3) for _ in range(t.size)]
    ts, vs = np.tile(t, 3), np.concatenate([v, v + 1.0, v - 1.0])
    order = np.random.default_rng(0).permutation(ts.size)  # any order

    singles = [
        data_plane.score_one(one, s, ti, vi)
        for s, ti, vi in zip(ids, ts, vs, strict=True)
    ]
    scored = data_plane.score_batch(
        batch, [ids[i] for i in order], ts[order], vs[order]
    ).scores

    back = np.argsort(order)
    assert scored.score[back].tolist() == [s.score for s in singles]
    assert scored.expected[back].tolist() == [s.expected for s in singles]
    assert scored.state is not None
    assert set(scored.state.tolist()) == {WARM}


@pytest.mark.parametrize("algorithm", FAMILIES)
def test_a_stale_reading_is_scored_without_advancing_the_state(algorithm: str) -> None:
    retried, plain = (
        serving_of(served(algorithm, "s", 1)),
        serving_of(served(algorithm, "s", 1)),
    )
    warmed(retried)
    warmed(plain)
    t, v = later(30, shift_at=10)

    for i in range(t.size):
        first = data_plane.score_one(retried, "s", t[i], v[i])
        again = data_plane.score_one(retried, "s", t[i], v[i])  # a retry
        batch = data_plane.score_batch(retried, ["s"], t[i : i + 1], v[i : i + 1])
        alone = data_plane.score_one(plain, "s", t[i], v[i])
        assert (first.stale, again.stale) == (False, True)
        assert first.score == alone.score  # the retries advanced nothing
        assert batch.scores.stale is not None
        assert batch.scores.stale[0]
        assert batch.scores.score[0] == again.score  # against the state after it


def test_a_new_version_starts_from_its_own_state_cold() -> None:
    serving = serving_of(served("forecast", "s", 1))
    warmed(serving)
    t, v = later(3)
    data_plane.score_one(serving, "s", t[0], v[0])

    serving.table.set_models([served("changepoint", "s", 2, version=2)], Source.MEMORY)
    scored = data_plane.score_batch(serving, ["s"], t[1:2], v[1:2]).scores

    assert scored.state is not None
    assert scored.state.tolist() == [COLD]
    assert serving.streams.cold(serving.table, 10).versions == [2]


def test_other_models_have_no_state() -> None:
    serving = serving_of(ServedModel("z", 1, "zscore", 0.0, 1.0, 3.0))

    assert data_plane.score_one(serving, "z", 1.0, 0.5).state == STATELESS
    assert (
        data_plane.score_batch(serving, ["z"], np.ones(1), np.ones(1)).scores.state
        is None
    )


@pytest.mark.parametrize("algorithm", FAMILIES)
def test_rebuilding_from_stored_readings_is_scoring_them(algorithm: str) -> None:
    live, rebuilt = (
        serving_of(served(algorithm, "s", 1)),
        serving_of(served(algorithm, "s", 1)),
    )
    warmed(live)
    t, v = later(60, shift_at=30)
    for ti, vi in zip(t[:50], v[:50], strict=True):
        data_plane.score_one(live, "s", ti, vi)
    streams = rebuilt.streams
    streams.start_all(rebuilt.table)

    streams.rebuild(rebuilt.table, streams.cold(rebuilt.table, 10),
                    {"s": Readings.of(t[:50], v[:50])})  # fmt: skip

    for ti, vi in zip(t[50:], v[50:], strict=True):
        assert (
            data_plane.score_one(rebuilt, "s", ti, vi).score
            == data_plane.score_one(live, "s", ti, vi).score
        )


@pytest.mark.parametrize("algorithm", FAMILIES)
def test_the_state_survives_a_restart(algorithm: str, tmp_path: Path) -> None:
    model = served(algorithm, "s", 1)
    before, uninterrupted = serving_of(model), serving_of(model)
    warmed(before)
    warmed(uninterrupted)
    t, v = later(40, shift_at=20)
    for ti, vi in zip(t[:25], v[:25], strict=True):
        data_plane.score_one(before, "s", ti, vi)
        data_plane.score_one(uninterrupted, "s", ti, vi)
    before.streams.save(tmp_path / "streams.npz")

    after = serving_of(model)  # a new process: a new table, the state read back
    after.streams = SeriesStreams()
    assert after.streams.restore(tmp_path / "streams.npz") == 1
    answers = [
        data_plane.score_one(after, "s", ti, vi)
        for ti, vi in zip(t[25:], v[25:], strict=True)
    ]

    assert {a.state for a in answers} == {WARM}
    assert [a.score for a in answers] == [
        data_plane.score_one(uninterrupted, "s", ti, vi).score
        for ti, vi in zip(t[25:], v[25:], strict=True)
    ]


def test_a_served_stuck_model_flags_a_flatline_once() -> None:
    one, batch = (
        serving_of(served("stuck", "s", 1)),
        serving_of(served("stuck", "s", 1)),
    )
    warmed(one)
    warmed(batch)
    t, v = later(60)
    v[10:50] = 10.25  # flatlined for 40 readings

    singles = [
        data_plane.score_one(one, "s", ti, vi) for ti, vi in zip(t, v, strict=True)
    ]
    scored = data_plane.score_batch(batch, ["s"] * t.size, t, v).scores

    flagged = [i for i, a in enumerate(singles) if a.anomaly]
    assert flagged == np.flatnonzero(scored.anomaly).tolist()
    assert len(flagged) == 1
    assert REASONS[singles[flagged[0]].reason] == "stuck"


def test_a_restart_catches_up_with_readings_stored_while_down(tmp_path: Path) -> None:
    model = served("forecast", "s", 1)
    uninterrupted = serving_of(model)
    warmed(uninterrupted)
    t, v = later(40, shift_at=25)
    path, store = tmp_path / "snapshot.npz", FakeStore([model])
    before = Predictor(store, snapshot_path=path)
    before.warm_load()
    assert before.rebuild_streams() == 1
    for ti, vi in zip(t[:20], v[:20], strict=True):
        data_plane.score_one(before, "s", ti, vi)
        data_plane.score_one(uninterrupted, "s", ti, vi)
    before.save_snapshot()  # as at shutdown
    store.readings["s"] = Readings.of(t[:30], v[:30])  # 20-29 sent in meanwhile
    for ti, vi in zip(t[20:30], v[20:30], strict=True):
        data_plane.score_one(uninterrupted, "s", ti, vi)

    after = Predictor(store, snapshot_path=path)
    after.warm_load()

    assert after.rebuild_streams() == 0  # warm: read back, then caught up
    answers = [
        data_plane.score_one(after, "s", ti, vi)
        for ti, vi in zip(t[30:], v[30:], strict=True)
    ]
    assert [a.score for a in answers] == [
        data_plane.score_one(uninterrupted, "s", ti, vi).score
        for ti, vi in zip(t[30:], v[30:], strict=True)
    ]
