"""When a case's next answer is due, in business hours, by its priority.

- A new case's clock starts when it opens: its **first answer** is due after
  ``sla.first_response_hours`` business hours for a ``normal`` case, or
  ``sla.urgent_hours`` / ``high_hours`` / ``low_hours`` for the others.
- An answer to the requester stops the clock (``sla_due_at`` is cleared): the case
  waits on the professional, and the notification no longer shows a stale due time.
- The professional's next message, once the case has had an answer, starts it again:
  the **next answer** is due after ``sla.next_response_hours`` (normal) or the
  priority's hours.
- A category of ``sla.urgent_categories`` (by default sextortion, threats and illegal
  images) or ``sla.high_categories`` (grooming) raises the priority when it is set
  (by a practitioner, or by the safeguarding keywords); it never lowers one.
- A change of priority moves a running clock: the due time is counted again from when
  the clock started (the case's opening, or the professional's latest message).

Practitioners see the due time in each notification's summary line, in the daily
digest and in the console's queue; requesters never see it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.app import Clock
from mailroom.cases.tickets import record_event
from mailroom.hours import OpeningHours
from mailroom.settings import Settings
from mailroom.store.models import Message, Ticket
from mailroom.vocabulary import Direction, Speaker, TicketPriority

__all__ = ["answered", "first_due", "priority_for_category", "raise_for_category", "reprioritise",
           "response_hours", "start_clock"]

_RANK: dict[str, int] = {str(p): n for n, p in enumerate(TicketPriority)}  # urgent first


def response_hours(settings: Settings, priority: str | None, *, first: bool) -> float:
    """Business hours allowed for the first (or the next) answer at this priority."""
    if priority in settings.sla_priority_hours:
        return settings.sla_priority_hours[priority]
    return settings.sla_first_response_hours if first else settings.sla_next_response_hours


def priority_for_category(settings: Settings, ticket: Ticket) -> str | None:
    """The priority the case's category asks for, when it is more pressing than its own."""
    wanted = settings.sla_category_priorities.get(ticket.category or "")
    current = ticket.priority or TicketPriority.NORMAL
    if wanted is None or _RANK.get(wanted, 99) >= _RANK.get(current, 99):
        return None
    return wanted


def raise_for_category(settings: Settings, hours: OpeningHours, session: Session, ticket: Ticket,
                       *, actor: str, clock: Clock) -> str | None:
    """Raise the priority the category asks for (an audit event), moving a running clock;
    the new priority, or None when it stays."""
    wanted = priority_for_category(settings, ticket)
    if wanted is None:
        return None
    before, ticket.priority = ticket.priority or TicketPriority.NORMAL, wanted
    record_event(session, action="ticket.priority", actor=actor, at=clock(),
                 ticket_id=ticket.id, before=before, after=wanted,
                 reason=f"category {ticket.category}")
    reprioritise(settings, hours, session, ticket, clock=clock)
    return wanted


def first_due(settings: Settings, hours: OpeningHours, start: datetime) -> datetime:
    """When a new case's first answer is due, counted from ``start`` (it opens ``normal``)."""
    return hours.add_business_hours(
        start, response_hours(settings, TicketPriority.NORMAL, first=True))


def start_clock(settings: Settings, hours: OpeningHours, ticket: Ticket, start: datetime) -> None:
    """The next answer is due, counted from ``start``."""
    first = ticket.first_response_at is None
    ticket.sla_due_at = hours.add_business_hours(
        start, response_hours(settings, ticket.priority, first=first))


def answered(ticket: Ticket) -> None:
    """An answer went to the requester: nothing is due until they write again."""
    ticket.sla_due_at = None


def reprioritise(settings: Settings, hours: OpeningHours, session: Session, ticket: Ticket, *,
                 clock: Clock) -> None:
    """A running clock after a change of priority: counted again from its start (from
    the ``clock``'s time, read after the query, when the case has no word to count from)."""
    if ticket.sla_due_at is None:
        return
    start = ticket.created_at if ticket.first_response_at is None else _latest_word(
        session, ticket)
    start_clock(settings, hours, ticket, start or clock())


def _latest_word(session: Session, ticket: Ticket) -> datetime | None:
    """When the professional (or anyone writing into the case) last wrote."""
    return session.execute(
        select(Message.created_at).where(
            Message.ticket_id == ticket.id, Message.direction == Direction.IN,
            Message.kind == Speaker.REQUESTER)
        .order_by(Message.created_at.desc()).limit(1)).scalar()
