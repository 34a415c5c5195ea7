"""Merging cases, and linking the ones that must not be merged by themselves.

A message can prove that two cases are one conversation (its References name
messages of both, or replies to it arrived first on another case). Merging
them moves messages, escalations, queued mail and participants to the case
that stays, so it can widen who receives the case: a reply on an attacker's
own case naming a Message-ID of a victim's case would otherwise pull the
victim's case, and its answers, to the attacker.

Rules:

- **By itself** (the pipeline), a case is merged into another only when the
  merge adds no recipient to either: both have the same audience
  (:func:`mailroom.cases.participants.audience`, the requester and allowed
  participants). Otherwise the two are **linked** as related
  (``ticket_links``, both ways, an audit event on each) and the practitioners
  are told, with the command that would merge them (``#merge REF`` or
  ``mailroom tickets merge``): only a practitioner widens an audience.
- A merge always goes into a **live** case (one not merged itself) and never
  from a case into itself or into one of the cases it absorbed, so no case can
  disappear through a merge and no two cases end up merged into each other.
- The case that stays keeps the **strictest safeguarding state** of both: a
  merged illegal-content case makes the survivor illegal too, so its files are
  withheld from then on (the caller applies the storage rules).
- Mail addressed to an absorbed case (a reply token, or headers naming its
  messages) lands on the surviving case, and never reopens the absorbed one
  (:func:`mailroom.store.repository.live_ticket` is followed everywhere).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mailroom.cases.participants import audience, join_participants
from mailroom.cases.safeguarding import ILLEGAL_FLAG, is_illegal_case
from mailroom.cases.tickets import record_event
from mailroom.store.models import Escalation, Message, OutboxItem, Ticket, TicketLink
from mailroom.vocabulary import SYSTEM_ACTOR, OutboxKind, OutboxStatus, TicketStatus


class MergeError(ValueError):
    """A merge that cannot be made (one line: why)."""


@dataclass
class Merged:
    """What a merge did: the cases folded in, and whether the survivor became illegal."""

    absorbed: list[Ticket] = field(default_factory=list)
    became_illegal: bool = False


def may_merge_by_itself(keep: Ticket, other: Ticket) -> bool:
    """Whether merging adds no recipient to either case (the same audience)."""
    return audience(keep) == audience(other)


def merge_tickets(
    session: Session, keep: Ticket, others: Iterable[Ticket], *, at: datetime, reason: str,
    actor: str = SYSTEM_ACTOR, message_pk: int | None = None,
) -> Merged:
    """Fold ``others`` into the live case ``keep``: messages, escalations, queued mail and
    participants move over; each absorbed case is closed and points at ``keep``."""
    if keep.merged_into is not None:
        raise MergeError(f"case {keep.reference} was merged into another case")
    merged = Merged()
    was_illegal = is_illegal_case(keep)
    for other in others:
        if other.id == keep.id or other.merged_into is not None:
            continue
        _withdraw_second_acknowledgement(session, other, keep)
        _move_rows(session, other, keep)
        join_participants(keep, other, at=at)
        _join_state(keep, other)
        other.merged_into, other.status, other.updated_at = keep.id, TicketStatus.CLOSED, at
        other.closed_at = at
        record_event(session, action="ticket.merged", actor=actor, at=at, ticket_id=keep.id,
                     message_pk=message_pk, merged=other.id, reference=other.reference,
                     reason=reason)
        merged.absorbed.append(other)
    merged.became_illegal = not was_illegal and is_illegal_case(keep)
    session.flush()
    session.expire(keep, ["messages", "escalations"])
    return merged


def _move_rows(session: Session, other: Ticket, keep: Ticket) -> None:
    for table, column in ((Message, Message.ticket_id), (Escalation, Escalation.ticket_id),
                          (OutboxItem, OutboxItem.ticket_id)):
        session.execute(update(table).where(column == other.id).values(ticket_id=keep.id))
    # Links of the absorbed case become the survivor's (one to itself, or one it has, goes).
    for link in session.execute(select(TicketLink).where(
            TicketLink.ticket_id == keep.id, TicketLink.related_id == other.id)).scalars():
        session.delete(link)
    kept = set(related_ids(session, keep.id)) | {keep.id}
    for link in session.execute(select(TicketLink).where(
            TicketLink.ticket_id == other.id)).scalars():
        if link.related_id in kept:
            session.delete(link)
        else:
            link.ticket_id = keep.id
            kept.add(link.related_id)


def _withdraw_second_acknowledgement(session: Session, other: Ticket, keep: Ticket) -> None:
    """The absorbed case's acknowledgement still waiting (a reply that came before its
    parent waits a grace period, see :func:`mailroom.cases.replies.acknowledgement_delay`)
    is withdrawn when the case that stays has one: one case, one acknowledgement."""
    kept = session.execute(select(OutboxItem.id).where(
        OutboxItem.ticket_id == keep.id, OutboxItem.kind == OutboxKind.ACKNOWLEDGEMENT,
        OutboxItem.status != OutboxStatus.FAILED).limit(1)).first()
    if kept is None:
        return
    session.execute(update(OutboxItem).where(
        OutboxItem.ticket_id == other.id, OutboxItem.kind == OutboxKind.ACKNOWLEDGEMENT,
        OutboxItem.status == OutboxStatus.QUEUED,
    ).values(status=OutboxStatus.FAILED,
             last_error=f"withdrawn: the case was merged into {keep.reference}, which has"
                        " its acknowledgement"))


def _join_state(keep: Ticket, other: Ticket) -> None:
    """Platforms, flags and the strictest safeguarding state of both; the older start."""
    known = list(keep.platforms or [])
    keep.platforms = known + [p for p in other.platforms or [] if p not in known]
    flags = list(keep.flags or [])
    flags += [f for f in other.flags or [] if f not in flags]
    if is_illegal_case(other) and ILLEGAL_FLAG not in flags:
        flags.append(ILLEGAL_FLAG)
    keep.flags = flags
    if keep.category is None and other.category:
        keep.category = other.category
    if other.created_at < keep.created_at:
        keep.created_at = other.created_at


def link_related(
    session: Session, ticket: Ticket, other: Ticket, *, at: datetime, reason: str,
    message_pk: int | None = None,
) -> bool:
    """Record that two cases look like one conversation; False when already linked."""
    if ticket.id == other.id or other.id in related_ids(session, ticket.id):
        return False
    for first, second in ((ticket, other), (other, ticket)):
        session.add(TicketLink(ticket_id=first.id, related_id=second.id, reason=reason,
                               message_pk=message_pk, created_at=at))
        record_event(session, action="ticket.related", actor=SYSTEM_ACTOR, at=at,
                     ticket_id=first.id, message_pk=message_pk, related=second.id,
                     reference=second.reference, reason=reason)
    session.flush()
    return True


def related_ids(session: Session, ticket_id: int) -> list[int]:
    """The cases linked to this one, oldest link first."""
    return list(session.execute(
        select(TicketLink.related_id).where(TicketLink.ticket_id == ticket_id)
        .order_by(TicketLink.id)).scalars())
