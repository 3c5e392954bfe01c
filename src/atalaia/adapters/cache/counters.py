"""Hit counters shared by every process: a fixed window per key in Redis.

INCRBY, EXPIRE NX and PTTL in one MULTI transaction: the first hit of a window
creates the key and starts its expiry, the window ends when the key expires.
"""

from __future__ import annotations

import redis

from atalaia.adapters.cache.link import RedisLink


class SharedCounters:
    def __init__(self, link: RedisLink) -> None:
        self.link = link

    def add(self, name: str, hits: int, window_s: int) -> tuple[int, float] | None:
        """Add `hits` to counter `name`: (hits in its window so far, seconds left
        in the window), or None when Redis is down."""
        key = self.link.key("rate", name)

        def count(client: redis.Redis) -> tuple[int, float]:
            pipe = client.pipeline(transaction=True)
            pipe.incrby(key, hits)
            pipe.expire(key, window_s, nx=True)
            pipe.pttl(key)
            total, _, left_ms = pipe.execute()
            return int(total), max(int(left_ms), 0) / 1000

        return self.link.run(count, None)
