"""Queries the pipeline needs, each one indexed so it stays flat as history grows."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailroom.store.models import Message, MessageRef, Participant, Ticket

CHUNK = 500


class ThreadStore:
    """The :class:`~mailroom.threads.ThreadLookups` of a database session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def tickets_by_message_ids(self, ids: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for start in range(0, len(ids), CHUNK):
            chunk = list(ids[start : start + CHUNK])
            rows = self.session.execute(
                select(Message.message_id, Message.ticket_id).where(
                    Message.message_id.in_(chunk), Message.ticket_id.is_not(None)
                )
            )
            found.update({mid: tid for mid, tid in rows if mid and tid})
        return {ident: live_ticket(self.session, tid) for ident, tid in found.items()}

    def tickets_referring_to(self, message_id: str) -> set[int]:
        rows = self.session.execute(
            select(Message.ticket_id)
            .join(MessageRef, MessageRef.message_pk == Message.id)
            .where(MessageRef.ref == message_id, Message.ticket_id.is_not(None))
            .distinct()
        )
        return {live_ticket(self.session, tid) for (tid,) in rows if tid}

    def is_participant(self, ticket_id: int, address: str) -> bool:
        ticket_id = live_ticket(self.session, ticket_id)
        row = self.session.execute(
            select(Participant.id).where(
                Participant.ticket_id == ticket_id, Participant.address == address.lower()
            )
        ).first()
        return row is not None

    def ticket_exists(self, ticket_id: int) -> bool:
        return self.session.get(Ticket, ticket_id) is not None

    def ticket_by_conversation(self, conversation: str) -> int | None:
        tid = self.session.execute(
            select(Message.ticket_id)
            .where(Message.conversation == conversation, Message.ticket_id.is_not(None))
            .order_by(Message.id)
            .limit(1)
        ).scalar()
        return live_ticket(self.session, tid) if tid else None


def live_ticket(session: Session, ticket_id: int) -> int:
    """Follow ``merged_into`` to the ticket that absorbed this one."""
    seen = set()
    while ticket_id not in seen:
        seen.add(ticket_id)
        target = session.execute(
            select(Ticket.merged_into).where(Ticket.id == ticket_id)
        ).scalar()
        if not target:
            return ticket_id
        ticket_id = target
    return ticket_id


def message_exists(session: Session, message_id: str) -> bool:
    return session.execute(
        select(func.count()).select_from(Message).where(Message.message_id == message_id)
    ).scalar_one() > 0
