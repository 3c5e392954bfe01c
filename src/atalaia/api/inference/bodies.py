"""Decoding prediction bodies on the hot path, with the Pydantic schemas as reference.

msgspec decodes and validates in one pass into typed structs; they accept exactly
what the schemas in `schemas.py` accept (the tests compare both on random bodies),
which document the routes in OpenAPI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import msgspec
import numpy as np
import numpy.typing as npt

from atalaia.api.inference.schemas import MAX_BATCH
from atalaia.core.series import MAX_SERIES_ID_LENGTH
from atalaia.errors import InvalidInput

SeriesId = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_SERIES_ID_LENGTH)]


class _Reading(msgspec.Struct, forbid_unknown_fields=True):
    timestamp: float
    value: float


class _Point(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    series_id: SeriesId
    timestamp: float
    value: float


class _Rows(msgspec.Struct, forbid_unknown_fields=True):
    points: Annotated[list[_Point], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


class _Columns(msgspec.Struct, forbid_unknown_fields=True):
    series_id: Annotated[
        list[SeriesId], msgspec.Meta(min_length=1, max_length=MAX_BATCH)
    ]
    timestamp: list[float]
    value: list[float]


_READING = msgspec.json.Decoder(_Reading)
_ROWS = msgspec.json.Decoder(_Rows)
_COLUMNS = msgspec.json.Decoder(_Columns)


@dataclass(frozen=True, slots=True)
class Batch:
    """The readings of a batch body, in the form the answer takes."""

    series_ids: list[str]
    timestamps: npt.NDArray[np.float64]
    values: npt.NDArray[np.float64]
    columnar: bool


def _refused(exc: msgspec.ValidationError | msgspec.DecodeError) -> InvalidInput:
    # ValidationError is a DecodeError: the JSON was well formed, a rule broken.
    what = "" if isinstance(exc, msgspec.ValidationError) else "invalid JSON: "
    return InvalidInput(f"body: {what}{exc}", rule="request_schema")


def parse_reading(body: bytes) -> tuple[float, float]:
    """(timestamp, value) of a single reading's body."""
    try:
        reading = _READING.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise _refused(exc) from None
    return reading.timestamp, reading.value


def parse_batch(body: bytes) -> Batch:
    """A batch body in the row form (`points`) or the columnar form.

    Series ids are not checked against the id rule here: the data plane checks
    those unknown to the model table (a known id passed it when it was trained)."""
    try:
        rows = _ROWS.decode(body)
    except msgspec.ValidationError as as_rows:
        # Not rows: a columnar body fails at its first field, so trying the
        # columnar form next costs little; report the error of the form meant.
        try:
            batch = _columnar(_COLUMNS.decode(body))
        except msgspec.ValidationError as as_columns:
            raise _refused(as_columns if b'"points"' not in body else as_rows) from None
        except msgspec.DecodeError as malformed:  # past the row form's first field
            raise _refused(malformed) from None
    except msgspec.DecodeError as exc:
        raise _refused(exc) from None
    else:
        points = rows.points
        batch = Batch(
            [p.series_id for p in points],
            np.array([p.timestamp for p in points], np.float64),
            np.array([p.value for p in points], np.float64),
            columnar=False,
        )
    return batch


def _columnar(body: _Columns) -> Batch:
    if not len(body.series_id) == len(body.timestamp) == len(body.value):
        raise msgspec.ValidationError(
            "series_id, timestamp and value must have the same length"
        )
    return Batch(
        body.series_id,
        np.array(body.timestamp, np.float64),
        np.array(body.value, np.float64),
        columnar=True,
    )
