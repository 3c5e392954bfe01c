"""Streaming models in the serving path: each `forecast` or `changepoint`
series' params and state, in columns by the model table's rows.

A row's state belongs to one version. A version the process holds no state
for starts from its own (packed in the version: the state after its last
training reading) and is *cold*: its readings are answered by the version's
baseline band (its stateless model, as the table scores it) and advance
nothing, until `rebuild` has advanced the state through the series' readings
stored since its training. A warm row's fresh readings advance its state, each
series' in time order; a stale one is scored against a copy of the state.

A reading's baseline is the table's band at its time (the scale: its
half-width over `outlier_sigma`), so serving computes what the library does.
The caller (`SeriesStreams`) serializes every call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from atalaia.core.detectors.stream_families import STREAM_FAMILIES, StreamFamily
from atalaia.core.detectors.streaming import Step, standardized
from atalaia.core.series import FloatArray
from atalaia.services.model_table import ALGORITHMS, REASONS

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
# A reading's state, as `Scores.state` codes it: not a streaming model's.
STATELESS, WARM, COLD = 0, 1, 2
STATES = (None, "warm", "cold")


def reason_codes(family: StreamFamily) -> IntArray:
    """Each cause's reason as an index into REASONS; -1: the band's own."""
    return np.array([REASONS.index(r) if r else -1 for r in family.reasons])


@dataclass(slots=True)
class FamilyRows:
    """One family's params and state by table row: each a matrix (rows ×
    numbers, as `Columns.packed` lays them) with columns over it (views), and
    each row's version (0: none), the time its state starts from (its last
    training reading) and whether it is warm."""

    family: StreamFamily
    version: IntArray
    until: FloatArray
    warm: BoolArray
    packed_params: FloatArray
    packed_state: FloatArray
    params: Any = None  # the family's params columns, over `packed_params`
    state: Any = None  # and its state columns, over `packed_state`

    def __post_init__(self) -> None:
        self.params = self.family.params.unpacked(self.packed_params)
        self.state = self.family.state.unpacked(self.packed_state)

    @classmethod
    def empty(cls, family: StreamFamily, size: int) -> FamilyRows:
        return cls(
            family,
            np.zeros(size, np.int64),
            np.zeros(size),
            np.zeros(size, bool),
            np.zeros((size, family.params.width())),
            np.zeros((size, family.state.width())),
        )

    @property
    def size(self) -> int:
        return int(self.version.size)

    def moved(self, size: int, to: IntArray, at: IntArray) -> FamilyRows:
        """Rows `at` of these at rows `to` of new columns of `size` rows."""
        moved = FamilyRows.empty(self.family, size)
        moved.version[to], moved.warm[to] = self.version[at], self.warm[at]
        moved.until[to] = self.until[at]
        moved.packed_params[to] = self.packed_params[at]
        moved.packed_state[to] = self.packed_state[at]
        return moved

    def start(
        self, rows: IntArray, versions: IntArray, packed: Sequence[bytes]
    ) -> None:
        """Give `rows` these versions' params and state (cold)."""
        until, params, state = self.family.unpack(packed)
        self.packed_params[rows] = params.packed()
        self.packed_state[rows] = state.packed()
        self.version[rows], self.warm[rows], self.until[rows] = versions, False, until

    def advance(
        self,
        rows: IntArray,
        timestamps: FloatArray,
        expected: FloatArray,
        half_width: FloatArray,
        values: FloatArray,
    ) -> Step:
        """Advance `rows` (distinct) by one reading each, in place."""
        baseline = standardized(expected, half_width, self.params.outlier[rows], values)
        return self.family.advance(self.params, self.state, rows, timestamps,
                                   baseline)[0]  # fmt: skip

    def peek(
        self,
        rows: IntArray,
        timestamps: FloatArray,
        expected: FloatArray,
        half_width: FloatArray,
        values: FloatArray,
    ) -> Step:
        """What advancing `rows` (distinct) by these readings would answer;
        their state stays as it is."""
        copy = self.moved(rows.size, np.arange(rows.size), rows)
        return copy.advance(np.arange(rows.size), timestamps, expected, half_width,
                            values)  # fmt: skip

    def advance_one(
        self, row: int, timestamp: float, expected: float, half_width: float,
        value: float, *, stale: bool,
    ) -> tuple[float, float, float, int]:  # fmt: skip
        """One reading of `row` (stale: its state left as it was): its score,
        expected value, band half-width and cause."""
        family = self.family
        params = family.params.row(self.packed_params[row].tolist())
        state = family.state.row(self.packed_state[row].tolist())
        scale = half_width / params.outlier
        baseline = (expected, scale, (value - expected) / scale)
        answer = family.advance_one(params, state, timestamp, baseline)
        if not stale:
            self.packed_state[row] = family.state.values(state)
        score, expected, half, _above, cause = (
            answer[0] if family.tracks_changes else answer
        )
        return score, expected, half, cause


# Family by the table's algorithm code; None: not a streaming family.
FAMILY_OF: tuple[StreamFamily | None, ...] = tuple(
    STREAM_FAMILIES.get(name) for name in ALGORITHMS
)
STREAM_CODES = np.array(
    [code for code, family in enumerate(FAMILY_OF) if family is not None], np.int8
)
# By algorithm code: is it a streaming family's (a gather, cheaper than isin
# on every batch)?
IS_STREAMING = np.array([family is not None for family in FAMILY_OF])


def saved(rows: FamilyRows) -> dict[str, npt.NDArray[Any]]:
    """The rows as named arrays."""
    name = rows.family.name
    return {
        f"{name}_version": rows.version,
        f"{name}_until": rows.until,
        f"{name}_warm": rows.warm,
        f"{name}_params": rows.packed_params,
        f"{name}_state": rows.packed_state,
    }


def from_saved(
    family: StreamFamily, arrays: Any, to: IntArray, size: int
) -> FamilyRows:
    """The rows `saved` wrote, at rows `to` of `size` rows; KeyError or
    ValueError when they are not there or not of this family's shape."""
    name = family.name
    widths = (arrays[f"{name}_params"].shape[1], arrays[f"{name}_state"].shape[1])
    if widths != (family.params.width(), family.state.width()):
        raise ValueError(f"saved {name} rows are of another shape")
    rows = FamilyRows.empty(family, size)
    rows.version[to] = arrays[f"{name}_version"]
    rows.until[to] = arrays[f"{name}_until"]
    rows.warm[to] = arrays[f"{name}_warm"]
    rows.packed_params[to] = arrays[f"{name}_params"]
    rows.packed_state[to] = arrays[f"{name}_state"]
    return rows
