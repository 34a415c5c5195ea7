"""Changes to tickets: open, set status, find by reference, and the audit trail.

Participants are in :mod:`mailroom.cases.participants`, merging in :mod:`mailroom.cases.merging`.

Each change writes an audit :class:`Event` in the caller's transaction.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, event, insert, select
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.util import find_tables

from mailroom.mailtypes import Address
from mailroom.store.models import Event, Participant, Ticket
from mailroom.vocabulary import SET_ASIDE, ParticipantRole, ParticipantState, TicketStatus


def record_event(
    session: Session,
    *,
    action: str,
    actor: str,
    at: datetime,
    ticket_id: int | None = None,
    message_pk: int | None = None,
    escalation_id: int | None = None,
    **detail: Any,
) -> None:
    """Append to the audit trail, in the caller's transaction: at once, or inside
    :func:`events_in_bulk` with the other events of the block.

    Written with a Core statement built once: the unit of work cost more than the
    row. What it names has an id, so it is already in the database."""
    row = {"ticket_id": ticket_id, "message_pk": message_pk, "escalation_id": escalation_id,
           "action": action, "actor": actor, "at": at, "detail": detail}
    held: list[dict[str, Any]] | None = session.info.get(_HELD_EVENTS)
    if held is not None:
        held.append(row)
    else:
        session.connection().execute(_INSERT_EVENT, row)


_INSERT_EVENT = insert(cast(Table, Event.__table__))
_EVENTS = cast(Table, Event.__table__)
_HELD_EVENTS = "mailroom.events_held"


@contextlib.contextmanager
def events_in_bulk(session: Session) -> Iterator[None]:
    """The events recorded in the block are written together (one ``executemany``)
    when it ends without an error, or before the session runs a query that reads
    the events table, whichever comes first; an error drops them, with the
    transaction the caller then rolls back (``mailroom ingest``'s write slices)."""
    session.info[_HELD_EVENTS] = []
    try:
        yield
        _write_held(session)
    finally:
        session.info.pop(_HELD_EVENTS, None)


def _write_held(session: Session) -> None:
    held: list[dict[str, Any]] | None = session.info.get(_HELD_EVENTS)
    if held:
        rows = list(held)
        held.clear()
        session.connection().execute(_INSERT_EVENT, rows)


@event.listens_for(Session, "do_orm_execute")
def _held_events_first(state: ORMExecuteState) -> None:
    """A query that reads the events table sees the events held by :func:`events_in_bulk`
    (only a SELECT reads them)."""
    if state.session.info.get(_HELD_EVENTS) and state.is_select and _reads_events(
            cast(ClauseElement, state.statement)):
        _write_held(state.session)


def _reads_events(statement: ClauseElement) -> bool:
    """Whether the statement reads the events table (remembered for a statement built
    once: looking costs more than the statement it would save)."""
    known = _READS_EVENTS.get(statement)
    if known is None:
        known = _READS_EVENTS[statement] = _EVENTS in find_tables(
            statement, include_joins=True)
    return known


_READS_EVENTS: weakref.WeakKeyDictionary[ClauseElement, bool] = weakref.WeakKeyDictionary()


def make_reference(prefix: str, ticket_id: int) -> str:
    return f"{prefix}{ticket_id:06d}"


def open_ticket(
    session: Session, *, subject: str, requester: Address | None, at: datetime, prefix: str,
    country: str | None = None,
) -> Ticket:
    """A new case; ``country``: whose numbers and services its requester mail gives
    (:meth:`mailroom.settings.SignpostingByCountry.country_of` the requester)."""
    ticket = Ticket(
        subject=subject[:1000], status=TicketStatus.OPEN, created_at=at, updated_at=at,
        requester=requester.addr if requester else None,
        requester_name=requester.name if requester else None, flags=[], country=country,
        participants=[],  # known empty: adding the requester needs no SELECT
    )
    session.add(ticket)
    session.flush()
    ticket.reference = make_reference(prefix, ticket.id)
    if requester:
        ticket.participants.append(Participant(
            address=requester.addr.lower(), name=requester.name or None,
            role=ParticipantRole.REQUESTER, state=ParticipantState.ALLOWED, added_at=at))
    return ticket


def set_status(
    session: Session, ticket: Ticket, status: str, *, actor: str, at: datetime,
    message_pk: int | None = None,
) -> bool:
    """Change the status; False when it already was that."""
    if status not in tuple(TicketStatus):
        raise ValueError(f"unknown status {status!r}")
    if ticket.status == status:
        return False
    before, ticket.status = ticket.status, status
    ticket.updated_at = at
    ticket.closed_at = at if status in (TicketStatus.CLOSED, *SET_ASIDE) else None
    record_event(session, action="ticket.status", actor=actor, at=at, ticket_id=ticket.id,
                 message_pk=message_pk, before=before, after=status)
    return True


def ticket_by_reference(session: Session, ref: str) -> Ticket | None:
    """Find a ticket by id (``12``), reference (``HL-000012``) or tag number."""
    ref = ref.strip()
    if ref.isdigit():
        return session.get(Ticket, int(ref))
    found = session.execute(select(Ticket).where(Ticket.reference == ref.upper())).scalar()
    if found is None:
        digits = "".join(ch for ch in ref if ch.isdigit())
        return session.get(Ticket, int(digits)) if digits else None
    return found
