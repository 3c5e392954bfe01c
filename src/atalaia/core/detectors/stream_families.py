"""The streaming families by name: their hyperparameters, how each is fitted,
how readings advance it (vectorized, and one at a time in plain floats), how
a version keeps its params and state (`pack`, a row of float64) and how many
versions' are read back as columns (`unpack`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from atalaia.core.detectors import changepoint, flatline, forecast
from atalaia.core.detectors.base import FloatArray
from atalaia.core.detectors.phases import BandPools, PhaseBand
from atalaia.core.detectors.streaming import (
    Baselines,
    Columns,
    IntArray,
    Step,
    baseline_one,
    baselines,
)
from atalaia.core.explanations import Reason
from atalaia.core.series import Readings
from atalaia.errors import InvalidHyperparameters

Advanced = tuple[Step, changepoint.Change | None]


class Unpacked(NamedTuple):
    """Versions' packed params and states as columns, one entry each, and the
    time of each one's last training reading (its state is as of then)."""

    until: FloatArray
    params: Any
    state: Any


@dataclass(frozen=True, slots=True)
class StreamFamily:
    """A streaming family; `reasons` name each cause of a score ("": the
    baseline band's own reason)."""

    name: str
    defaults: Mapping[str, float]
    optional: frozenset[str]
    params: type[Columns]
    state: type[Columns]
    fit: Callable[[Readings, Mapping[str, float]], tuple[PhaseBand, Any, Any]]
    advance: Callable[[Any, Any, IntArray, FloatArray, Baselines], Advanced]
    advance_one: Callable[..., Any]
    reasons: tuple[str, ...]
    # Rules of the family beyond "a number in (0, MAX_HYPERPARAMETER]".
    check: Callable[[Mapping[str, float]], None] | None = None

    def step(
        self,
        bands: BandPools,
        p: Any,
        s: Any,
        rows: IntArray,
        timestamps: FloatArray,
        values: FloatArray,
    ) -> Advanced:
        """Advance series `rows` (distinct) of params `p` and state `s` by one
        reading each, in place, their baseline from `bands`; what each
        reading scored (and for `changepoint`, the change it belongs to)."""
        baseline = baselines(bands, p.outlier[rows], rows, timestamps, values)
        return self.advance(p, s, rows, timestamps, baseline)

    def step_one(
        self, bands: BandPools, p: Any, s: Any, row: int, timestamp: float,
        value: float,
    ) -> Any:  # fmt: skip
        """`step` for one reading of series `row`, in plain floats (through
        `advance_one`): its score, expected value, band half-width, side and
        cause (for `changepoint`, with its change's start, size and whether
        it was absorbed)."""
        baseline = baseline_one(bands, p.outlier.item(row), row, timestamp, value)
        params, state = self.params.row(p.entry(row)), self.state.row(s.entry(row))
        answer = self.advance_one(params, state, timestamp, baseline)
        s.set_entry(row, self.state.values(state))
        return answer

    @property
    def tracks_changes(self) -> bool:
        """Does it report the change each reading belongs to?"""
        return self.state is changepoint.ChangeState

    def pack(self, params: Columns, state: Columns, until: float) -> bytes:
        """One series' params and state, as of its reading at `until`."""
        row = np.concatenate(([until], params.packed()[0], state.packed()[0]))
        return row.astype("<f8").tobytes()

    def unpack(self, packed: Sequence[bytes]) -> Unpacked:
        """Series packed by `pack`, one entry each in `packed`'s order;
        ValueError if one is not of this family's size."""
        size = 8 * (1 + self.params.width() + self.state.width())
        if any(len(p) != size for p in packed):
            raise ValueError(f"a packed {self.name} model is {size} bytes")
        rows = np.frombuffer(b"".join(packed), "<f8").reshape(len(packed), size // 8)
        split = 1 + self.params.width()
        return Unpacked(
            rows[:, 0].copy(),
            self.params.unpacked(rows[:, 1:split]),
            self.state.unpacked(rows[:, split:]),
        )


def _check_forecast(resolved: Mapping[str, float]) -> None:
    """`alpha`, a smoothing factor, is at most 1."""
    alpha = resolved.get("alpha")
    if alpha is not None and alpha > 1:
        raise InvalidHyperparameters(
            f"forecast.alpha must be in (0, 1], got {alpha:g}",
            rule="hyperparameters_range",
        )


def _advance_flatline(
    p: flatline.FlatlineParams,
    s: flatline.FlatlineState,
    rows: IntArray,
    timestamps: FloatArray,
    baseline: Baselines,
) -> Advanced:
    return flatline.advance(p, s, rows, timestamps, baseline), None


def _advance_forecast(
    p: forecast.ForecastParams,
    s: forecast.ForecastState,
    rows: IntArray,
    timestamps: FloatArray,
    baseline: Baselines,
) -> Advanced:
    return forecast.advance(p, s, rows, timestamps, baseline), None


STREAM_FAMILIES: dict[str, StreamFamily] = {
    forecast.NAME: StreamFamily(
        forecast.NAME, forecast.DEFAULTS, forecast.OPTIONAL,
        forecast.ForecastParams, forecast.ForecastState, forecast.fit_forecast,
        _advance_forecast, forecast.advance_one, (Reason.FORECAST_DEVIATION,),
        _check_forecast,
    ),
    changepoint.NAME: StreamFamily(
        changepoint.NAME, changepoint.DEFAULTS, frozenset(),
        changepoint.ChangeParams, changepoint.ChangeState,
        changepoint.fit_changepoint, changepoint.advance, changepoint.advance_one,
        ("", Reason.LEVEL_SHIFT, Reason.VARIANCE_CHANGE),
    ),
    flatline.NAME: StreamFamily(
        flatline.NAME, flatline.DEFAULTS, frozenset(), flatline.FlatlineParams,
        flatline.FlatlineState, flatline.fit_flatline, _advance_flatline,
        flatline.advance_one, ("", Reason.STUCK, Reason.DROPOUT),
    ),
}  # fmt: skip
