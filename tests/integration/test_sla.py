"""When a case's next answer is due: by priority, stopped by an answer, started again by
the professional's next message, moved by a change of priority; chasing a platform stops
when the case closes."""

from __future__ import annotations

from sqlalchemy import select

from mailroom.app import App
from mailroom.cases.escalations import follow_up_due
from mailroom.store.models import Event, OutboxItem, Ticket
from tests.factories import FixedClock, deliver, mail
from tests.integration.test_escalations import escalate
from tests.integration.test_practitioner import (
    CASE_ID,
    TEACHER,
    open_case,
    outbox,
    plain_body,
    practitioner_reply,
)


def the_ticket(app: App) -> Ticket:
    with app.sessions() as session:
        return session.execute(select(Ticket)).scalar_one()


def hours(app: App, start, business_hours: float):  # type: ignore[no-untyped-def]
    return app.hours.add_business_hours(start, business_hours)


def test_a_normal_case_is_due_in_its_hours_and_an_answer_stops_the_clock(make_app) -> None:  # type: ignore[no-untyped-def]
    clock = FixedClock()
    app = make_app(clock=clock)
    notification = open_case(app)
    opened = clock.now
    assert the_ticket(app).sla_due_at == hours(app, opened, 8)
    clock.advance(hours=1)
    deliver(app, practitioner_reply(notification, "We are looking at it."))
    ticket = the_ticket(app)
    assert ticket.sla_due_at is None and ticket.first_response_at == clock.now
    clock.advance(hours=1)
    deliver(app, mail(sender=TEACHER, in_reply_to=CASE_ID, subject="Re: more",
                      body="There is a second account now.\n"))
    due = the_ticket(app).sla_due_at
    assert due == hours(app, clock.now, 16)
    summary = plain_body(outbox(app, "notification")[-1]).splitlines()[0]
    assert "SLA due: " in summary and f"{due.astimezone(app.settings.timezone):%H:%M}" in summary


def test_urgent_categories_raise_the_priority_and_shorten_the_clock(make_app) -> None:  # type: ignore[no-untyped-def]
    clock = FixedClock()
    app = make_app(clock=clock)
    deliver(app, mail(body="A pupil is a victim of sextortion: webcam blackmail.\n"))
    ticket = the_ticket(app)
    assert (ticket.category, ticket.priority) == ("sextortion", "urgent")
    assert ticket.sla_due_at == hours(app, clock.now, 1)
    with app.sessions() as session:
        raised = session.execute(
            select(Event).where(Event.action == "ticket.priority")).scalar_one()
    assert raised.detail["reason"] == "category sextortion"


def test_a_practitioner_moves_the_clock_with_the_priority_or_the_category(make_app) -> None:  # type: ignore[no-untyped-def]
    clock = FixedClock()
    app = make_app(clock=clock)
    notification = open_case(app)
    opened = clock.now
    clock.advance(minutes=30)
    deliver(app, practitioner_reply(notification, "#priority low\n#note\nNot pressing."))
    assert the_ticket(app).sla_due_at == hours(app, opened, 24)
    deliver(app, practitioner_reply(notification, "#category threats\n#note\nOh, it is."))
    ticket = the_ticket(app)
    assert ticket.priority == "urgent" and ticket.sla_due_at == hours(app, opened, 1)
    with app.sessions() as session:
        changes = [(e.actor, e.detail["after"], e.detail.get("reason")) for e in session.execute(
            select(Event).where(Event.action == "ticket.priority").order_by(Event.id)).scalars()]
    assert changes == [("anna@helpline.example", "low", None),
                       ("anna@helpline.example", "urgent", "category threats")]


def test_chasing_stops_when_the_case_closes(make_app) -> None:  # type: ignore[no-untyped-def]
    clock = FixedClock()
    app = make_app(clock=clock)
    notification = open_case(app)
    escalate(app, the_ticket(app).id, "facebook")
    deliver(app, practitioner_reply(notification, "#close\n#note\nDone on our side."))
    clock.advance(days=14)
    assert follow_up_due(app) == {"stopped": 1}
    with app.sessions() as session:
        chases = session.execute(select(OutboxItem).where(OutboxItem.kind == "follow_up")).all()
        stopped = session.execute(
            select(Event).where(Event.action == "escalation.chase_stopped")).scalar_one()
    assert chases == [] and stopped.detail["reason"] == "the case is closed"
    assert follow_up_due(app) == {}  # not chased again


def test_chasing_closed_cases_when_asked(make_app) -> None:  # type: ignore[no-untyped-def]
    clock = FixedClock()
    app = make_app(clock=clock, sla={"chase_closed_cases": True})
    notification = open_case(app)
    escalate(app, the_ticket(app).id, "facebook")
    deliver(app, practitioner_reply(notification, "#close\n#note\nDone on our side."))
    clock.advance(days=14)
    assert follow_up_due(app) == {"follow_up": 1}
