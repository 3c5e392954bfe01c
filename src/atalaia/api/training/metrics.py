"""Figures of the registry and of the feedback labels, read from the database
when scraped: fleet-wide counts by stage or verdict, nothing per series; and
how far the database's WAL archive is behind (`WalArchive`)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import product

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import FeedbackStore, ModelStore
from atalaia.adapters.db.wal_archive import wal_archive_status
from atalaia.core.registry import Stage, check_transition
from atalaia.errors import DependencyUnavailable, VersionNotPromotable

Sessions = Callable[[], AbstractContextManager[Session]]

# Versions per stage scan the stage index (about 0.5 s per 3 million versions
# on PostgreSQL): counted again at most this often.
FIGURES_TTL_S = 300.0
FEEDBACK_WINDOW = timedelta(days=7)
# A move's ledger entry is timed when written and may commit up to this later.
MOVES_OVERLAP = timedelta(minutes=2)
NEW = "none"  # the from_stage of a new version
# What `WalArchive` exports (on PostgreSQL with archive_mode on only).
WAL_ARCHIVE_AGE = "postgres_wal_archive_age_seconds"
WAL_UNARCHIVED = "postgres_wal_unarchived_bytes"
WAL_ARCHIVE_FAILURES = "postgres_wal_archive_failures"  # a counter: + _total
WAL_ARCHIVE_METRICS = (WAL_ARCHIVE_AGE, WAL_UNARCHIVED, f"{WAL_ARCHIVE_FAILURES}_total")
# (labelled an anomaly, flagged by the models) → verdict
VERDICTS = {
    (True, True): "confirmed",
    (False, True): "false_alarm",
    (True, False): "missed",
    (False, False): "normal",
}


class RegistryFigures(Collector):
    """`model_versions{stage}` and `model_feedback_labels{verdict}` (the labels
    given in the last 7 days), counted again at most every `ttl_s`; nothing
    while the database cannot be read."""

    def __init__(
        self,
        sessions: Sessions,
        *,
        ttl_s: float = FIGURES_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions, self._ttl_s, self._clock = sessions, ttl_s, clock
        self._read_at = -math.inf
        self._stages: dict[Stage, int] | None = None
        self._verdicts: dict[tuple[bool, bool], int] = {}

    def collect(self) -> Iterator[Metric]:
        if self._clock() - self._read_at >= self._ttl_s:
            self._read()
        if self._stages is None:
            return
        versions = GaugeMetricFamily(
            "model_versions", "Model versions in the registry", labels=["stage"]
        )
        for stage in Stage:
            versions.add_metric([stage.value], self._stages.get(stage, 0))
        yield versions
        labels = GaugeMetricFamily(
            "model_feedback_labels",
            "Feedback labels given in the last 7 days by verdict: confirmed (an "
            "anomaly the models flagged), false_alarm (flagged, labelled normal), "
            "missed (labelled an anomaly, not flagged), normal (neither)",
            labels=["verdict"],
        )
        for key, verdict in VERDICTS.items():
            labels.add_metric([verdict], self._verdicts.get(key, 0))
        yield labels

    def _read(self) -> None:
        since = datetime.now(UTC) - FEEDBACK_WINDOW
        try:
            with self._sessions() as session:
                stages = ModelStore(session).stage_counts()
                verdicts = FeedbackStore(session).verdicts(since=since)
        except DependencyUnavailable:
            self._stages = None  # no stale figures: asked again next scrape
            return
        self._stages, self._verdicts = stages, verdicts
        self._read_at = self._clock()


class StageMoves(Collector):
    """`model_stage_moves_total{from_stage, to_stage}`: the registry ledger's
    entries written since this collector was made (from_stage "none": a newly
    trained version), read on from the previous scrape."""

    def __init__(
        self,
        sessions: Sessions,
        *,
        overlap: timedelta = MOVES_OVERLAP,
        now: Callable[[], datetime] = partial(datetime.now, UTC),
    ) -> None:
        self._sessions, self._overlap, self._now = sessions, overlap, now
        # Every series from the start: a counter born at 1 loses that increase.
        self._counts = dict.fromkeys(legal_moves(), 0)
        self._seen: dict[int, datetime] = {}  # seq → at, within the overlap
        self._started = self._read_to = now()
        self._lock = threading.Lock()  # scrapes at once count a move once

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            try:
                self._read()
            except DependencyUnavailable:
                pass  # the counts so far; read on from there next time
            counts = sorted(self._counts.items())
        family = CounterMetricFamily(
            "model_stage_moves",
            'Registry stage changes by stage left ("none": a new version) and entered',
            labels=["from_stage", "to_stage"],
        )
        for (before, after), n in counts:
            family.add_metric([before, after], n)
        yield family

    def _read(self) -> None:
        now = self._now()
        with self._sessions() as session:
            moves = ModelStore(session).moves_since(self._read_to - self._overlap)
        for move in moves:
            if move.seq in self._seen:
                continue
            self._seen[move.seq] = move.at
            if move.at >= self._started:  # not what was written before
                before = move.from_stage.value if move.from_stage else NEW
                key = (before, move.to_stage.value)
                self._counts[key] = self._counts.get(key, 0) + 1
        self._read_to = now
        # Entries older than the next read's start will not be read again.
        horizon = now - self._overlap
        self._seen = {seq: at for seq, at in self._seen.items() if at >= horizon}


class WalArchive(Collector):
    """PostgreSQL's continuous archiving, read when scraped (the RPO of a
    point-in-time recovery): `postgres_wal_archive_age_seconds`,
    `postgres_wal_unarchived_bytes` and `postgres_wal_archive_failures_total`.
    Nothing on SQLite, with archiving off or while the database cannot be read.
    """

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    def collect(self) -> Iterator[Metric]:
        try:
            with self._sessions() as session:
                status = wal_archive_status(session)
        except DependencyUnavailable:
            return
        if status is None:
            return
        yield GaugeMetricFamily(
            WAL_ARCHIVE_AGE,
            "Seconds since PostgreSQL last archived a WAL file (since it started, "
            "if none was)",
            value=status.age_s,
        )
        if status.unarchived_bytes is not None:
            yield GaugeMetricFamily(
                WAL_UNARCHIVED,
                "WAL written past the last archived segment: lost with the server",
                value=status.unarchived_bytes,
            )
        yield CounterMetricFamily(
            WAL_ARCHIVE_FAILURES,
            "Failed attempts to archive a WAL file",
            value=status.failures,
        )


def legal_moves() -> list[tuple[str, str]]:
    """(from_stage, to_stage) of every move the registry allows, a new
    version's arrival in Staging first."""
    moves = [(NEW, Stage.STAGING.value)]
    for before, after in product(Stage, Stage):
        try:
            check_transition("", 0, before, after)
        except VersionNotPromotable:
            continue
        moves.append((before.value, after.value))
    return moves
