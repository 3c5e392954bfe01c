"""How every answer explains a reading: the fields' documentation, shared by
the services' OpenAPI, and an anomaly as the ingest answer and the anomaly log
show it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from atalaia.core.serving import ScoredAnomaly

EXPECTED = (
    "The value the model expects at this reading's time (a seasonal model's "
    "varies with the phase of its period); null when nothing is known"
)
BOUND = "{} edge of the normal band at this reading's time; null when unbounded"
DIRECTION = "For an anomaly: above or below the band; null otherwise"
REASON = (
    "For an anomaly, why it is one: outside_band (a flat band: zscore, robust, "
    "or the series' history), outside_seasonal_band (the band of its phase), "
    "isolated_pattern (an isolation_forest found its recent readings unusual), "
    "stuck (its value repeated for longer than the series' training ever did), "
    "forecast_deviation (the recent readings depart from a forecast model's "
    "forecasts more than its history of residuals makes likely), level_shift and "
    "variance_change (a changepoint model found the level or the spread changed), "
    "dropout (a stuck model: the reading came after a gap of more of the series' "
    "usual intervals than allowed), axis_correlation_break (in the anomaly log: a "
    "sensor model found its axes no longer move together; the series is the axis "
    "contributing most); null otherwise"
)
STALE = (
    "Its timestamp is not after the newest reading of the series seen: scored "
    "against the series' state without advancing it (a retry, a late reading)"
)
STATE = (
    "A streaming model's (forecast, changepoint) state: warm, or cold while it "
    "is rebuilt from the series' stored readings (its baseline band answered); "
    "null for the other models"
)
Direction = Literal["above", "below"]
Reason = Literal[
    "outside_band",
    "outside_seasonal_band",
    "isolated_pattern",
    "stuck",
    "forecast_deviation",
    "level_shift",
    "variance_change",
    "dropout",
    "axis_correlation_break",
]
State = Literal["warm", "cold"]


class AnomalyView(BaseModel):
    """An anomaly among the readings stored, explained as a prediction is."""

    series_id: str
    timestamp: float
    value: float
    anomaly_score: float
    expected: float | None = Field(description=EXPECTED)
    lower: float | None = Field(description=BOUND.format("Lower"))
    upper: float | None = Field(description=BOUND.format("Upper"))
    direction: Direction = Field(description=DIRECTION)
    reason: Reason = Field(description=REASON)
    version: int
    type: str = Field(description="The production model's family")
    stale: bool = Field(description=STALE)

    @classmethod
    def of(cls, anomaly: ScoredAnomaly) -> AnomalyView:
        a = anomaly
        return cls(
            series_id=a.series_id, timestamp=a.timestamp, value=a.value,
            anomaly_score=a.anomaly_score, expected=a.expected, lower=a.lower,
            upper=a.upper, direction=a.direction, reason=a.reason,
            version=a.version, type=a.algorithm, stale=a.stale,
        )  # fmt: skip
