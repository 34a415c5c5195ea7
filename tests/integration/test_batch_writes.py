"""What a bulk ingest's write transaction does once for many messages: events held
and written together, the hash blocklist asked ahead. Each must read as if written
or asked message by message."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from mailroom.cases.tickets import events_in_bulk, record_event
from mailroom.store.hashes import Listing, add_file, ask_ahead, listed_hashes
from mailroom.store.models import Event

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def event_count(session) -> int:  # type: ignore[no-untyped-def]
    return int(session.execute(select(func.count()).select_from(Event)).scalar() or 0)


def test_held_events_are_written_at_the_end_and_before_a_query_reads_them(app) -> None:
    with app.sessions.begin() as session:
        with events_in_bulk(session):
            record_event(session, action="test.one", actor="system", at=AT)
            record_event(session, action="test.two", actor="system", at=AT)
            # Held, not lost: a query of the events table finds them written first.
            assert event_count(session) == 2
            record_event(session, action="test.three", actor="system", at=AT)
        record_event(session, action="test.four", actor="system", at=AT)  # at once again
    with app.sessions() as session:
        assert list(session.execute(select(Event.action).order_by(Event.id)).scalars()) == [
            "test.one", "test.two", "test.three", "test.four"]


def test_held_events_go_with_a_transaction_that_fails(app) -> None:
    with pytest.raises(RuntimeError), app.sessions.begin() as session, \
            events_in_bulk(session):
        record_event(session, action="test.lost", actor="system", at=AT)
        raise RuntimeError("boom")
    with app.sessions() as session:
        assert event_count(session) == 0


def test_a_file_listed_after_the_list_was_asked_ahead_is_listed(app) -> None:
    sha_a, sha_b, md5_b = "a" * 64, "b" * 64, "c" * 32
    listing = Listing(source="case", actor="system", at=AT)
    with app.sessions.begin() as session:
        add_file(session, listing, sha256=sha_a)
    with app.sessions.begin() as session:
        ask_ahead(session, [sha_a, sha_b], [md5_b])
        assert listed_hashes(session, [sha_a, sha_b], [md5_b]) == {sha_a}
        add_file(session, listing, sha256=sha_b)  # listed by this transaction
        assert listed_hashes(session, [sha_b], [md5_b]) == {sha_b}
    with app.sessions.begin() as session:  # what was asked ahead holds for its transaction
        assert listed_hashes(session, [sha_a, sha_b]) == {sha_a, sha_b}
