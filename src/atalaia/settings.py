"""One settings object for every process, read from `ATALAIA_*` variables."""

from __future__ import annotations

import math
import os
import re
import secrets
import ssl
import time
from collections import Counter
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Literal, NamedTuple
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from atalaia.core.access import check_group_patterns
from atalaia.core.series import DEFAULT_TIMESTAMP_MAX, DEFAULT_TIMESTAMP_MIN, TimeRange
from atalaia.core.topics import TopicTemplate, broker_address
from atalaia.errors import InvalidInput
from atalaia.files import make_private_dir

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class ReportSubscription(BaseModel):
    """A scheduled report: the fleet's (or, with `asset`, a node's: a site's),
    in these formats, sent to these alert channels (their names)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,48}$")]
    asset: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")] = None
    formats: Annotated[list[Literal["pdf", "xlsx"]], Field(min_length=1)] = ["pdf"]
    channels: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]


class Settings(BaseSettings):
    """Configuration; see the README's table for every variable."""

    # hide_input_in_errors: a refused value (a secret, a password in a URL) is
    # never echoed in the error.
    model_config = SettingsConfigDict(
        env_prefix="ATALAIA_", extra="ignore", hide_input_in_errors=True
    )

    environment: Literal["development", "production"] = "development"
    home: Path = Path(".atalaia")
    database_url: str = ""
    artifacts_dir: Path | None = None
    # Artifacts in a bucket of an S3-compatible store (`s3://bucket/prefix`;
    # unset: the folder `artifacts_dir`). Credentials come from the AWS chain
    # (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, a pod's role).
    artifacts_url: str | None = None
    s3_endpoint_url: str | None = None  # MinIO & co (http://minio:9000); unset: AWS
    s3_region: str | None = None  # unset: AWS_REGION / the profile's, else us-east-1
    s3_path_style: bool = False  # the bucket in the path (MinIO), not the host name
    s3_connect_timeout_s: Annotated[float, Field(gt=0)] = 3.0
    s3_read_timeout_s: Annotated[float, Field(gt=0)] = 30.0
    s3_max_attempts: Annotated[int, Field(ge=1, le=10)] = 3  # per call, the first too
    log_level: str = "INFO"
    log_json: bool = True

    auth_enabled: bool = True
    jwt_secret: SecretStr | None = None
    jwt_algorithm: Literal["HS256"] = "HS256"
    token_ttl_hours: float = 24 * 365
    # Single sign-on (`api.common.oidc`): tokens signed (RS256, ES256) by this
    # OpenID Connect provider, for this audience, are accepted beside the HS256
    # ones above; the console signs in through it as the public client
    # `oidc_client_id` (unset: the console offers pasted tokens only).
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_client_id: str | None = None
    oidc_scopes: str = "openid profile email"
    oidc_provider_name: str | None = None  # "Sign in with <name>"; default: its host
    oidc_role_claim: str = "roles"  # a claim or a dotted path (realm_access.roles)
    oidc_groups_claim: str = "groups"  # → the sensor groups; "": every series
    oidc_leeway_s: Annotated[float, Field(ge=0, le=300)] = 30.0
    # An unknown key id fetches the provider's keys again, at most this often.
    oidc_jwks_refresh_s: Annotated[float, Field(ge=0)] = 60.0
    oidc_timeout_s: Annotated[float, Field(gt=0)] = 3.0
    # Sensor groups (JSON: name → fnmatch patterns over series and sensor ids):
    # a token's `groups` claim limits it to the series its groups cover.
    access_groups: dict[str, list[str]] = {}
    # Audit log: the proxies (addresses or networks, comma-separated) whose
    # X-Forwarded-For / X-Real-IP name the client; failed sign-ins recorded a
    # minute per process (the rest counted, not recorded).
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default_factory=lambda: [ip_network("127.0.0.1"), ip_network("::1")]
    )
    audit_failed_sign_ins_per_min: Annotated[int, Field(ge=0)] = 60

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
    # Memory for heavy models (isolation forests, about 1 MB each), least recently
    # used evicted first; evicted ones are read again from the artifact store.
    inference_model_memory_mb: Annotated[float, Field(ge=0)] = 512.0
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
    # TLS (`atalaia.tls`): the PEM certificate and private key the gateway and
    # `atalaia serve` present, both or neither (neither: `atalaia up` makes a
    # self-signed pair under home/tls); clients (the CLI) trust `tls_ca_file`,
    # else that self-signed certificate, beside the system's CAs.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_ca_file: Path | None = None

    # Notifications. `email` channels go through this SMTP server (unset: refused);
    # `smtp_ssl` is TLS from the first byte (port 465), `smtp_starttls` upgrades a
    # plain connection. `notify_timeout_s` bounds webhook, slack and apprise sends.
    smtp_host: str | None = None
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = 25
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_from: str = "atalaia@localhost"
    smtp_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    notify_timeout_s: Annotated[float, Field(gt=0)] = 5.0

    # PostgreSQL connections of each process (SQLite opens one per thread).
    db_pool_size: Annotated[int, Field(ge=1)] = 10
    db_pool_max_overflow: Annotated[int, Field(ge=0)] = 10
    db_pool_pre_ping: bool = True  # test a pooled connection before handing it out
    db_pool_recycle_s: int = 1800  # replace connections older than this; -1: never
    # How long PostgreSQL may keep a request waiting (seconds; 0: no bound).
    db_connect_timeout_s: Annotated[float, Field(gt=0)] = 3.0
    db_statement_timeout_s: Annotated[float, Field(ge=0)] = 10.0  # server-side
    db_socket_timeout_s: Annotated[float, Field(ge=0)] = 12.0  # an unanswered call

    # The scheduler: `atalaia scheduler`, or inside the embedded `atalaia serve`.
    scheduler_in_process: bool = True  # run its tasks inside `atalaia serve`
    scheduler_retrain_weekday: Weekday = "sun"
    scheduler_retrain_hour: Annotated[int, Field(ge=0, le=23)] = 2  # UTC
    scheduler_retrain_window_hours: Annotated[float, Field(gt=0)] = 168.0
    scheduler_drift_every_hours: Annotated[float, Field(gt=0)] = 6.0
    scheduler_drift_window_hours: Annotated[float, Field(gt=0)] = 24.0
    # The rollouts' steps: how often their gates are checked (a failing
    # canary is rolled back within this much of its figures being flushed,
    # every `inference_stats_flush_s`: within 5 minutes in all).
    scheduler_rollout_every_minutes: Annotated[float, Field(gt=0, le=60)] = 4.0
    # The weekly wave (`services.waves`): once a batch of the weekly retraining
    # has ended, its new versions go out by this policy (never: they wait for
    # a person), each whose holdout flagged at most this share of its readings;
    # looked for as often as the rollouts' steps.
    weekly_wave: Literal["never", "canary_if_healthy", "direct_if_better"] = "never"
    weekly_wave_max_false_alarm_rate: Annotated[float, Field(ge=0, le=1)] = 0.005

    # The cold history (`services.cold_history`): readings older than
    # `hot_days` move, a day at a time, to Parquet segments in `cold_dir`
    # (default: home/cold), every `archive_every_hours` (unset: every reading
    # stays in the database).
    hot_days: Annotated[float, Field(ge=1)] | None = None
    cold_dir: Path | None = None
    archive_every_hours: Annotated[float, Field(gt=0)] = 24.0

    # Scheduled backups (`services.backup`): every `backup_every_hours` into
    # `backup_dir`, keeping the newest `backup_keep` (28: a week at 6 h); the
    # oldest goes only once a new one is complete. Unset `backup_dir`: off.
    backup_dir: Path | None = None
    backup_every_hours: Annotated[float, Field(gt=0)] = 6.0
    backup_keep: Annotated[int, Field(ge=1)] = 28

    # Off: inference records no anomaly for incidents (ingest still logs its own).
    incidents_enabled: bool = True
    # Incidents (`core.incidents`): anomalies of a sensor this close are one
    # incident; a series recovers after this many normal readings in a row.
    incident_gap_s: Annotated[float, Field(gt=0)] = 600.0
    incident_resolve_after: Annotated[int, Field(ge=1)] = 10
    incident_major_score: Annotated[float, Field(gt=1)] = 2.0
    incident_critical_score: Annotated[float, Field(gt=1)] = 4.0
    # How often inference writes the anomalies of predictions it queued (a
    # killed process loses at most this much).
    incident_flush_s: Annotated[float, Field(gt=0)] = 0.25
    # The alerter: in `atalaia serve` and `atalaia scheduler`, one instance.
    alert_rules_file: Path | None = None
    # Report templates of a site: a file here replaces the shipped one of its
    # name (`services/reports/templates`: fleet.html, sensor.html, report.css …).
    report_templates_dir: Path | None = None
    # Scheduled reports (`services.reports.scheduled`), a JSON list of
    # `ReportSubscription`s: each stored and sent for the last whole week
    # (Monday to Monday, UTC) every `report_weekday` at `report_hour` (UTC).
    # None: the task is off. Links in notifications start with `public_url`
    # (default: `training_url`).
    report_subscriptions: list[ReportSubscription] = []
    # An on-demand fleet report (`GET /reports/fleet`) of more series than this
    # is refused (422 `report_size`, 0: no bound): a week of 90,000 series
    # takes ~25 s to gather and lay out, which no request should wait for.
    report_on_demand_max_series: Annotated[int, Field(ge=0)] = 30_000
    report_weekday: Weekday = "mon"
    report_hour: Annotated[int, Field(ge=0, le=23)] = 6
    public_url: str | None = None
    # The alerter deletes what it has read of the anomaly log (and of the
    # recoveries and platform events) once older than this; 0: never.
    anomaly_log_retention_days: Annotated[float, Field(ge=0)] = 30.0
    alerter_poll_s: Annotated[float, Field(gt=0)] = 0.2
    alerter_sweep_s: Annotated[float, Field(gt=0)] = 10.0

    # Self-healing (`services.healing`), run by the scheduler every
    # `healing_every_minutes` (data drift: with the drift check). Each rule may
    # be off, in dry run (decisions recorded, nothing done) and holds to so many
    # actions an hour (0: no limit); an admin changes these at run time
    # (`PATCH /api/v1/healing/rules/{rule}`).
    healing_every_minutes: Annotated[float, Field(gt=0)] = 4.0
    healing_data_drift_enabled: bool = True
    healing_data_drift_dry_run: bool = False
    healing_data_drift_max_per_hour: Annotated[int, Field(ge=0)] = 20_000
    healing_concept_drift_enabled: bool = True
    healing_concept_drift_dry_run: bool = False
    healing_concept_drift_max_per_hour: Annotated[int, Field(ge=0)] = 100
    healing_production_gates_enabled: bool = True
    healing_production_gates_dry_run: bool = False
    healing_production_gates_max_per_hour: Annotated[int, Field(ge=0)] = 100
    healing_sensor_quality_enabled: bool = True
    healing_sensor_quality_dry_run: bool = False
    healing_sensor_quality_max_per_hour: Annotated[int, Field(ge=0)] = 1_000
    healing_training_backlog_enabled: bool = True
    healing_training_backlog_dry_run: bool = False
    healing_training_backlog_max_per_hour: Annotated[int, Field(ge=0)] = 10
    healing_dependency_circuit_enabled: bool = True
    healing_dependency_circuit_dry_run: bool = False
    healing_dependency_circuit_max_per_hour: Annotated[int, Field(ge=0)] = 0
    # Concept drift: over the last `window`, a production version's anomaly rate
    # off its training's by more than `margin` times it, or labels saying more
    # than `false_alarm_target` of its alarms were false, retrain it; with
    # `recalibrate_min_labels` labels or more, a version with the threshold the
    # labels call for is registered in Staging instead.
    # Production gates: a version promoted in the last
    # `healing_rollback_window_hours` goes back to the one it replaced when
    # its anomaly rate is off that one's (the canaries' gates), or its labels
    # say more than `healing_rollback_false_alarm_rate` of its alarms are false.
    healing_rollback_window_hours: Annotated[float, Field(gt=0)] = 48.0
    healing_rollback_anomaly_rate_tolerance: Annotated[float, Field(ge=0)] = 0.2
    healing_rollback_min_predictions: Annotated[int, Field(ge=1)] = 1_000
    healing_rollback_false_alarm_rate: Annotated[float, Field(gt=0, lt=1)] = 0.5
    healing_concept_window_hours: Annotated[float, Field(gt=0)] = 24.0
    healing_concept_margin: Annotated[float, Field(gt=0)] = 1.0
    healing_concept_min_predictions: Annotated[int, Field(ge=1)] = 1_000
    healing_false_alarm_target: Annotated[float, Field(ge=0, lt=1)] = 0.2
    healing_recalibrate_min_labels: Annotated[int, Field(ge=1)] = 30
    # A series with no reading for this many times its usual interval is silent
    # (one watched within `healing_silent_horizon_hours` of its last reading).
    healing_silent_factor: Annotated[float, Field(gt=1)] = 10.0
    healing_silent_horizon_hours: Annotated[float, Field(gt=0)] = 168.0
    # Training: jobs queued for longer than this, or this many failures within
    # the window, raise a platform alert.
    healing_backlog_after_s: Annotated[float, Field(gt=0)] = 1800.0
    healing_failures_alert: Annotated[int, Field(ge=1)] = 10
    healing_failures_window_hours: Annotated[float, Field(gt=0)] = 1.0

    # The fleet's grid (`GET /fleet/sensors`): a sensor with readings but none
    # (stored or predicted) for this long is stale.
    fleet_stale_after_s: Annotated[float, Field(gt=0)] = 3600.0

    # Reading times, epoch seconds, accepted wherever they enter (see the README).
    timestamp_min: Annotated[float, Field(allow_inf_nan=False)] = DEFAULT_TIMESTAMP_MIN
    timestamp_max: Annotated[float, Field(allow_inf_nan=False)] = DEFAULT_TIMESTAMP_MAX

    # The MQTT bridge (`atalaia ingest mqtt`, started by `atalaia up` when
    # mqtt_url is set): topic templates (comma-separated), see the README.
    mqtt_url: str | None = None  # mqtt://host[:port]
    mqtt_topics: Annotated[list[str], NoDecode] = []
    mqtt_qos: Literal[0, 1] = 1
    mqtt_client_id: str = "atalaia-ingest"  # fixed: the broker keeps its session
    mqtt_session_expiry_s: Annotated[int, Field(ge=0)] = 86400
    mqtt_receive_maximum: Annotated[int, Field(ge=1, le=65535)] = 65535
    mqtt_batch_size: Annotated[int, Field(ge=1, le=50_000)] = 20_000
    mqtt_batch_age_ms: Annotated[float, Field(gt=0)] = 200.0
    mqtt_stamp_on_receipt: bool = False  # readings without a time: now, or refused
    mqtt_ingest_url: str | None = None  # default: inference_url
    mqtt_ingest_token: SecretStr | None = None  # default: one signed here

    @field_validator("inference_urls", "mqtt_topics", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        if isinstance(value, str):
            return [url.strip() for url in value.split(",") if url.strip()]
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("mqtt_topics")
    @classmethod
    def _parsed_templates(cls, templates: list[str]) -> list[str]:
        try:
            for template in templates:
                TopicTemplate.parse(template)
        except InvalidInput as exc:
            raise ValueError(exc.detail) from None
        return templates

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url(cls, url: str | None) -> str | None:
        try:
            if url:
                broker_address(url)
        except InvalidInput as exc:
            raise ValueError(exc.detail) from None
        return url

    @field_validator("artifacts_url")
    @classmethod
    def _bucket_url(cls, url: str | None) -> str | None:
        if url:
            bucket_location(url)  # ValueError naming the setting
        return url

    @field_validator("s3_endpoint_url")
    @classmethod
    def _endpoint_url(cls, url: str | None) -> str | None:
        parts = urlsplit(url or "")
        if url and (parts.scheme not in ("http", "https") or not parts.hostname):
            raise ValueError(
                "ATALAIA_S3_ENDPOINT_URL must be http(s)://host[:port], e.g. "
                "http://minio:9000"
            )
        return url

    @field_validator("access_groups")
    @classmethod
    def _checked_groups(cls, groups: dict[str, list[str]]) -> dict[str, list[str]]:
        try:
            check_group_patterns(groups)
        except ValueError as exc:
            raise ValueError(f"ATALAIA_ACCESS_GROUPS: {exc}") from None
        return groups

    @field_validator("database_url")
    @classmethod
    def _sqlite_or_postgresql(cls, url: str) -> str:
        if url and _backend(url) not in ("sqlite", "postgresql"):
            raise ValueError(
                "must be sqlite:///path/to/atalaia.db or postgresql://user@host/db"
            )
        return url

    @model_validator(mode="after")
    def _fill_paths_and_refuse_weak_secrets(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.home / 'atalaia.db'}"
        if self.artifacts_dir is None:
            self.artifacts_dir = self.home / "artifacts"
        if self.cold_dir is None:
            self.cold_dir = self.home / "cold"
        if self.environment == "production":
            _refuse_unsafe_production(self)
        return self

    @field_validator("report_subscriptions")
    @classmethod
    def _unique_subscriptions(
        cls, subscriptions: list[ReportSubscription]
    ) -> list[ReportSubscription]:
        named = Counter(s.name for s in subscriptions)
        twice = sorted(name for name, n in named.items() if n > 1)
        if twice:
            raise ValueError(f"report subscriptions named twice: {', '.join(twice)}")
        return subscriptions

    @field_validator("tls_cert_file", "tls_key_file", "tls_ca_file")
    @classmethod
    def _readable_file(cls, path: Path | None) -> Path | None:
        if path is not None and not (path.is_file() and os.access(path, os.R_OK)):
            raise ValueError(f"cannot read {path}: no such file, or not readable")
        return path

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError(
                "ATALAIA_TLS_CERT_FILE and ATALAIA_TLS_KEY_FILE go together: "
                "set both, or neither"
            )
        if self.tls_cert_file is not None:
            try:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                # No password: an encrypted key fails here rather than prompting.
                context.load_cert_chain(
                    self.tls_cert_file, self.tls_key_file, password=b""
                )
            except ssl.SSLError as exc:
                why = exc.reason or "not PEM"
                raise ValueError(
                    "ATALAIA_TLS_CERT_FILE and ATALAIA_TLS_KEY_FILE are not a PEM "
                    f"certificate and its unencrypted private key ({why})"
                ) from None
        return self

    @model_validator(mode="after")
    def _oidc_audience_with_issuer(self) -> Settings:
        if self.oidc_issuer and not self.oidc_audience:
            raise ValueError(
                "ATALAIA_OIDC_AUDIENCE must be set with ATALAIA_OIDC_ISSUER (the "
                "audience the provider puts in tokens meant for this API)"
            )
        return self

    @model_validator(mode="after")
    def _ordered_timestamp_range(self) -> Settings:
        if not self.timestamp_min < self.timestamp_max:
            raise ValueError(
                "ATALAIA_TIMESTAMP_MIN must be below ATALAIA_TIMESTAMP_MAX"
            )
        return self

    @model_validator(mode="after")
    def _ordered_severities(self) -> Settings:
        if not self.incident_major_score < self.incident_critical_score:
            raise ValueError(
                "ATALAIA_INCIDENT_MAJOR_SCORE must be below "
                "ATALAIA_INCIDENT_CRITICAL_SCORE"
            )
        return self

    @property
    def time_range(self) -> TimeRange:
        return TimeRange(self.timestamp_min, self.timestamp_max)

    @property
    def artifacts_path(self) -> Path:
        assert self.artifacts_dir is not None  # filled by the validator
        return self.artifacts_dir

    @property
    def artifacts_bucket(self) -> BucketLocation | None:
        """Where `artifacts_url` points; None: artifacts stay in `artifacts_path`."""
        return bucket_location(self.artifacts_url) if self.artifacts_url else None

    @property
    def cold_path(self) -> Path:
        assert self.cold_dir is not None  # filled by the validator
        return self.cold_dir

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
        make_private_dir(self.home)
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


class BucketLocation(NamedTuple):
    bucket: str
    prefix: str  # "" or ending with "/"


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PREFIX = re.compile(r"[A-Za-z0-9_.:/-]*")


def bucket_location(url: str) -> BucketLocation:
    """The bucket and key prefix of `s3://bucket[/prefix]`; ValueError otherwise."""
    parts = urlsplit(url)
    prefix = parts.path.strip("/")
    if (
        parts.scheme != "s3"
        or not _BUCKET.fullmatch(parts.netloc)
        or not _PREFIX.fullmatch(prefix)
        or ".." in prefix
        or "//" in prefix
        or parts.query
        or parts.fragment
    ):
        raise ValueError(
            "ATALAIA_ARTIFACTS_URL must be s3://bucket[/prefix]: a bucket of 3 to 63 "
            "lowercase letters, digits, dots and hyphens; a prefix of letters, "
            "digits and _.:-/"
        )
    return BucketLocation(parts.netloc, prefix + "/" if prefix else "")


def _backend(url: str) -> str | None:
    """The database kind of a SQLAlchemy URL (`postgresql`), None if unparsable."""
    try:
        return make_url(url).get_backend_name()
    except ArgumentError:
        return None


MIN_SECRET_BITS = 128
MAKE_SECRET = "make one with `openssl rand -hex 32`"


def secret_entropy_bits(secret: str) -> float:
    """An estimate of `secret`'s entropy: its length × the Shannon entropy of its
    characters' frequencies (`a` × 32 has none; 64 random hex digits ~240 bits)."""
    counts = Counter(secret).values()
    n = len(secret)
    return -n * sum(c / n * math.log2(c / n) for c in counts) if n else 0.0


def _refuse_unsafe_production(settings: Settings) -> None:
    """Production needs authentication, signed with a secret nobody can guess."""
    if not settings.auth_enabled:
        raise ValueError(
            "ATALAIA_AUTH_ENABLED=false is refused in production (every caller "
            "would be an anonymous admin): remove it"
        )
    secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else ""
    if len(secret) < 32 or secret_entropy_bits(secret) < MIN_SECRET_BITS:
        raise ValueError(
            "ATALAIA_JWT_SECRET must be set in production, ≥ 32 characters and "
            f"≥ {MIN_SECRET_BITS} bits of entropy: {MAKE_SECRET}"
        )


def load_settings(**overrides: object) -> Settings:
    """Read the environment; keyword overrides win (for tests and the CLI)."""
    return Settings(**overrides)  # type: ignore[arg-type]
