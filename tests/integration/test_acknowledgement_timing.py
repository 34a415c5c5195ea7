"""Acknowledgements that are never taken back: one per case even when a conversation
arrives out of order, and none for old mail imported from files."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from mailroom.app import App
from mailroom.sending.sender import send_due
from mailroom.store.models import Message, OutboxItem
from tests.factories import FixedClock, deliver, mail, tickets

TEACHER = "teacher@school.example"


def acknowledgements(app: App) -> list[tuple[int | None, str]]:
    with app.sessions() as session:
        return [(r.ticket_id, r.status) for r in session.execute(
            select(OutboxItem).where(OutboxItem.kind == "acknowledgement")
            .order_by(OutboxItem.id)).scalars()]


def test_a_reply_before_its_parent_waits_and_the_merged_case_has_one(make_app) -> None:  # type: ignore[no-untyped-def]
    clock = FixedClock()
    app = make_app(clock=clock, acknowledgements={"per_window": 10, "per_day": 100})
    deliver(app, mail(message_id="first@school.example", subject="Our pupil"))
    deliver(app, mail(message_id="third@school.example", subject="Re: Our pupil",
                      in_reply_to="second@school.example",
                      references=["second@school.example"], body="And this.\n"))
    assert [t.id for t in tickets(app)] == [1, 2]
    send_due(app)  # the first went at once; the early reply's waits
    assert acknowledgements(app) == [(1, "sent"), (2, "queued")]
    clock.advance(seconds=30)
    deliver(app, mail(message_id="second@school.example", subject="Re: Our pupil",
                      in_reply_to="first@school.example", references=["first@school.example"],
                      body="Also this.\n"))
    assert [t.id for t in tickets(app)] == [1]  # merged: one person, one conversation
    clock.advance(minutes=5)
    send_due(app)
    assert [status for _, status in acknowledgements(app)] == ["sent", "failed"]


def test_an_early_reply_alone_is_acknowledged_after_the_grace(make_app) -> None:  # type: ignore[no-untyped-def]
    clock = FixedClock()
    app = make_app(clock=clock)
    deliver(app, mail(in_reply_to="never-came@school.example", subject="Re: Our pupil"))
    send_due(app)
    assert acknowledgements(app) == [(1, "queued")]
    clock.advance(seconds=app.settings.ack_reply_grace_seconds + 1)
    send_due(app)
    assert acknowledgements(app) == [(1, "sent")]


def test_old_mail_imported_from_files_is_not_acknowledged(app: App) -> None:
    old = app.now() - timedelta(days=30)
    deliver(app, mail(sender=TEACHER, date=old), door="file")
    deliver(app, mail(sender="head@school.example", date=old), door="smtp")
    assert [t for t, _ in acknowledgements(app)] == [2]  # only the one that came by SMTP
    with app.sessions() as session:
        flags = session.execute(select(Message.flags).where(
            Message.sender == TEACHER)).scalar_one()
    assert "no-ack:old-mail" in flags
