"""The audit log on SQLite and PostgreSQL: append-only, read newest first by
filters and pages, once-only entries, the request's context, one log line
per committed entry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker
from structlog.testing import CapturingLogger

from atalaia.adapters.db.engine import normalize_url
from atalaia.adapters.db.repositories import AuditEntry, AuditFilter, AuditLog
from atalaia.adapters.db.repositories import audit as audit_module
from atalaia.logging import CLIENT_ADDRESS, REQUEST_ID

AT = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
Sessions = sessionmaker[Session]


@pytest.fixture
def raw_engine(database_url: str) -> Iterator[Engine]:
    """An engine without the domain's error translation: the driver's errors."""
    engine = create_engine(normalize_url(database_url))
    try:
        yield engine
    finally:
        engine.dispose()


def write(sessions: Sessions, *entries: AuditEntry) -> None:
    with sessions() as session:
        for entry in entries:
            AuditLog(session).append(entry)
        session.commit()


def entry(action: str, *, minutes: int = 0, **fields: str) -> AuditEntry:
    return AuditEntry(
        actor=fields.get("actor", "ana"), action=action,
        target=fields.get("target", "pump_1_x/v1"),
        at=AT + timedelta(minutes=minutes),
    )  # fmt: skip


def page(
    sessions: Sessions, where: AuditFilter = AuditFilter(), after: str | None = None,
    limit: int = 100,
) -> tuple[list[str], str | None]:  # fmt: skip
    with sessions() as session:
        found, cursor = AuditLog(session).page(where, after, limit)
    return [f"{e.action}@{e.actor}" for e in found], cursor


class TestAppendOnly:
    @pytest.mark.parametrize(
        "statement",
        ["UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"],
        ids=["update", "delete"],
    )
    def test_the_database_refuses_to_change_an_entry(
        self, sessions: Sessions, raw_engine: Engine, statement: str
    ) -> None:
        write(sessions, entry("promote"))

        with pytest.raises(Exception, match="append-only"):
            with raw_engine.begin() as connection:
                connection.execute(text(statement))

        assert page(sessions) == (["promote@ana"], None)

    def test_new_entries_are_still_taken(
        self, sessions: Sessions, raw_engine: Engine
    ) -> None:
        with raw_engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO audit_log (at, actor, action, target, detail) "
                    "VALUES (CURRENT_TIMESTAMP, 'ana', 'raw', 'x', '{}')"
                )
            )

        assert page(sessions) == (["raw@ana"], None)


class TestPage:
    @pytest.fixture(autouse=True)
    def entries(self, sessions: Sessions) -> None:
        write(
            sessions,
            entry("model.registered", minutes=0),
            entry("promote", minutes=1, actor="bea"),
            entry("model_x.odd", minutes=2),  # not under the prefix `model.`
            entry("http.post", minutes=3, target="/api/v1/assets"),
            entry("model.registered", minutes=4, actor="bea"),
        )

    def test_newest_first_in_pages_that_new_entries_do_not_move(
        self, sessions: Sessions
    ) -> None:
        first, cursor = page(sessions, limit=2)
        write(sessions, entry("late", minutes=9))
        second, cursor_2 = page(sessions, after=cursor, limit=2)
        third, last = page(sessions, after=cursor_2, limit=2)

        assert first == ["model.registered@bea", "http.post@ana"]
        assert second == ["model_x.odd@ana", "promote@bea"]
        assert (third, last) == (["model.registered@ana"], None)

    def test_filters_by_actor_actions_prefix_target_and_time(
        self, sessions: Sessions
    ) -> None:
        def actions(**where: object) -> list[str]:
            return page(sessions, AuditFilter(**where))[0]  # type: ignore[arg-type]

        assert actions(actor="bea") == ["model.registered@bea", "promote@bea"]
        assert actions(actions=["promote", "http.post"]) == [
            "http.post@ana", "promote@bea",
        ]  # fmt: skip
        assert actions(action_prefixes=["model."], actions=["promote"]) == [
            "model.registered@bea", "promote@bea", "model.registered@ana",
        ]  # fmt: skip
        assert actions(target="/api/v1/assets") == ["http.post@ana"]
        since, until = AT + timedelta(minutes=1), AT + timedelta(minutes=3)
        assert actions(since=since, until=until) == ["model_x.odd@ana", "promote@bea"]

    def test_a_prefix_is_matched_literally(self, sessions: Sessions) -> None:
        write(sessions, entry("a_b.c"), entry("axb.c"))

        assert page(sessions, AuditFilter(action_prefixes=["a_b."]))[0] == ["a_b.c@ana"]


class TestOnce:
    def test_an_entry_of_a_key_is_written_once(self, sessions: Sessions) -> None:
        with sessions() as session:
            audit = AuditLog(session)
            written = [
                audit.append_once(entry("auth.sign_in"), "auth.sign_in:abc"),
                audit.append_once(entry("auth.sign_in"), "auth.sign_in:abc"),
                audit.append_once(entry("auth.sign_in"), "auth.sign_in:def"),
            ]
            session.commit()

        assert written == [True, False, True]
        assert len(page(sessions)[0]) == 2


class TestRecord:
    def test_names_the_request_being_served(self, sessions: Sessions) -> None:
        tokens = REQUEST_ID.set("req-1"), CLIENT_ADDRESS.set("10.1.2.3")
        try:
            with sessions() as session:
                AuditLog(session).record(actor="ana", action="promote", target="x")
                session.commit()
        finally:
            REQUEST_ID.reset(tokens[0])
            CLIENT_ADDRESS.reset(tokens[1])
        with sessions() as session:
            AuditLog(session).record(actor="scheduler", action="tick", target="y")
            session.commit()

        with sessions() as session:
            tick, promote = AuditLog(session).page(AuditFilter(), None, 10)[0]
        assert (promote.request_id, promote.address) == ("req-1", "10.1.2.3")
        assert (tick.request_id, tick.address) == (None, None)

    def test_logs_each_entry_once_its_transaction_commits(
        self, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        log = CapturingLogger()
        monkeypatch.setattr(audit_module, "_audit_logger", lambda: log)
        with sessions() as session:
            AuditLog(session).record(actor="ana", action="undone", target="x")
            session.flush()
            session.rollback()
            AuditLog(session).record(actor="ana", action="promote", target="x", n=1)
            assert log.calls == []  # not yet committed
            session.commit()

        [(level, event, fields)] = log.calls
        assert (level, event) == ("info", ("audit",))
        assert fields | {"at": "-"} == {
            "id": fields["id"], "at": "-", "actor": "ana", "action": "promote",
            "target": "x", "detail": {"n": 1}, "address": None, "request_id": None,
        }  # fmt: skip
        assert page(sessions)[0] == ["promote@ana"]
