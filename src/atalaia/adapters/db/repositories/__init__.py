"""Repositories over a Session; they return core entities, never ORM rows."""

from atalaia.adapters.db.repositories.alerts import AlertConfig, Outbox, SignalLogs
from atalaia.adapters.db.repositories.anomalies import AnomalyLog
from atalaia.adapters.db.repositories.assets import AssetStore, StoredAsset
from atalaia.adapters.db.repositories.audit import AuditEntry, AuditFilter, AuditLog
from atalaia.adapters.db.repositories.claims import TrainingClaims
from atalaia.adapters.db.repositories.feedback import FeedbackStore
from atalaia.adapters.db.repositories.healing import (
    ActionFilter,
    HealingAction,
    HealingLog,
    HealingRules,
)
from atalaia.adapters.db.repositories.healing_signals import PlatformSignals
from atalaia.adapters.db.repositories.incidents import IncidentFilter, IncidentStore
from atalaia.adapters.db.repositories.jobs import JobStore
from atalaia.adapters.db.repositories.models import ModelStore
from atalaia.adapters.db.repositories.operations import (
    FleetRegistry,
    OperationStore,
)
from atalaia.adapters.db.repositories.readings import (
    IngestResult,
    ReadingStore,
    SeriesSummary,
)
from atalaia.adapters.db.repositories.report_files import (
    ReportFileNotFound,
    ReportFileStore,
)
from atalaia.adapters.db.repositories.reports import ReportQueries
from atalaia.adapters.db.repositories.rollouts import NewRollout, RolloutStore
from atalaia.adapters.db.repositories.rollups import RollupStore
from atalaia.adapters.db.repositories.uploads import UploadStore

__all__ = [
    "ActionFilter",
    "AlertConfig",
    "AnomalyLog",
    "AssetStore",
    "AuditEntry",
    "AuditFilter",
    "AuditLog",
    "FeedbackStore",
    "FleetRegistry",
    "HealingAction",
    "HealingLog",
    "HealingRules",
    "IncidentFilter",
    "IncidentStore",
    "IngestResult",
    "JobStore",
    "ModelStore",
    "OperationStore",
    "Outbox",
    "PlatformSignals",
    "ReadingStore",
    "ReportFileNotFound",
    "ReportFileStore",
    "ReportQueries",
    "NewRollout",
    "RolloutStore",
    "RollupStore",
    "SeriesSummary",
    "StoredAsset",
    "SignalLogs",
    "TrainingClaims",
    "UploadStore",
]
