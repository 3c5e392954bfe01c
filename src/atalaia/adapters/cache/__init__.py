"""Redis, optional: a shared L2 of served models, registry notices, shared counters.

Every call is best effort behind one circuit breaker per process (`RedisLink`):
without Redis, inference serves from memory and the database, notices are
replaced by the database's change feed and rate limits are counted per process.
"""

from atalaia.adapters.cache.counters import SharedCounters
from atalaia.adapters.cache.link import Breaker, RedisLink
from atalaia.adapters.cache.models import ModelCache
from atalaia.adapters.cache.notices import NoticeListener, publish_notice

__all__ = [
    "Breaker",
    "ModelCache",
    "NoticeListener",
    "RedisLink",
    "SharedCounters",
    "publish_notice",
]
