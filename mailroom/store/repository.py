"""Queries the pipeline needs, each one indexed so it stays flat as history grows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import bindparam, cast, null, or_, select, union_all
from sqlalchemy.orm import Session

from mailroom.store.models import Message, MessageRef, Participant, Ticket
from mailroom.vocabulary import Direction

CHUNK = 500


@dataclass
class ThreadLinks:
    """What the store knows about one inbound message's Message-ID and the ids it names
    (In-Reply-To and References), as :func:`thread_links` read it."""

    message_id: str | None
    named: frozenset[str] = frozenset()  # the named ids that were looked up
    stored: bool = False  # a message (ours or theirs) with this Message-ID is stored
    tickets: dict[str, int] = field(default_factory=dict)  # named id → its live ticket
    escalations: dict[str, int] = field(default_factory=dict)  # named id → its escalation
    replies: set[int] = field(default_factory=set)  # live tickets of messages naming this id
    orphans: bool = False  # an inbound message naming this id is on no ticket


def thread_links(session: Session, message_id: str | None, named: Sequence[str]) -> ThreadLinks:
    """One query (more only for hundreds of named ids or a merged ticket) for the
    duplicate check, threading in both directions and the escalation a reply answers."""
    links = ThreadLinks(message_id, frozenset(named))
    if not message_id and not named:
        return links
    chunks = [list(named[start : start + CHUNK]) for start in range(0, len(named), CHUNK)]
    first = chunks.pop(0) if chunks else []
    # Columns only, read before the message changes anything: the connection, not the
    # session (whose ORM layer, and autoflush, cost more than the query).
    conn = session.connection()
    if message_id:
        rows = list(conn.execute(_LINKS, {"ids": [message_id, *first], "ref": message_id}))
    else:
        rows = list(conn.execute(_WITH_IDS, {"ids": first}))
    for chunk in chunks:  # hundreds of References
        rows += conn.execute(_WITH_IDS, {"ids": chunk})
    for ident, ticket_id, escalation_id, merged_into, direction in rows:
        live = _follow(session, ticket_id, merged_into) if ticket_id else None
        if ident is None:  # a message naming this one
            if live is not None:
                links.replies.add(live)
            elif direction == Direction.IN:
                links.orphans = True
        elif ident == message_id:
            links.stored = True
        else:
            if live is not None:
                links.tickets[ident] = live
            if escalation_id is not None:
                links.escalations[ident] = escalation_id
    return links


# Built once (the pipeline runs them for every message): the messages with some
# Message-IDs, their tickets and where those were merged into, and escalations ...
_WITH_IDS = (
    select(Message.message_id, Message.ticket_id, Message.escalation_id,
           Ticket.merged_into, Message.direction)
    .outerjoin(Ticket, Ticket.id == Message.ticket_id)
    .where(Message.message_id.in_(bindparam("ids", expanding=True)))
)
# ... and the same for the messages whose In-Reply-To or References name one
# (without a Message-ID: they were not looked up by it), once per ticket, and
# inbound ones on no ticket (orphans).
_NAMING = (
    select(cast(null(), Message.message_id.type), Message.ticket_id,
           cast(null(), Message.escalation_id.type), Ticket.merged_into, Message.direction)
    .join(MessageRef, MessageRef.message_pk == Message.id)
    .outerjoin(Ticket, Ticket.id == Message.ticket_id)
    .where(MessageRef.ref == bindparam("ref"),
           or_(Message.ticket_id.is_not(None), Message.direction == Direction.IN))
    .distinct()
)
_LINKS = union_all(_WITH_IDS, _NAMING)


class ThreadStore:
    """The :class:`~mailroom.intake.threads.ThreadLookups` of a database session; what
    ``links`` holds is answered from there."""

    def __init__(self, session: Session, links: ThreadLinks | None = None) -> None:
        self.session = session
        self.links = links

    def tickets_by_message_ids(self, ids: Sequence[str]) -> dict[str, int]:
        links = self.links
        if links is not None and links.named.issuperset(ids):
            return {ident: links.tickets[ident] for ident in ids if ident in links.tickets}
        found: dict[str, int] = {}
        for start in range(0, len(ids), CHUNK):
            chunk = list(ids[start : start + CHUNK])
            rows = self.session.execute(
                select(Message.message_id, Message.ticket_id, Ticket.merged_into)
                .outerjoin(Ticket, Ticket.id == Message.ticket_id)
                .where(Message.message_id.in_(chunk), Message.ticket_id.is_not(None))
            )
            found.update({mid: _follow(self.session, tid, merged_into)
                          for mid, tid, merged_into in rows if mid and tid})
        return found

    def tickets_referring_to(self, message_id: str) -> set[int]:
        if self.links is not None and self.links.message_id == message_id:
            return set(self.links.replies)
        rows = self.session.execute(
            select(Message.ticket_id, Ticket.merged_into)
            .join(MessageRef, MessageRef.message_pk == Message.id)
            .outerjoin(Ticket, Ticket.id == Message.ticket_id)
            .where(MessageRef.ref == message_id, Message.ticket_id.is_not(None))
            .distinct()
        )
        return {_follow(self.session, tid, merged_into) for tid, merged_into in rows if tid}

    def is_participant(self, ticket_id: int, address: str) -> bool:
        ticket_id = live_ticket(self.session, ticket_id)
        row = self.session.execute(
            select(Participant.id).where(
                Participant.ticket_id == ticket_id, Participant.address == address.lower()
            )
        ).first()
        return row is not None

    def live_ticket(self, ticket_id: int) -> int | None:
        if self.session.get(Ticket, ticket_id) is None:
            return None
        return live_ticket(self.session, ticket_id)

    def ticket_by_conversation(self, conversation: str) -> int | None:
        row = self.session.execute(
            select(Message.ticket_id, Ticket.merged_into)
            .outerjoin(Ticket, Ticket.id == Message.ticket_id)
            .where(Message.conversation == conversation, Message.ticket_id.is_not(None))
            .order_by(Message.id)
            .limit(1)
        ).first()
        return _follow(self.session, row[0], row[1]) if row and row[0] else None


def live_ticket(session: Session, ticket_id: int) -> int:
    """Follow ``merged_into`` to the ticket that absorbed this one."""
    return _follow(session, ticket_id, _merged_into(session, ticket_id))


def _follow(session: Session, ticket_id: int, merged_into: int | None) -> int:
    """The live ticket of ``ticket_id``, whose ``merged_into`` the caller read already."""
    seen = {ticket_id}
    while merged_into:
        ticket_id = merged_into
        if ticket_id in seen:
            break
        seen.add(ticket_id)
        merged_into = _merged_into(session, ticket_id)
    return ticket_id


def _merged_into(session: Session, ticket_id: int) -> int | None:
    return session.execute(select(Ticket.merged_into).where(Ticket.id == ticket_id)).scalar()
