"""``mailroom ingest`` of many files: stored a batch at a time, processed a batch at a
time (a savepoint per message), with every promise of the one-message path kept."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from mailroom import pipeline
from mailroom.errors import MailError
from mailroom.runtime.ingest import _batches, ingest_paths
from mailroom.store.models import Event, InboxItem, Message, OutboxItem, Ticket
from tests.factories import inbox_rows, mail, ticket_of, tickets


def case(ident: str, **fields: object) -> bytes:
    """A new case from its own sender, in its own words (identical mail in numbers
    trips the acknowledgements' circuit breaker)."""
    values: dict[str, object] = {
        "message_id": f"{ident}@school.example", "sender": f"{ident}@school.example",
        "subject": f"Fake account number {ident}",
        "body": f"Someone made a fake account ({ident}): https://www.tiktok.com/@fake{ident}\n"}
    return mail(**{**values, **fields})  # type: ignore[arg-type]


def write(folder: Path, *raws: bytes) -> Path:
    folder.mkdir(exist_ok=True)
    for number, raw in enumerate(raws):
        (folder / f"{number:03d}.eml").write_bytes(raw)
    return folder


def commits(app) -> list[int]:  # type: ignore[no-untyped-def]
    """A list that grows by one with every transaction the app's engines commit."""
    seen: list[int] = []
    for engine in {app.engine, app.door_sessions.kw["bind"]}:
        event.listen(engine, "commit", lambda _conn: seen.append(1))
    return seen


def acknowledgements(app) -> Counter[int]:  # type: ignore[no-untyped-def]
    with app.sessions() as session:
        return Counter(session.execute(select(OutboxItem.ticket_id).where(
            OutboxItem.kind == "acknowledgement")).scalars())


def test_a_folder_goes_in_a_few_transactions(app, tmp_path: Path) -> None:
    folder = write(tmp_path / "mail", *(case(f"b{chr(97 + i)}") for i in range(12)))
    seen = commits(app)
    summary = ingest_paths(app, [str(folder)])
    assert summary["messages"] == summary["created"] == 12, summary
    assert len(seen) <= 3  # the bytes, then the writes (one slice here): not 2 per message
    assert [row.status for row in inbox_rows(app)] == ["done"] * 12
    assert sorted(acknowledgements(app).values()) == [1] * 12


def statements(app, starting: str) -> list[int]:  # type: ignore[no-untyped-def]
    """A list that grows by one with every statement starting with ``starting`` sent
    by the app's engines (an ``executemany`` is one)."""
    seen: list[int] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if statement.startswith(starting):
            seen.append(1)

    for engine in {app.engine, app.door_sessions.kw["bind"]}:
        event.listen(engine, "before_cursor_execute", count)
    return seen


def test_a_new_batch_is_stored_in_one_insert_and_its_events_in_one(app, tmp_path: Path) -> None:
    folder = write(tmp_path / "mail", *(case(f"n{chr(97 + i)}") for i in range(12)))
    rows, events = statements(app, "INSERT INTO inbox "), statements(app, "INSERT INTO events")
    summary = ingest_paths(app, [str(folder)])
    assert summary["created"] == 12, summary
    assert len(rows) == 1 and len(events) == 1  # not one per message
    stored = inbox_rows(app)
    assert [row.door_ref for row in stored] == sorted(row.door_ref or "" for row in stored)
    assert all(row.raw == (folder / (row.door_ref or "")).read_bytes() for row in stored)
    with app.sessions() as session:
        created = session.execute(select(func.count()).select_from(Event).where(
            Event.action == "ticket.created")).scalar()
    assert created == 12


def test_a_batch_with_mail_stored_before_goes_message_by_message(
        app, tmp_path: Path) -> None:
    """Mail already in the inbox (a run repeated, or the same mail from another door) is
    a duplicate; the rest of the batch is stored in arrival order, each once."""
    first = [case(f"s{chr(97 + i)}") for i in range(3)]
    ingest_paths(app, [str(write(tmp_path / "first", *first))])
    again = write(tmp_path / "again", first[0], case("new1"), first[2], case("new2"))
    summary = ingest_paths(app, [str(again)])
    assert summary["duplicate"] == 2 and summary["created"] == 2, summary
    rows = inbox_rows(app)
    assert len(rows) == 5 and [row.status for row in rows] == ["done"] * 5
    assert [row.dedup_key for row in rows[3:]] == ["mid:new1@school.example",
                                                  "mid:new2@school.example"]


def test_a_failing_message_is_marked_alone_and_the_batch_goes_on(
        app, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One message shunted by an internal error and one ``bad`` by a MailError, both in
    the middle of a batch's write transaction: each rolls back to its savepoint and is
    kept with its error; the messages before and after it are written and answered."""
    after_message = pipeline.after_message

    def failing(app_, session, incoming, message, decision, audience=None):  # type: ignore[no-untyped-def]
        if incoming.parsed.message_id == "boom@school.example":
            raise RuntimeError("disk on fire")
        if incoming.parsed.message_id == "refused@school.example":
            raise MailError("no such thing")
        after_message(app_, session, incoming, message, decision, audience)

    monkeypatch.setattr(pipeline, "after_message", failing)
    ids = ["one", "boom", "two", "refused", "three"]
    folder = write(tmp_path / "mail", *(case(i) for i in ids),
                   b"Subject: no body at all\r\nFrom: x@y.example\r\n\r\n")
    summary = ingest_paths(app, [str(folder)])
    assert summary["created"] == 4 and summary["rejected"] == 2, summary
    rows = inbox_rows(app)
    assert [row.status for row in rows] == ["done", "shunt", "done", "bad", "done", "done"]
    assert "disk on fire" in (rows[1].error or "") and "no such thing" in (rows[3].error or "")
    assert rows[1].raw and rows[3].raw  # kept, to be retried
    with app.sessions() as session:
        stored = set(session.execute(select(Message.message_id).where(
            Message.direction == "in")).scalars())
        assert session.execute(select(func.count()).select_from(Ticket)).scalar() == 4
    assert "boom@school.example" not in stored and "refused@school.example" not in stored
    assert {"one@school.example", "two@school.example", "three@school.example"} <= stored
    assert sorted(acknowledgements(app).values()) == [1] * 4
    monkeypatch.undo()
    with app.sessions.begin() as session:  # retried, they go through as any message
        for row in (rows[1], rows[3]):
            session.get(InboxItem, row.id).status = "new"  # type: ignore[union-attr]
    assert [pipeline.process_item(app, row.id) for row in (rows[1], rows[3])] == [
        "created", "created"]


@pytest.mark.parametrize("batch", [2, 3, 50])
def test_a_reply_before_its_parent_in_one_batch_is_acknowledged_once(
        app, tmp_path: Path, batch: int) -> None:
    """Replies that come before the message they answer, and a second copy of a
    message, in one batch (or across batch boundaries): one case per conversation,
    acknowledged once, and the copy stored and processed once."""
    parent = case("p")
    reply = case("r", sender="p@school.example", subject="Re: Fake account number p",
                 in_reply_to="p@school.example", references=["p@school.example"])
    later = case("r2", sender="p@school.example", subject="Re: Fake account number p",
                 in_reply_to="r@school.example",
                 references=["p@school.example", "r@school.example"])
    other = case("o")
    copy = b"X-Delivered-To: help@helpline.example\r\n" + reply
    folder = write(tmp_path / "mail", later, reply, copy, other, parent)
    summary = ingest_paths(app, [str(folder)], batch_messages=batch)
    assert summary["messages"] == 5 and summary["duplicate"] == 1, summary
    assert len(tickets(app)) == 2
    conversation = {ticket_of(app, f"{n}@school.example") for n in ("p", "r", "r2")}
    assert len(conversation) == 1 and ticket_of(app, "o@school.example") not in conversation
    acks = acknowledgements(app)
    assert sorted(acks.values()) == [1, 1], acks
    assert [row.status for row in inbox_rows(app)] == ["done"] * 4


def test_batches_hold_a_limited_number_of_messages_and_bytes() -> None:
    from mailroom.doors.contract import Arrival, Envelope

    sizes = [10, 10, 10, 50, 10, 200, 10]
    arrivals = (Arrival(b"x" * n, Envelope("file")) for n in sizes)
    got = [[len(a.raw) for a in batch] for batch in _batches(arrivals, 3, 60)]
    assert got == [[10, 10, 10], [50, 10], [200], [10]]
