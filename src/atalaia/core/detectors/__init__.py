"""Anomaly detectors and their columnar scoring."""

from atalaia.core.detectors.base import (
    MAX_HYPERPARAMETER,
    Detector,
    ModelParams,
    ParamColumns,
    Stack,
    score_columns,
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
    "MAX_HYPERPARAMETER",
    "Detector",
    "ModelParams",
    "ParamColumns",
    "Stack",
    "fit",
    "fit_rows",
    "get_detector",
    "resolve_hyperparameters",
    "score_columns",
    "stack_by_length",
]
