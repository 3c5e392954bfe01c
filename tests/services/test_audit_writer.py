"""The audit writer: entries written off the request path, in order, kept
while PostgreSQL is cut off and written once it is back."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import make_url, select
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.engine import Timeouts, make_engine, make_session_factory
from atalaia.adapters.db.repositories import AuditEntry
from atalaia.adapters.db.tables import AuditRow
from atalaia.services.audit_writer import AuditWriter
from fixtures.api import wait_for
from fixtures.db import truncate_tables
from fixtures.tcp_proxy import TcpProxy

Sessions = sessionmaker[Session]


def actions(sessions: Sessions) -> list[str]:
    with sessions() as session:
        return list(session.scalars(select(AuditRow.action).order_by(AuditRow.id)))


@pytest.fixture
def proxy(postgres_database: str) -> Iterator[TcpProxy]:
    truncate_tables(postgres_database)
    url = make_url(postgres_database)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as tcp_proxy:
        yield tcp_proxy


@pytest.fixture
def proxied(postgres_database: str, proxy: TcpProxy) -> Iterator[Sessions]:
    """Sessions on the test database through `proxy`."""
    url = make_url(postgres_database).set(host="127.0.0.1", port=proxy.port)
    engine = make_engine(
        url.render_as_string(hide_password=False), timeouts=Timeouts(connect_s=1.0)
    )
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


@pytest.fixture
def direct(postgres_database: str) -> Iterator[Sessions]:
    engine = make_engine(postgres_database)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


def entry(action: str) -> AuditEntry:
    return AuditEntry(actor="ana", action=action, target="x")


def test_entries_wait_while_the_database_is_cut_off(
    proxy: TcpProxy, proxied: Sessions, direct: Sessions
) -> None:
    writer = AuditWriter(proxied, retry_s=0.1)
    writer.start()
    try:
        proxy.cut()
        for action in ("a", "b", "c"):
            writer.put(entry(action))
        time.sleep(1.0)  # a few failed attempts
        assert actions(direct) == []

        proxy.restore()

        assert wait_for(lambda: actions(direct) or None) == ["a", "b", "c"]
    finally:
        writer.stop()


def test_stopping_writes_what_is_queued_and_an_entry_of_a_key_once(
    proxied: Sessions, direct: Sessions
) -> None:
    writer = AuditWriter(proxied)
    writer.start()
    writer.put(entry("auth.sign_in"), once_key="auth.sign_in:1")
    writer.put(entry("auth.sign_in"), once_key="auth.sign_in:1")
    writer.put(entry("http.post"))

    writer.stop()

    assert actions(direct) == ["auth.sign_in", "http.post"]


def test_a_full_queue_drops_and_counts(proxied: Sessions) -> None:
    writer = AuditWriter(proxied, capacity=2)  # not started: nothing leaves it

    for action in ("a", "b", "c"):
        writer.put(entry(action))

    assert writer.dropped == 1
