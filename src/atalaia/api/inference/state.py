"""What the inference service adds to the request state."""

from __future__ import annotations

from typing import TypedDict

from atalaia.adapters.cache import NoticeListener
from atalaia.api.common.state import CommonState
from atalaia.api.inference.metrics import ServingMetrics
from atalaia.services.inference import Predictor


class ServingState(TypedDict):
    """The model table's owner, its metrics, the registry notices' listener
    (None without Redis) and the unknown-series policy of the service."""

    predictor: Predictor
    serving_metrics: ServingMetrics
    notices: NoticeListener | None
    reject_unknown: bool


class InferenceState(CommonState, ServingState):
    """The inference app's whole request state, as its fast routes read it."""
