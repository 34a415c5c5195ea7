"""Delivery failures on a case: an address whose mail bounced gets no more of it.

When mail of a case bounces for good (a permanent failure, or a failure whose
permanence the bounce does not say; a delay is not a failure), each failed
address that is on the case is marked **failing** (``participants.failing_since``
and ``failing_reason``). Then:

- the practitioners of the case (the assignee, else the team; the same people
  as a notification) are told once, when the address starts failing, with the
  command that lifts it; nobody else is told, and the requester's own mail
  threads are not touched;
- nothing more of the case is queued to that address: answers, closures and
  acknowledgements go to the other recipients, or are not queued at all;
- the mark is lifted when a practitioner writes ``#retry ADDRESS``, or when
  mail arrives from that address on the case again (it works, then).

Each change is an audit event on the case.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from mailroom.cases import participants
from mailroom.cases.decisions import Decisions, Mail
from mailroom.cases.replies import practitioner_reply_address, ticket_subject
from mailroom.cases.tickets import record_event
from mailroom.outbox.queue import Draft, practitioner_recipients
from mailroom.settings import Settings
from mailroom.store.models import Message, Participant, Ticket
from mailroom.vocabulary import SYSTEM_ACTOR, OutboxKind

__all__ = ["clear_failing", "failing_addresses", "mark_failing"]


def failing_addresses(ticket: Ticket) -> frozenset[str]:
    """The addresses of the case that mail must not go to now."""
    return frozenset(p.address for p in ticket.participants if p.failing_since is not None)


def mark_failing(
    settings: Settings, session: Session, ticket: Ticket, addresses: Iterable[str], *,
    reason: str, bounce: Message, now: datetime,
) -> Decisions:
    """Mark the case's own addresses among ``addresses`` failing since ``now``; the mail
    that tells the practitioners, once, when some started failing now."""
    started = []
    for address in dict.fromkeys(a.lower() for a in addresses):
        person = participants.find(ticket, address)
        if person is None or person.failing_since is not None:
            continue
        person.failing_since, person.failing_reason = now, reason[:500]
        started.append(person.address)
        record_event(session, action="participant.failing", actor=SYSTEM_ACTOR, at=now,
                     ticket_id=ticket.id, message_pk=bounce.id, address=person.address,
                     reason=reason[:500])
    return Decisions().then(_tell_practitioners(settings, session, ticket, started, reason,
                                                now=now) if started else None)


def clear_failing(
    session: Session, ticket: Ticket, address: str, *, actor: str, at: datetime,
    why: str, message_pk: int | None = None,
) -> bool:
    """Lift the mark on ``address``; False when it was not failing."""
    person: Participant | None = participants.find(ticket, address)
    if person is None or person.failing_since is None:
        return False
    person.failing_since, person.failing_reason = None, None
    record_event(session, action="participant.delivering", actor=actor, at=at,
                 ticket_id=ticket.id, message_pk=message_pk, address=person.address, why=why)
    return True


def _tell_practitioners(
    settings: Settings, session: Session, ticket: Ticket, addresses: list[str], reason: str, *,
    now: datetime,
) -> Mail | None:
    to = practitioner_recipients(settings, session, ticket.id)
    if not to:
        return None
    return Mail(Draft(
        kind=OutboxKind.NOTIFICATION, template="practitioner/delivery_failed",
        context={"reference": ticket.reference, "addresses": addresses, "reason": reason,
                 "requester": (ticket.requester or "").lower()},
        to=to,
        subject=ticket_subject(settings, ticket, f"Mail undeliverable: {ticket.subject}"),
        ticket_id=ticket.id, reply_to=practitioner_reply_address(settings, ticket.id, to, now=now),
        auto_submitted="auto-generated",
    ))
