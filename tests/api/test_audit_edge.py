"""The audit trail's pieces: the client's address behind trusted proxies, the
budget of failed sign-ins, a request's bearer token."""

from __future__ import annotations

from ipaddress import ip_network

import pytest
from starlette.types import Scope

from atalaia.api.common.audit_trail import bearer_of
from atalaia.api.common.client_address import TrustedProxies
from atalaia.api.common.sign_ins import WINDOW_S, FailureBudget, fingerprint

PROXIES = TrustedProxies([ip_network("127.0.0.1"), ip_network("10.0.0.0/8")])


def scope(peer: str | None, **headers: str) -> Scope:
    return {
        "client": (peer, 4000) if peer else None,
        "headers": [
            (k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()
        ],
    }


class TestClientAddress:
    @pytest.mark.parametrize(
        ("peer", "headers", "client"),
        [
            ("192.0.2.1", {}, "192.0.2.1"),
            ("192.0.2.1", {"x_forwarded_for": "203.0.113.9"}, "192.0.2.1"),
            ("127.0.0.1", {}, "127.0.0.1"),
            ("127.0.0.1", {"x_forwarded_for": "203.0.113.9"}, "203.0.113.9"),
            # Entries a client wrote itself (left) are passed over; the
            # trusted proxies' own (right) skipped.
            ("127.0.0.1", {"x_forwarded_for": "6.6.6.6, 203.0.113.9, 10.1.2.3"},
             "203.0.113.9"),
            ("10.9.9.9", {"x_forwarded_for": "10.1.1.1, 10.2.2.2"}, "10.1.1.1"),
            ("127.0.0.1", {"x_real_ip": "203.0.113.5"}, "203.0.113.5"),
            ("127.0.0.1", {"x_forwarded_for": "2001:db8::7"}, "2001:db8::7"),
            (None, {"x_forwarded_for": "203.0.113.9"}, None),
        ],
    )  # fmt: skip
    def test_is_the_one_the_nearest_trusted_proxy_names(
        self, peer: str | None, headers: dict[str, str], client: str | None
    ) -> None:
        assert PROXIES.client_of(scope(peer, **headers)) == client

    def test_a_name_that_is_no_address_is_not_trusted(self) -> None:
        assert not PROXIES.trusts("testclient")
        assert PROXIES.trusts("10.200.0.1")


class TestFailureBudget:
    def test_records_so_many_a_minute_and_counts_the_rest(self) -> None:
        budget = FailureBudget(per_min=2)

        first_minute = [budget.take(t) for t in (0.0, 1.0, 2.0, 3.0, 4.0)]
        next_minute = [budget.take(WINDOW_S + t) for t in (0.0, 1.0, 2.0)]

        assert first_minute == [0, 0, None, None, None]
        assert next_minute == [3, 0, None]

    def test_zero_records_none(self) -> None:
        assert FailureBudget(per_min=0).take(0.0) is None


class TestTokens:
    @pytest.mark.parametrize(
        ("authorization", "token"),
        [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic abc", None),
         ("Bearer ", None)],
    )  # fmt: skip
    def test_the_bearer_token_of_a_request(
        self, authorization: str, token: str | None
    ) -> None:
        assert bearer_of(scope("192.0.2.1", authorization=authorization)) == token
        assert bearer_of(scope("192.0.2.1")) is None

    def test_a_fingerprint_is_of_the_jti_when_there_is_one(self) -> None:
        assert fingerprint("t1", {"jti": "j"}) == fingerprint("t2", {"jti": "j"})
        assert fingerprint("t1", {}) != fingerprint("t2", {})
        assert "t1" not in fingerprint("t1", {})
