"""One settings object for every process, read from `ATALAIA_*` variables."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration; see the README's table for every variable."""

    model_config = SettingsConfigDict(env_prefix="ATALAIA_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    home: Path = Path(".atalaia")
    database_url: str = ""
    artifacts_dir: Path | None = None
    log_level: str = "INFO"
    log_json: bool = True

    auth_enabled: bool = True
    jwt_secret: SecretStr | None = None
    jwt_algorithm: Literal["HS256"] = "HS256"
    token_ttl_hours: float = 24 * 365

    training_min_interval_s: int = 300
    training_threads: int = 1
    stuck_job_after_s: int = 900

    # Celery broker (amqp:// or redis://); unset: jobs run in the training service.
    broker_url: str | None = None
    training_queue: str = "atalaia.training"
    # A queued job older than this, with the broker's queue empty, is published again.
    redispatch_after_s: Annotated[float, Field(gt=0)] = 30.0

    inference_feed_poll_s: float = 0.25
    inference_db_retry_s: float = 5.0
    inference_stats_flush_s: float = 30.0
    # A prediction for a series with no model and no history: answered with the
    # default and a warning, or refused with 404 (`?unknown=` overrides per request).
    unknown_series: Literal["default", "reject"] = "default"

    # Redis (optional): shared model cache, registry notices, shared rate limits.
    redis_url: str | None = None
    redis_prefix: str = "atalaia:"
    redis_timeout_s: float = 0.25  # connect and read: a dead Redis never stalls
    redis_retry_s: float = 2.0  # after a failure, Redis is left alone this long
    redis_model_ttl_s: int = 7 * 86400

    # Per principal (token subject); 0 turns a limit off. Admins are not limited.
    rate_limit_per_min: int = 100  # management routes
    rate_limit_sensor_per_min: int = 0  # prediction and ingest routes
    rate_limit_sync_s: float = 1.0  # sensor-route counts are summed in Redis

    training_url: str = "http://127.0.0.1:8000"
    inference_url: str = "http://127.0.0.1:8001"
    # Inference replicas, comma-separated; empty: the one at `inference_url`.
    inference_urls: Annotated[list[str], NoDecode] = []
    plot_url: str = "http://127.0.0.1:8002"
    health_probe_timeout_s: float = 2.0

    # PostgreSQL connections of each process (SQLite opens one per thread).
    db_pool_size: Annotated[int, Field(ge=1)] = 10
    db_pool_max_overflow: Annotated[int, Field(ge=0)] = 10
    db_pool_pre_ping: bool = True  # test a pooled connection before handing it out
    db_pool_recycle_s: int = 1800  # replace connections older than this; -1: never

    # The scheduler: `atalaia scheduler`, or inside the embedded `atalaia serve`.
    scheduler_in_process: bool = True  # run its tasks inside `atalaia serve`
    scheduler_retrain_weekday: Literal[
        "mon", "tue", "wed", "thu", "fri", "sat", "sun"
    ] = "sun"
    scheduler_retrain_hour: Annotated[int, Field(ge=0, le=23)] = 2  # UTC
    scheduler_retrain_window_hours: Annotated[float, Field(gt=0)] = 168.0
    scheduler_drift_every_hours: Annotated[float, Field(gt=0)] = 6.0
    scheduler_drift_window_hours: Annotated[float, Field(gt=0)] = 24.0

    @field_validator("inference_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        if isinstance(value, str):
            return [url.strip() for url in value.split(",") if url.strip()]
        return value

    @model_validator(mode="after")
    def _fill_paths_and_refuse_weak_secrets(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.home / 'atalaia.db'}"
        if self.artifacts_dir is None:
            self.artifacts_dir = self.home / "artifacts"
        if self.environment == "production" and self.auth_enabled:
            secret = self.jwt_secret.get_secret_value() if self.jwt_secret else ""
            if len(secret) < 32:
                raise ValueError(
                    "ATALAIA_JWT_SECRET must be set (≥ 32 characters) in production"
                )
        return self

    @property
    def artifacts_path(self) -> Path:
        assert self.artifacts_dir is not None  # filled by the validator
        return self.artifacts_dir

    @property
    def snapshot_path(self) -> Path:
        return self.home / "inference-snapshot.npz"

    def resolve_jwt_secret(self) -> str:
        """The configured secret, or in development one kept in `home/jwt-secret`.

        Every process started from the same folder shares that file, so a token
        made by one is accepted by all.
        """
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        path = self.home / "jwt-secret"
        self.home.mkdir(parents=True, exist_ok=True)
        try:  # O_EXCL: of processes starting together, exactly one writes it
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(48))
        for _ in range(100):  # another process may still be writing it
            if secret := path.read_text().strip():
                return secret
            time.sleep(0.01)
        raise RuntimeError(f"{path} is empty")


def load_settings(**overrides: object) -> Settings:
    """Read the environment; keyword overrides win (for tests and the CLI)."""
    return Settings(**overrides)  # type: ignore[arg-type]
