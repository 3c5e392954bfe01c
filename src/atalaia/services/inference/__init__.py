"""Serving: warm loading, the registry change feed, and the fallback chain.

memory (the model table) → Redis (the shared L2 cache, for a series missing from
memory) → database → on-disk snapshot (at start, when the registry is
unreachable) → z-score on the series' history (low confidence) → a conservative
default (no anomaly, low confidence). Nothing on the scoring path waits for the
database or Redis while it is known to be down, nor touches them for a series in
memory.

`Predictor` is the face of the parts, each in its module: `served` (the table
and its lock, the load state), `follower` (warm load, reloads, change feed and
notices), `lookup` (series a request misses), `l2` (the Redis cache),
`snapshot`, `health` (is the database up) and `background` (the two threads).
Its sources are the core's ports (`ServingStore`, `SharedModelCache`).
Readings are scored through the chain by `data_plane`, for every caller.
"""

from atalaia.services.inference.predictor import Predictor
from atalaia.services.inference.served import LoadState

__all__ = ["LoadState", "Predictor"]
