"""The atalaia error family. Domain words only: the HTTP edge maps them to statuses.

AtalaiaError
├── InvalidInput                 bad request content (422)
│   ├── InvalidSeries            training / ingest data broke a validation rule
│   │   └── UnfitData            training data has blocking data-quality findings
│   ├── InvalidSeriesId          series id does not match the naming rule
│   ├── UnknownAlgorithm         no detector of that name
│   ├── InvalidHyperparameters   a detector rejected its hyperparameters
│   ├── BatchRefused             every series of a batch broke a rule
│   ├── InvalidAssets            nodes of an asset hierarchy broke its rules
│   └── PayloadTooLarge          the body is larger than its route takes (413)
├── NotFound                     (404)
│   ├── SeriesNotFound
│   ├── UnknownSeries            no model and no history (when refused)
│   ├── SensorNotFound           no stored series of that sensor
│   ├── SensorNotServed          no production sensor model in memory
│   ├── SensorModelNotFound      no sensor model in the registry
│   ├── JobNotFound
│   ├── VersionNotFound
│   └── RolloutNotFound
├── Conflict                     state forbids the request (409)
│   ├── VersionNotPromotable
│   ├── NothingToRollBack
│   ├── JobNotCancellable
│   ├── RolloutConflict          a rollout running, or not, or without production
│   └── ConcurrentChange         a concurrent change kept conflicting
├── RateLimited                  too many requests under a rule (429)
│   ├── TrainingRateLimited      one training per series per window
│   └── BatchRateLimited         that rule refused every series of a batch
├── AuthenticationFailed         missing or bad credentials (401)
├── PermissionDenied             the principal's role is too low (403)
└── DependencyUnavailable        a database, cache or queue is down (503)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class AtalaiaError(Exception):
    """Root of every error atalaia raises on purpose; `rule` names the condition
    in snake_case (a class default, overridable per instance)."""

    rule = "internal_error"

    def __init__(self, detail: str, *, rule: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if rule is not None:
            self.rule = rule

    @property
    def origin(self) -> str:
        """The first line of the error this one was raised from (a driver's, say),
        or "": for the logs, never for an answer."""
        lines = str(self.__cause__ or "").splitlines()
        return lines[0] if lines else ""


class InvalidInput(AtalaiaError):
    """The request content breaks a rule; `rule` names it."""

    rule = "input_valid"

    def __init__(self, detail: str, *, rule: str) -> None:
        super().__init__(detail)
        self.rule = rule


class InvalidSeries(InvalidInput):
    """Readings break a validation rule (too few points, NaN, constant, ...)."""


class UnfitData(InvalidSeries):
    """Training data whose data-quality report has blocking findings; each in
    `findings` ({"rule", "detail", "figures"})."""

    def __init__(self, findings: list[dict[str, Any]], *, what: str = "data") -> None:
        named = "; ".join(f"{f['rule']}: {f['detail']}" for f in findings)
        super().__init__(
            f"the {what} is unfit to train on ({named}); its report: GET "
            "/api/v1/series/<series_id>/quality; to train anyway, send "
            'data_quality: {"ignore": [<rule>, …]} or {"ignore": "all"}',
            rule="data_quality",
        )
        self.findings = findings


class InvalidSeriesId(InvalidInput):
    def __init__(self, series_id: str) -> None:
        super().__init__(
            f"series id {series_id[:140]!r} must match [A-Za-z0-9_.:-]{{1,128}}",
            rule="series_id_format",
        )


class UnknownAlgorithm(InvalidInput):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(
            f"unknown algorithm {name!r}; known: {', '.join(known)}",
            rule="algorithm_known",
        )


class InvalidHyperparameters(InvalidInput):
    pass


class BatchRefused(InvalidInput):
    """No series of a batch can be trained; `rejected` says why for each."""

    def __init__(self, rejected: list[dict[str, Any]]) -> None:
        super().__init__(
            f"none of the {len(rejected)} series of the batch can be trained",
            rule="batch_trainable",
        )
        self.rejected = rejected


class InvalidAssets(InvalidInput):
    """Nodes of an asset hierarchy break its rules; `errors` names each one's
    node, line and rule (nothing was written)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(
            f"{len(errors)} error(s) in the assets: nothing was written",
            rule="assets_valid",
        )
        self.errors = errors


class PayloadTooLarge(InvalidInput):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the body is larger than this route's limit of {limit} bytes",
            rule="body_size",
        )


class NotFound(AtalaiaError):
    rule = "resource_exists"


