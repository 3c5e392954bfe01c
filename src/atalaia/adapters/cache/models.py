"""The shared L2 cache of served models: one Redis string per series.

A value packs the version, centre, scale and threshold (little-endian int64 and
three float64), the lengths of the algorithm's name (one byte) and of a heavy
model's artifact key (two bytes), the stuck guard's limit (uint32, 0: none), the
length of a streaming model's packed params and state (uint32, 0: none), the
name, the key, the stream's bytes, then a seasonal model's stored band
(`PhaseBand.to_bytes`): about 50 bytes for a flat model, a few hundred for a
streaming one, 1.4 kB for an hour-of-week one. Keys carry the layout's number,
so a value of another layout is never read as this one. The training
service writes a series' entry after each registry change it commits; inference
replicas write the models they read from the database. Entries expire after
`ttl_s` (0: never), so series nobody serves any more leave Redis by themselves.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import redis

from atalaia.adapters.cache.link import RedisLink
from atalaia.core.detectors.bands import SERVED_ALGORITHMS
from atalaia.core.serving import ServedModel

_PACKED = struct.Struct("<qdddBHII")
_LAYOUT = "model5"  # the key's prefix: this layout of values
# MGET at most this many keys at once: Redis serves one command at a time.
_CHUNK = 10_000


def encode_model(model: ServedModel) -> bytes:
    """
    >>> encode_model(ServedModel("s", 2, "zscore", 0.5, 0.1, 3.0))[_PACKED.size:]
    b'zscore'
    """
    name = model.algorithm.encode()
    artifact = (model.artifact or "").encode()
    stream = model.stream or b""
    packed = _PACKED.pack(
        model.version, model.center, model.scale, model.threshold, len(name),
        len(artifact), model.stuck_after, len(stream),
    )  # fmt: skip
    return packed + name + artifact + stream + (model.band or b"")


def decode_model(series_id: str, data: bytes) -> ServedModel | None:
    """The model packed in `data`; None when it is not one this version can serve."""
    if len(data) <= _PACKED.size:
        return None
    version, center, scale, threshold, length, key_length, stuck, stream_length = (
        _PACKED.unpack_from(data)
    )  # fmt: skip
    end = _PACKED.size + length
    algorithm = data[_PACKED.size : end].decode(errors="replace")
    key_end = end + key_length
    artifact = data[end:key_end].decode(errors="replace") or None
    stream_end = key_end + stream_length
    if algorithm not in SERVED_ALGORITHMS or version < 1 or stream_end > len(data):
        return None
    stream = data[key_end:stream_end] or None
    band = data[stream_end:] or None
    if band is not None and (len(band) < 16 or len(band) % 8):  # period + pairs
        return None
    return ServedModel(
        series_id, version, algorithm, center, scale, threshold, band, artifact,
        stuck, stream,
    )  # fmt: skip


class ModelCache:
    """Served models by series id, in Redis; every call is best effort."""

    def __init__(self, link: RedisLink, *, ttl_s: int) -> None:
        self.link = link
        self.ttl_s = ttl_s or None

    def _key(self, series_id: str) -> str:
        return self.link.key(_LAYOUT, series_id)

    @property
    def ready(self) -> bool:
        """Would a call try Redis now (it is not left alone after a failure)?"""
        return self.link.breaker.ready()

    def get_many(self, series_ids: Sequence[str]) -> dict[str, ServedModel]:
        """The cached models of those series that have one (none if Redis is down)."""

        def read(client: redis.Redis) -> list[Any]:
            values: list[Any] = []
            for at in range(0, len(series_ids), _CHUNK):
                keys = [self._key(s) for s in series_ids[at : at + _CHUNK]]
                values += client.mget(keys)
            return values

        values: list[Any] = self.link.run(read, [])
        found = {}
        for series_id, value in zip(series_ids, values, strict=False):
            model = decode_model(series_id, value) if value else None
            if model is not None:
                found[series_id] = model
        return found

    def put_many(self, models: Sequence[ServedModel], *, overwrite: bool) -> None:
        """Write these models; with `overwrite` false, only where no entry exists.

        Whoever read a model from the registry's truth after a change overwrites;
        a replica that read one on a cache miss does not, so that it never
        replaces an entry the training service wrote meanwhile.
        """
        if not models:
            return

        def write(client: redis.Redis) -> None:
            pipe = client.pipeline(transaction=False)
            for model in models:
                pipe.set(
                    self._key(model.series_id),
                    encode_model(model),
                    ex=self.ttl_s,
                    nx=not overwrite,
                )
            pipe.execute()

        self.link.run(write, None)

    def forget(self, series_ids: Sequence[str]) -> None:
        """Drop the entries of series that no longer have a served model."""
        if series_ids:
            keys = [self._key(s) for s in series_ids]
            self.link.run(lambda client: client.delete(*keys), None)
