"""The Redis adapters on the machine's real Redis: L2 models, counters, notices."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import numpy as np
import pytest
import redis

from atalaia.adapters.cache import (
    Breaker,
    ModelCache,
    NoticeListener,
    RedisLink,
    SharedCounters,
    publish_notice,
)
from atalaia.adapters.cache.models import decode_model, encode_model
from atalaia.core.detectors.phases import PhaseBand
from atalaia.core.registry import RegistryNotice
from atalaia.core.serving import ServedModel
from fixtures.api import wait_for
from fixtures.redis_server import through
from fixtures.tcp_proxy import TcpProxy

A = ServedModel("sensor_001_radial", 3, "zscore", 0.5, 0.1, 3.0)
B = ServedModel("sensor_001_axial", 1, "robust", -2.0, 0.25, 3.5)


def open_link(url: str, prefix: str, retry_s: float = 2.0) -> RedisLink:
    return RedisLink(url, prefix=prefix, timeout_s=0.25, retry_s=retry_s)


@pytest.fixture
def link(redis_url: str, redis_prefix: str) -> Iterator[RedisLink]:
    opened = open_link(redis_url, redis_prefix)
    yield opened
    opened.close()


@pytest.fixture
def cut_link(
    redis_url: str, redis_prefix: str, redis_proxy: TcpProxy
) -> Iterator[RedisLink]:
    """A link through the proxy (retrying after 0.2 s), to cut and restore."""
    opened = open_link(through(redis_url, redis_proxy), redis_prefix, retry_s=0.2)
    yield opened
    opened.close()


class TestModelEncoding:
    def test_round_trips_a_model(self) -> None:
        assert decode_model(A.series_id, encode_model(A)) == A

    def test_round_trips_a_seasonal_model(self) -> None:
        band = PhaseBand(
            3600.0, 0.0, np.arange(4, dtype=np.float32), np.ones(4, np.float32)
        )
        seasonal = ServedModel("s", 2, "seasonal", 0.5, 0.1, 4.0, band.to_bytes())

        assert decode_model("s", encode_model(seasonal)) == seasonal
        cut = encode_model(seasonal)[:-3]  # a band whose pairs do not add up
        assert decode_model("s", cut) is None

    def test_round_trips_a_heavy_model_with_its_artifact_key(self) -> None:
        band = PhaseBand(
            3600.0, 0.0, np.arange(4, dtype=np.float32), np.ones(4, np.float32)
        )
        forest = ServedModel(
            "s", 3, "isolation_forest", 0.5, 0.1, 3.9, band.to_bytes(),
            "models/s/0123abcd.npz",
        )  # fmt: skip
        flat = ServedModel("s", 3, "isolation_forest", 0.5, 0.1, 3.9, None, "k.npz")

        assert decode_model("s", encode_model(forest)) == forest
        assert decode_model("s", encode_model(flat)) == flat

    def test_round_trips_a_stuck_guard(self) -> None:
        guarded = ServedModel("s", 2, "robust", 0.5, 0.1, 3.5, stuck_after=12)

        assert decode_model("s", encode_model(guarded)) == guarded

    def test_round_trips_a_streaming_models_packed_state(self) -> None:
        band = PhaseBand(
            3600.0, 0.0, np.arange(4, dtype=np.float32), np.ones(4, np.float32)
        )
        packed = bytes(range(256)) * 2  # every byte value, a few hundred bytes
        streaming = ServedModel(
            "s", 4, "seasonal", 0.5, 0.1, 4.0, band.to_bytes(), None, 0, packed
        )
        alone = ServedModel("s", 4, "robust", 0.5, 0.1, 3.5, stream=b"\x00")

        assert decode_model("s", encode_model(streaming)) == streaming
        assert decode_model("s", encode_model(alone)) == alone
        cut = encode_model(alone)[:-1]  # its stream's length runs past the value
        assert decode_model("s", cut) is None

    def test_refuses_what_it_cannot_serve(self) -> None:
        unknown = ServedModel("s", 1, "prophet", 0.0, 1.0, 3.0)

        assert decode_model("s", encode_model(unknown)) is None
        assert decode_model("s", b"short") is None


class TestModelCache:
    def test_returns_the_models_it_holds(self, link: RedisLink) -> None:
        cache = ModelCache(link, ttl_s=60)

        cache.put_many([A, B], overwrite=True)

        assert cache.get_many([A.series_id, "nowhere", B.series_id]) == {
            A.series_id: A,
            B.series_id: B,
        }

    def test_a_miss_writer_never_replaces_an_entry(self, link: RedisLink) -> None:
        cache = ModelCache(link, ttl_s=60)
        newer = ServedModel(A.series_id, 4, "zscore", 0.6, 0.1, 3.0)
        cache.put_many([newer], overwrite=True)

        cache.put_many([A], overwrite=False)
        kept = cache.get_many([A.series_id])
        cache.put_many([A], overwrite=True)

        assert kept == {A.series_id: newer}
        assert cache.get_many([A.series_id]) == {A.series_id: A}

    def test_forgets_series_and_expires_entries(
        self, link: RedisLink, redis_prefix: str
    ) -> None:
        cache = ModelCache(link, ttl_s=60)
        cache.put_many([A, B], overwrite=True)

        cache.forget([A.series_id])

        assert cache.get_many([A.series_id, B.series_id]) == {B.series_id: B}
        assert 0 < link.client.ttl(f"{redis_prefix}model5:{B.series_id}") <= 60

    def test_never_reads_a_value_of_an_older_layout(
        self, link: RedisLink, redis_prefix: str
    ) -> None:
        # Layout 4 packed no stream; its keys are not this layout's.
        old = struct.pack("<qdddBHI", 3, 0.5, 0.1, 3.0, 6, 0, 0) + b"zscore"
        link.client.set(f"{redis_prefix}model4:{A.series_id}", old, ex=60)

        assert ModelCache(link, ttl_s=60).get_many([A.series_id]) == {}

    def test_answers_nothing_at_once_while_redis_is_cut(
        self, cut_link: RedisLink, redis_proxy: TcpProxy
    ) -> None:
        cache = ModelCache(cut_link, ttl_s=60)
        cache.put_many([A], overwrite=True)
        redis_proxy.cut()

        missing = cache.get_many([A.series_id])
        cache.put_many([B], overwrite=True)  # no error either

        assert missing == {}
        assert not cut_link.breaker.closed
        assert not cache.ready  # the breaker leaves Redis alone for now

        redis_proxy.restore()
        assert wait_for(lambda: cache.get_many([A.series_id]) or None) == {
            A.series_id: A
        }
        assert cut_link.breaker.closed


class TestBreaker:
    def test_lets_one_trial_through_per_interval_after_a_failure(self) -> None:
        breaker = Breaker(retry_s=60)
        assert breaker.allow()

        breaker.failed()

        assert not breaker.allow()
        assert not breaker.ready()
        breaker.succeeded()
        assert breaker.allow()

    def test_a_trial_holds_off_the_other_callers(self) -> None:
        breaker = Breaker(retry_s=0.0)
        breaker.failed()
        breaker.retry_s = 60  # the trial taken next pushes the next one away

        assert breaker.allow()
        assert not breaker.allow()


class TestSharedCounters:
    def test_processes_share_one_count_per_window(
        self, redis_url: str, redis_prefix: str
    ) -> None:
        one = open_link(redis_url, redis_prefix)
        two = open_link(redis_url, redis_prefix)
        try:
            first = SharedCounters(one).add("alice", 2, 60)
            second = SharedCounters(two).add("alice", 3, 60)
            other = SharedCounters(two).add("bob", 1, 60)
        finally:
            one.close()
            two.close()

        assert first is not None
        assert second is not None
        assert other is not None
        assert (first[0], second[0], other[0]) == (2, 5, 1)
        assert 0 < second[1] <= 60

    def test_answers_none_while_redis_is_cut(
        self, cut_link: RedisLink, redis_proxy: TcpProxy
    ) -> None:
        redis_proxy.cut()

        assert SharedCounters(cut_link).add("alice", 1, 60) is None


class TestNotices:
    def test_a_listener_hears_what_is_published(self, link: RedisLink) -> None:
        heard: list[RegistryNotice] = []
        listener = NoticeListener(link, heard.append)
        listener.start()
        try:
            notice = RegistryNotice("s", 2, "production", "promoted")
            assert publish_notice(link, notice)
            wait_for(lambda: heard or None)
        finally:
            listener.stop()

        assert heard == [notice]

    def test_ignores_messages_that_are_not_notices(
        self, link: RedisLink, redis_prefix: str
    ) -> None:
        heard: list[RegistryNotice] = []
        listener = NoticeListener(link, heard.append)
        listener.start()
        try:
            link.client.publish(f"{redis_prefix}registry", b"{not json")
            publish_notice(link, RegistryNotice("s", 1, "production", "promoted"))
            wait_for(lambda: heard or None)
        finally:
            listener.stop()

        assert [n.version for n in heard] == [1]

    def test_resubscribes_when_redis_comes_back(
        self, cut_link: RedisLink, link: RedisLink, redis_proxy: TcpProxy
    ) -> None:
        heard: list[RegistryNotice] = []
        listener = NoticeListener(cut_link, heard.append)
        listener.start()
        try:
            assert listener.subscribed.is_set()
            redis_proxy.cut()
            wait_for(lambda: not listener.subscribed.is_set() or None)
            redis_proxy.restore()
            wait_for(lambda: listener.subscribed.is_set() or None)

            publish_notice(link, RegistryNotice("s", 7, "production", "rolled_back"))
            wait_for(lambda: heard or None)
        finally:
            listener.stop()

        assert heard[0].event == "rolled_back"

    def test_publishing_without_redis_says_so(
        self, cut_link: RedisLink, redis_proxy: TcpProxy
    ) -> None:
        redis_proxy.cut()

        assert not publish_notice(
            cut_link, RegistryNotice("s", 1, "production", "promoted")
        )


def test_the_client_never_retries_by_itself(link: RedisLink) -> None:
    # The breaker decides when to try again; a client retrying on its own would
    # multiply the timeout a dead Redis costs.
    retry = link.client.get_connection_kwargs()["retry"]
    assert isinstance(retry, redis.retry.Retry)
    assert retry.get_retries() == 0