class SeriesNotFound(NotFound):
    rule = "series_exists"

    def __init__(self, series_id: str) -> None:
        super().__init__(f"series {series_id!r} has no data")


class UnknownSeries(NotFound):
    """No model and no history for these series: a prediction for them refused
    rather than answered with the default (the first `SHOWN` ids are named)."""

    SHOWN = 50
    rule = "series_known"

    def __init__(self, series_ids: Sequence[str]) -> None:
        named = ", ".join(map(repr, series_ids[: self.SHOWN]))
        more = len(series_ids) - self.SHOWN
        super().__init__(
            f"no model and no history for {len(series_ids)} series: {named}"
            + (f" and {more} more" if more > 0 else "")
        )


class SensorNotFound(NotFound):
    rule = "sensor_exists"

    def __init__(self, sensor_id: str) -> None:
        super().__init__(
            f"sensor {sensor_id!r} has no stored series (axes named "
            f"{sensor_id}_<axis>, e.g. {sensor_id}_radial)"
        )


class SensorNotServed(NotFound):
    rule = "sensor_served"

    def __init__(self, sensor_id: str) -> None:
        super().__init__(
            f"sensor {sensor_id!r} has no production sensor model in memory "
            "(train it with algorithm multivariate, then promote it)"
        )


class SensorModelNotFound(NotFound):
    rule = "sensor_model_exists"

    def __init__(self, sensor_id: str, version: int | None = None) -> None:
        if version is None:
            detail = f"sensor {sensor_id!r} has no model"
        else:
            detail = f"version {version} of {sensor_id!r} is not a sensor model"
        super().__init__(f"{detail} (train one with algorithm multivariate)")


class JobNotFound(NotFound):
    rule = "job_exists"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"training job {job_id!r} does not exist")


class VersionNotFound(NotFound):
    rule = "version_exists"

    def __init__(self, series_id: str, version: int | None = None) -> None:
        what = f"version {version}" if version is not None else "any model version"
        super().__init__(f"series {series_id!r} has no {what}")


class RolloutNotFound(NotFound):
    rule = "rollout_exists"

    def __init__(self, rollout_id: int) -> None:
        super().__init__(f"rollout {rollout_id} does not exist")


class Conflict(AtalaiaError):
    rule = "state_allows"


class RolloutConflict(Conflict):
    """A rollout cannot start (one runs already; no Production version to run
    it beside) or move (it ended); `rule` names which."""

    rule = "rollout_allows"

    def __init__(self, detail: str, *, rule: str) -> None:
        super().__init__(detail)
        self.rule = rule


class VersionNotPromotable(Conflict):
    rule = "version_promotable"


class NothingToRollBack(Conflict):
    rule = "rollback_target_exists"


class JobNotCancellable(Conflict):
    rule = "job_cancellable"


class ConcurrentChange(Conflict):
    """Concurrent changes of the same thing conflicted (a deadlock or a
    serialization failure in the database); retrying the request may succeed."""

    rule = "concurrent_change"


class RateLimited(AtalaiaError):
    """Too many requests under a rule; `rule` names it, retry in `retry_after` s."""

    rule = "rate_limit"

    def __init__(self, detail: str, *, rule: str, retry_after: int) -> None:
        super().__init__(detail)
        self.rule = rule
        self.retry_after = retry_after


class TrainingRateLimited(RateLimited):
    rule = "series_training_interval"

    def __init__(self, series_id: str, *, retry_after: int, interval_s: int) -> None:
        super().__init__(
            f"series {series_id!r} accepts one training per {interval_s} s; "
            f"retry in {retry_after} s",
            rule=self.rule,
            retry_after=retry_after,
        )
        self.series_id = series_id


class BatchRateLimited(RateLimited):
    """Every series of a batch trained less than its interval ago; `rejected`
    says when each may train again, `retry_after` when the first may."""

    def __init__(self, rejected: list[dict[str, Any]]) -> None:
        retry_after = min(int(r["retry_after"]) for r in rejected)
        super().__init__(
            f"every one of the {len(rejected)} series of the batch trained less "
            f"than its interval ago; retry in {retry_after} s",
            rule=TrainingRateLimited.rule,
            retry_after=retry_after,
        )
        self.rejected = rejected


class AuthenticationFailed(AtalaiaError):
    rule = "bearer_token_valid"


class PermissionDenied(AtalaiaError):
    rule = "role_allows"


class DependencyUnavailable(AtalaiaError):
    rule = "dependency_available"

    def __init__(self, name: str, detail: str = "") -> None:
        super().__init__(f"{name} is unavailable" + (f": {detail}" if detail else ""))
        self.name = name
