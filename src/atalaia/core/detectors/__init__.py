"""Anomaly detectors and their columnar scoring."""

from atalaia.core.detectors.base import Detector, ModelParams, score_columns
from atalaia.core.detectors.catalog import (
    DETECTORS,
    fit,
    get_detector,
    resolve_hyperparameters,
)

__all__ = [
    "DETECTORS",
    "Detector",
    "ModelParams",
    "fit",
    "get_detector",
    "resolve_hyperparameters",
    "score_columns",
]
