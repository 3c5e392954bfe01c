"""The shapes of the rollout routes' answers (`services.rollouts.describe`)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from atalaia.api.training.schemas import GatesConfig


class SplitView(BaseModel):
    """The share of the series' readings each version answers, in percent."""

    candidate: float
    production: float


class PlanView(BaseModel):
    initial_percentage: float
    increment_percentage: float
    increment_interval_hours: float


class VersionFiguresView(BaseModel):
    predictions: int
    errors: int
    error_rate: float
    anomalies: int
    anomaly_rate: float
    slow_share: float = Field(
        description="Share of the answers slower than gates.max_p99_ms (the "
        "p99 is under it while this is under 1 %)"
    )


class PairedView(BaseModel):
    """The readings both versions scored."""

    readings: int
    agreement: float = Field(description="Share with the same verdict")
    score_correlation: float | None
    production_anomaly_rate: float


class RolloutFiguresView(BaseModel):
    candidate: VersionFiguresView
    production: VersionFiguresView
    paired: PairedView


class MeasureView(BaseModel):
    production: float
    challenger: float
    p_value: float | None = Field(description="null: too few to test")
    significant: bool = Field(description="p < 0.05")


class ArmsView(BaseModel):
    production: int
    challenger: int


class AbReportView(BaseModel):
    """An A/B test's result: each arm's figures, and whether they differ."""

    anomaly_rate: MeasureView
    precision: MeasureView = Field(description="Of the labelled alarms")
    answers: ArmsView
    labels: ArmsView


class RolloutView(BaseModel):
    id: int
    series_id: str
    strategy: Literal["canary", "shadow", "ab"]
    state: Literal[
        "running",
        "promoted",
        "rolled_back",
        "passed",
        "rejected",
        "reported",
        "cancelled",
    ]
    decision: Literal["canary", "reject"] | None = Field(
        description="A shadow's, once it ended: its comparison passed (a canary "
        "may follow) or failed"
    )
    candidate_version: int
    production_version: int
    percentage: float = Field(description="The candidate's share of answers now")
    split: SplitView
    plan: PlanView
    duration_hours: float | None = Field(description="A shadow's or A/B test's")
    then: Literal["canary", "report"] | None
    gates: GatesConfig
    started_at: datetime
    next_step_at: datetime | None
    ended_at: datetime | None
    actor: str
    reason: str
    outcome: str = Field(description="Why it ended, in words")
    figures: RolloutFiguresView
    evidence: dict[str, float] = Field(
        description="The figures its latest decision was taken on"
    )
    report: AbReportView | None = Field(description="An A/B test's, once it ended")


class RolloutStarted(BaseModel):
    series_id: str
    strategy: Literal["canary", "shadow", "ab"]
    rollout: RolloutView


class RolloutPage(BaseModel):
    rollouts: list[RolloutView]
    next_cursor: str | None
