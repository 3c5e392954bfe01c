"""Registry notices over Redis pub/sub: "series S now serves version V".

The training service publishes a notice after each registry change it commits;
every inference replica listens in a daemon thread and reloads the series at
once. A notice lost while Redis is down is no harm: the replicas also follow the
registry's change feed in the database.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict

import orjson
import structlog
from redis.client import PubSub
from redis.exceptions import RedisError

from atalaia.adapters.cache.link import RedisLink
from atalaia.core.registry import RegistryNotice

log = structlog.get_logger()

CHANNEL = "registry"
FIRST_BACKOFF_S = 0.1
MAX_BACKOFF_S = 5.0
_WAIT_S = 0.5  # how long one wait for a message lasts (the stop check's period)
_CONFIRM_S = 1.0  # how long Redis may take to confirm a subscription


def encode_notice(notice: RegistryNotice) -> bytes:
    return orjson.dumps(asdict(notice))


def decode_notice(data: bytes) -> RegistryNotice | None:
    """The notice in `data`, or None for anything else."""
    try:
        fields = orjson.loads(data)
        return RegistryNotice(
            str(fields["series_id"]),
            int(fields["version"]),
            str(fields["stage"]),
            str(fields["event"]),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def publish_notice(link: RedisLink, notice: RegistryNotice) -> bool:
    """Tell every listening replica; False when Redis is down."""
    channel = link.key(CHANNEL)
    return link.run(
        lambda client: client.publish(channel, encode_notice(notice)) >= 0, False
    )


class NoticeListener:
    """Hands every notice to `handle`, in a daemon thread; reconnects with backoff."""

    def __init__(self, link: RedisLink, handle: Callable[[RegistryNotice], None]):
        self.link = link
        self.handle = handle
        self.subscribed = threading.Event()
        self._pubsub: PubSub | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="atalaia-notices", daemon=True
        )

    def start(self) -> None:
        """Subscribe now (once; the thread retries), then listen in the thread."""
        self._subscribe()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5.0)
        self._drop()

    def _subscribe(self) -> PubSub | None:
        """Subscribe, and wait until Redis confirms: from then on no notice is
        missed."""
        pubsub = self.link.pubsub()
        try:
            pubsub.subscribe(self.link.key(CHANNEL))
            confirmed = pubsub.get_message(timeout=_CONFIRM_S)
            if confirmed is None or confirmed["type"] != "subscribe":
                raise RedisError(f"subscription not confirmed: {confirmed!r}")
        except (RedisError, OSError) as exc:
            pubsub.close()
            self.link.failed(exc)
            return None
        self._pubsub = pubsub
        self.subscribed.set()
        self.link.succeeded()
        return pubsub

    def _drop(self) -> None:
        self.subscribed.clear()
        if self._pubsub is not None:
            self._pubsub.close()
            self._pubsub = None

    def _run(self) -> None:
        backoff = FIRST_BACKOFF_S
        while not self._stop.is_set():
            pubsub = self._pubsub
            if pubsub is None:
                pubsub = self._subscribe()
                if pubsub is None:
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_S)
                    continue
                log.info("redis.notices_subscribed")
                backoff = FIRST_BACKOFF_S
            try:
                message = pubsub.get_message(timeout=_WAIT_S)
            except (RedisError, OSError) as exc:
                self.link.failed(exc)
                self._drop()
                continue
            if message is not None and message.get("type") == "message":
                self._deliver(message["data"])

    def _deliver(self, data: bytes) -> None:
        notice = decode_notice(data)
        if notice is None:
            log.warning("redis.notice_ignored", data=data[:200])
            return
        try:
            self.handle(notice)
        except Exception as exc:  # the listener outlives any one notice
            log.error("redis.notice_failed", series_id=notice.series_id, exc_info=exc)
