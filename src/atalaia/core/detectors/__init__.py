"""Anomaly detectors and their columnar scoring."""

from atalaia.core.detectors.base import (
    MAX_HYPERPARAMETER,
    MIN_SCALE,
    Detector,
    ModelParams,
    ParamColumns,
    Stack,
    band_width,
    score_columns,
    score_reading,
    score_readings,
    stack_by_length,
)
from atalaia.core.detectors.catalog import (
    DETECTORS,
    fit,
    fit_rows,
    get_detector,
    resolve_hyperparameters,
)

__all__ = [
    "DETECTORS",
    "Detector",
    "MAX_HYPERPARAMETER",
    "MIN_SCALE",
    "ModelParams",
    "ParamColumns",
    "Stack",
    "band_width",
    "fit",
    "fit_rows",
    "get_detector",
    "resolve_hyperparameters",
    "score_columns",
    "score_reading",
    "score_readings",
    "stack_by_length",
]
