"""Log events name the request being served."""

from __future__ import annotations

import structlog

from atalaia.logging import REQUEST_ID, add_request_id, configure_logging


def test_every_event_goes_through_the_request_id() -> None:
    configure_logging(json=False)

    assert add_request_id in structlog.get_config()["processors"]


def test_an_event_names_the_request_being_served() -> None:
    token = REQUEST_ID.set("r-1")
    try:
        named = add_request_id(None, "info", {"event": "x"})
        own = add_request_id(None, "info", {"event": "x", "request_id": "mine"})
    finally:
        REQUEST_ID.reset(token)

    assert named == {"event": "x", "request_id": "r-1"}
    assert own["request_id"] == "mine"


def test_an_event_outside_a_request_names_none() -> None:
    assert add_request_id(None, "info", {"event": "x"}) == {"event": "x"}
