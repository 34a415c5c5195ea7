"""What a bulk ingest's write transaction does once for many messages: events held
and written together, the hash blocklist asked ahead. Each must read as if written
or asked message by message. And what a message writes of its case in few statements:
a new case in one INSERT, a threaded case read and touched together."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import event, func, select, text

from mailroom.cases.tickets import (
    NewCase,
    events_in_bulk,
    make_reference,
    open_ticket,
    record_event,
    touch_ticket,
)
from mailroom.mailtypes import Address
from mailroom.store.hashes import Listing, add_file, ask_ahead, listed_hashes
from mailroom.store.models import Event, Ticket

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


def statements_of(app, work) -> list[str]:  # type: ignore[no-untyped-def]
    """The SQL statements ``work(session)`` sends in one transaction."""
    sent: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        sent.append(" ".join(statement.split()))

    event.listen(app.engine, "before_cursor_execute", count)
    try:
        with app.sessions.begin() as session:
            work(session)
    finally:
        event.remove(app.engine, "before_cursor_execute", count)
    return sent


def test_a_new_case_is_one_insert_with_its_reference_and_what_it_starts_with(app) -> None:
    requester = Address("teacher@school.example", "A Teacher")
    due = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
    opened: list[Ticket] = []

    def work(session) -> None:  # type: ignore[no-untyped-def]
        opened.append(open_ticket(session, NewCase(
            subject="Fake account", requester=requester, at=AT, prefix="HL-", country="GB",
            platforms=("tiktok",), sla_due_at=due)))
        session.flush()

    sent = statements_of(app, work)
    writes = [s.split(" (")[0] for s in sent if not s.startswith(("SELECT", "BEGIN"))]
    assert writes == ["INSERT INTO tickets", "INSERT INTO participants"]
    ticket = opened[0]
    with app.sessions() as session:
        stored = session.get(Ticket, ticket.id)
        assert stored is not None
        assert stored.reference == make_reference("HL-", ticket.id) == ticket.reference
        assert (stored.subject, stored.status, stored.priority, stored.country) == (
            "Fake account", "open", "normal", "GB")
        assert stored.platforms == ["tiktok"] and stored.flags == []
        assert stored.sla_due_at is not None and stored.sla_due_at.replace(tzinfo=UTC) == due
        assert [(p.address, p.role, p.state) for p in stored.participants] == [
            ("teacher@school.example", "requester", "allowed")]


def test_a_case_number_past_six_digits_keeps_every_digit(app) -> None:
    with app.sessions.begin() as session:
        session.add(Ticket(id=1_234_566, reference="OLD-1", subject="", status="open",
                           created_at=AT, updated_at=AT))
    if app.engine.dialect.name == "postgresql":
        with app.engine.begin() as conn:
            conn.execute(text("SELECT setval(pg_get_serial_sequence('tickets', 'id'), 1234566)"))
    with app.sessions.begin() as session:
        ticket = open_ticket(session, NewCase(subject="x", requester=None, at=AT, prefix="HL-"))
    assert (ticket.id, ticket.reference) == (1_234_567, "HL-1234567")


def test_a_threaded_case_is_read_with_its_participants_and_touched(app) -> None:
    later = datetime(2026, 3, 5, 9, 0, tzinfo=UTC)
    with app.sessions.begin() as session:
        number = open_ticket(session, NewCase(
            subject="x", requester=Address("a@b.example", ""), at=AT, prefix="HL-")).id
    touched: list[Ticket | None] = []
    sent = statements_of(app, lambda session: touched.append(touch_ticket(session, number, later)))
    ticket = touched[0]
    assert ticket is not None and [p.address for p in ticket.participants] == ["a@b.example"]
    assert ticket.updated_at.replace(tzinfo=UTC) == later
    kinds = [s.split()[0] for s in sent if not s.startswith("BEGIN")]
    # PostgreSQL: an UPDATE … RETURNING that the read joins; SQLite: the read, the UPDATE.
    assert kinds == (["WITH"] if app.engine.dialect.name == "postgresql" else ["SELECT", "UPDATE"])
    with app.sessions.begin() as session:
        assert touch_ticket(session, number + 1, later) is None
    with app.sessions() as session:
        stored = session.get(Ticket, number)
        assert stored is not None and stored.updated_at.replace(tzinfo=UTC) == later
