"""The predictor's threads: the change feed (and the snapshot), the counts,
the rebuild of streaming models' state, the incidents' signals."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from atalaia.core.ports import ServingStore, SignalSink
from atalaia.errors import ConcurrentChange, DependencyUnavailable
from atalaia.services.inference.candidates import Candidates
from atalaia.services.inference.follower import TableFollower
from atalaia.services.inference.health import DatabaseHealth
from atalaia.services.inference.signals import IncidentSignals
from atalaia.services.inference.snapshot import Snapshot
from atalaia.services.prediction_stats import PredictionTally

log = structlog.get_logger()

WATCH_REFRESH_S = 60.0


@dataclass(eq=False, kw_only=True)
class BackgroundThreads:
    """ "atalaia-feed" writes the snapshot after a full load and polls the change
    feed every `poll_s` (every `health.retry_s` while the database is down);
    "atalaia-counts" flushes the prediction counts (and the rollouts'
    counters) every `flush_s`, apart from
    the feed, so that a slow write of many series' counts never delays a
    promotion (while the database is down the counts wait in memory), and
    writes the series' stream state to disk; "atalaia-streams" rebuilds the
    cold streaming models' state (`rebuild`) every `poll_s` while the database
    is up, apart from the feed too (a fleet's rebuild takes seconds);
    "atalaia-signals" writes the queued anomalies and recoveries every
    `signals_s` (`IncidentSignals`) and reads the series anomalous in live
    incidents every WATCH_REFRESH_S.

    A step that finds the database unavailable reports it to `health`; any
    other failure is a bug: logged with its traceback, the thread goes on.
    """

    follower: TableFollower
    snapshot: Snapshot
    tally: PredictionTally
    candidates: Candidates
    sink: ServingStore
    health: DatabaseHealth
    rebuild: Callable[[], object]
    signals: IncidentSignals
    signal_sink: SignalSink
    poll_s: float
    flush_s: float
    signals_s: float
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _threads: list[threading.Thread] = field(default_factory=list, init=False)

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._follow, name="atalaia-feed", daemon=True),
            threading.Thread(
                target=self._flush_counts, name="atalaia-counts", daemon=True
            ),
            threading.Thread(target=self._rebuild, name="atalaia-streams", daemon=True),
            threading.Thread(
                target=self._write_signals, name="atalaia-signals", daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5.0)

    def _follow(self) -> None:
        while not self._stop.wait(self.poll_s):
            self._run("inference.snapshot_crashed", self.snapshot.save_if_due)
            if self.health.retry_due():
                self._run("inference.feed_crashed", self.follower.poll_changes)

    def _flush_counts(self) -> None:
        while not self._stop.wait(self.flush_s):
            self._run("inference.snapshot_crashed", self.snapshot.save_streams)
            if self.health.ok:
                self._run(
                    "inference.counts_crashed", lambda: self.tally.flush(self.sink)
                )
                self._run(
                    "inference.rollout_counts_crashed",
                    lambda: self.candidates.flush(self.sink),
                )

    def _rebuild(self) -> None:
        while not self._stop.wait(self.poll_s):
            if self.health.ok:
                self._run("inference.rebuild_crashed", self.rebuild)

    def _write_signals(self) -> None:
        watched = -WATCH_REFRESH_S
        while not self._stop.wait(self.signals_s):
            if not self.health.ok:
                continue
            if time.monotonic() - watched >= WATCH_REFRESH_S:
                watched = time.monotonic()
                self._run(
                    "inference.watch_crashed",
                    lambda: self.signals.follow(self.signal_sink.live_series()),
                )
            self._run(
                "inference.signals_crashed",
                lambda: self.signals.flush(self.signal_sink),
            )

    def _run(self, event: str, step: Callable[[], object]) -> None:
        try:
            step()
        except DependencyUnavailable as exc:
            self.health.down(exc)
        except ConcurrentChange:
            pass  # lost a race with another writer: the next round tries again
        except Exception:
            log.error(event, exc_info=True)
            self._stop.wait(self.health.retry_s)  # not a tight loop of tracebacks
