"""Per-principal rate limits: management routes and sensor (prediction, ingest) routes.

A management request is counted in Redis when it is configured, so every
process shares the limit (one round trip; these routes touch the database
anyway), else in this process. A sensor request never waits for I/O: it is
counted in memory and a background thread adds the counts to Redis every
`sync_s`, learning the other processes' hits at the same time. Admins (the
operators' and automation's tokens) are not limited.
"""

from __future__ import annotations

import threading
import time

from atalaia.adapters.cache import SharedCounters
from atalaia.api.common.auth import Principal, Role
from atalaia.core.ratelimit import RateRule, Window, Windows
from atalaia.settings import Settings

MANAGEMENT = "principal_requests_per_minute"
SENSOR = "principal_sensor_requests_per_minute"
_ADMIN = Role.ADMIN  # a module global: cheaper than the enum's attribute


class RateLimiter:
    def __init__(
        self,
        management: RateRule,
        sensor: RateRule,
        *,
        counters: SharedCounters | None = None,
        sync_s: float = 1.0,
    ) -> None:
        self.management = Windows(management)
        self.sensor = Windows(sensor)
        self.counters = counters
        self.sync_s = sync_s
        self._sensor_limit = sensor.limit
        self._sensor_open = self.sensor.open  # swept in place, never replaced
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, counters: SharedCounters | None
    ) -> RateLimiter:
        return cls(
            RateRule(MANAGEMENT, settings.rate_limit_per_min),
            RateRule(SENSOR, settings.rate_limit_sensor_per_min),
            counters=counters,
            sync_s=settings.rate_limit_sync_s,
        )

    def check(self, principal: Principal) -> None:
        """Count a management request; raise RateLimited past the limit."""
        rule = self.management.rule
        if not rule.on or principal.role is _ADMIN:
            return
        subject = principal.subject
        shared = None
        if self.counters is not None:
            shared = self.counters.add(f"{rule.name}:{subject}", 1, rule.window_s)
        if shared is None:  # no Redis, or it is down: this process's count
            now = time.monotonic()
            window = self.management.hit(subject, now)
            shared = window.hits, window.ends_at - now
        hits, seconds_left = shared
        if hits > rule.limit:
            raise rule.refuse(subject, seconds_left)

    def check_sensor(self, principal: Principal) -> None:
        """Count a sensor request in memory (the hot path: no I/O, no clock)."""
        if not self._sensor_limit or principal.role is _ADMIN:
            return
        window = self._sensor_open.get(principal.subject)
        if window is None:  # the sync thread closes ended windows
            window = self.sensor.current(principal.subject, time.monotonic())
        window.hits += 1
        window.unsynced += 1
        if window.hits > self._sensor_limit:
            rule = self.sensor.rule
            raise rule.refuse(principal.subject, window.ends_at - time.monotonic())

    # -- sensor counts in the background ----------------------------------------

    def start(self) -> None:
        """Close ended sensor windows and share their counts, in a daemon thread."""
        if self._sensor_limit and self._thread is None:
            self._thread = threading.Thread(
                target=self._sync_forever, name="atalaia-rate-sync", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)

    def _sync_forever(self) -> None:
        while not self._stop.wait(self.sync_s):
            self.sync()

    def sync(self) -> None:
        """Drop ended sensor windows; add the others' new hits to Redis and take
        back the total of every process."""
        now = time.monotonic()
        self.sensor.sweep(now)
        for subject, window in list(self.sensor.open.items()):
            if window.unsynced:
                self._share(subject, window)

    def _share(self, subject: str, window: Window) -> None:
        if self.counters is None:
            window.unsynced = 0
            return
        rule = self.sensor.rule
        hits = window.unsynced
        window.unsynced -= hits  # request threads may add meanwhile
        shared = self.counters.add(f"{rule.name}:{subject}", hits, rule.window_s)
        if shared is None:
            return  # Redis is down: this process's count goes on alone
        total, _seconds_left = shared
        window.hits = max(window.hits, total + window.unsynced)
