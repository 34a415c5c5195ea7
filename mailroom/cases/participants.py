"""Who is on a case, and who may receive anything of it.

Threading decides which case a message belongs to, never who may read it.
Every participant has a state:

- ``allowed``: receives the case's mail. The requester is allowed from the
  start; anyone else only once a practitioner allows them (``#allow ADDRESS``,
  ``#allow all``, ``mailroom tickets allow``).
- ``pending``: recorded because they wrote into the case (through a reply
  token, the headers or the subject tag) or were in the To or Cc of its mail.
  Practitioners see their mail and are told "new sender, not on this case";
  they receive nothing of the case.
- ``removed``: a practitioner took them off (``#remove``); they receive nothing
  and their later mail is treated as a pending sender's.

The practitioners (configuration) and the platforms (an escalation's own
thread) are not participants: they are reached through their own rules.

The **audience** of a case is its requester and its allowed participants: the
people outside the helpline who may receive it. A merge that would change the
audience of either case is not made by itself (see :mod:`mailroom.pipeline`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from mailroom.cases.tickets import record_event
from mailroom.errors import MailroomError
from mailroom.mailtypes import Address
from mailroom.outbox.compose import is_writable_address
from mailroom.store.models import Participant, Ticket
from mailroom.vocabulary import ParticipantRole as Role
from mailroom.vocabulary import ParticipantState as State

ALL = "all"  # ``#allow all``: every pending participant
NEW = "new"  # the standing of an address that is not on the case
PENDING_SENDER = "pending-sender"  # the flag of a message from an address not on the case


def audience(ticket: Ticket) -> frozenset[str]:
    """The addresses outside the helpline that receive the case's mail."""
    people = {p.address for p in ticket.participants if p.state == State.ALLOWED}
    if ticket.requester:
        people.add(ticket.requester.lower())
    return frozenset(people)


def copy_recipients(ticket: Ticket) -> tuple[Address, ...]:
    """Allowed participants other than the requester whose mail does not bounce: the Cc
    of answers to the case."""
    requester = (ticket.requester or "").lower()
    return tuple(Address(p.address, p.name or "") for p in ticket.participants
                 if p.state == State.ALLOWED and p.address != requester
                 and p.failing_since is None and is_writable_address(p.address))


def standing(ticket: Ticket, address: str | None) -> str:
    """``requester``, ``allowed``, ``pending``, ``removed`` or ``new`` (not on the case)."""
    if not address:
        return NEW
    address = address.lower()
    if ticket.requester and ticket.requester.lower() == address:
        return Role.REQUESTER
    for person in ticket.participants:
        if person.address == address:
            return person.state
    return NEW


def may_receive(ticket: Ticket, address: str) -> bool:
    return standing(ticket, address) in (Role.REQUESTER, State.ALLOWED)


def find(ticket: Ticket, address: str) -> Participant | None:
    address = address.lower()
    return next((p for p in ticket.participants if p.address == address), None)


def add(ticket: Ticket, who: Address, *, role: str, state: str, at: datetime) -> bool:
    """Put someone on the case in ``state``; False when they were already on it."""
    if find(ticket, who.addr) is not None:
        return False
    ticket.participants.append(Participant(address=who.addr.lower(), name=who.name or None,
                                           role=role, state=state, added_at=at))
    return True


def record_pending(
    session: Session, ticket: Ticket, people: Iterable[Address], *, at: datetime,
    message_pk: int | None, actor: str,
) -> list[str]:
    """Record the people a message brought to the case as ``pending``; the new ones."""
    added = [p.addr.lower() for p in people
             if add(ticket, p, role=Role.CC, state=State.PENDING, at=at)]
    if added:
        record_event(session, action="participants.pending", actor=actor, at=at,
                     ticket_id=ticket.id, message_pk=message_pk, addresses=added)
    return added


class ParticipantError(MailroomError):
    """A practitioner's participant change that cannot be made (the reason, one line)."""


def allow(
    session: Session, ticket: Ticket, target: str, *, actor: str, at: datetime,
    message_pk: int | None = None,
) -> list[str]:
    """Let ``target`` (an address, or ``all`` pending ones) receive the case's mail.

    An address not yet on the case is added: a practitioner may bring someone in.
    Returns the addresses that changed (none when all were allowed already)."""
    if target.lower() == ALL:
        people = [p for p in ticket.participants if p.state == State.PENDING]
    else:
        address = target.lower()
        if not is_writable_address(address):
            raise ParticipantError(f"{target} is not an address mailroom can write to")
        if standing(ticket, address) == Role.REQUESTER:
            return []
        add(ticket, Address(address), role=Role.CC, state=State.PENDING, at=at)
        person = find(ticket, address)
        people = [person] if person is not None and person.state != State.ALLOWED else []
    for person in people:
        person.state = State.ALLOWED
    changed = [p.address for p in people]
    if changed:
        record_event(session, action="participants.allowed", actor=actor, at=at,
                     ticket_id=ticket.id, message_pk=message_pk, addresses=changed)
    return changed


def remove(
    session: Session, ticket: Ticket, address: str, *, actor: str, at: datetime,
    message_pk: int | None = None,
) -> bool:
    """Take ``address`` off the case: it receives nothing more. False when it was not on it."""
    if standing(ticket, address) == Role.REQUESTER:
        raise ParticipantError(f"{address} opened the case and cannot be removed from it")
    person = find(ticket, address)
    if person is None or person.state == State.REMOVED:
        return False
    before, person.state = person.state, State.REMOVED
    record_event(session, action="participants.removed", actor=actor, at=at,
                 ticket_id=ticket.id, message_pk=message_pk, address=person.address,
                 before=before)
    return True


def join_participants(keep: Ticket, other: Ticket, *, at: datetime) -> None:
    """A merge: ``other``'s participants come over. Someone on both keeps the wider
    state of the two (the practitioner who merged accepted both audiences)."""
    rank: dict[str, int] = {State.REMOVED: 0, State.PENDING: 1, State.ALLOWED: 2}
    for person in other.participants:
        address = person.address
        if keep.requester and keep.requester.lower() == address:
            continue
        state = State.ALLOWED if person.role == Role.REQUESTER else person.state
        mine = find(keep, address)
        if mine is None:
            keep.participants.append(Participant(address=address, name=person.name,
                                                 role=Role.CC, state=state, added_at=at))
        elif rank.get(state, 0) > rank.get(mine.state, 0):
            mine.state = state
