"""Z-score detector: mean and standard deviation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from atalaia.core.detectors.base import FloatArray, ModelParams, ParamColumns


class ZScore:
    """Flag readings more than `threshold_sigma` standard deviations from the mean.

    >>> p = ZScore().fit(np.array([1.0, 2.0, 3.0, 4.0]), {"threshold_sigma": 3.0})
    >>> round(p.center, 2), round(p.scale, 3), p.threshold
    (2.5, 1.118, 3.0)
    """

    name: ClassVar[str] = "zscore"
    defaults: ClassVar[dict[str, float]] = {"threshold_sigma": 3.0}

    def fit(
        self, values: FloatArray, hyperparameters: Mapping[str, float]
    ) -> ModelParams:
        return ModelParams(
            center=float(np.mean(values)),
            scale=float(np.std(values)),
            threshold=float(hyperparameters["threshold_sigma"]),
        )

    def fit_rows(
        self, rows: FloatArray, hyperparameters: Mapping[str, float]
    ) -> ParamColumns:
        return ParamColumns(
            center=np.mean(rows, axis=1),
            scale=np.std(rows, axis=1),
            threshold=np.full(len(rows), float(hyperparameters["threshold_sigma"])),
        )
