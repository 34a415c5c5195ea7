"""Changes to tickets: open, set status, find by reference, and the audit trail.

Participants are in :mod:`mailroom.cases.participants`, merging in :mod:`mailroom.cases.merging`.

Each change writes an audit :class:`Event` in the caller's transaction.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Insert, Table, Text, bindparam, case, event, func, insert, select, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import (
    ORMExecuteState,
    Session,
    aliased,
    joinedload,
    make_transient_to_detached,
)
from sqlalchemy.sql.elements import ClauseElement, ColumnElement
from sqlalchemy.sql.util import find_tables

from mailroom.mailtypes import Address
from mailroom.store.models import Event, Participant, Ticket
from mailroom.vocabulary import (
    SET_ASIDE,
    ParticipantRole,
    ParticipantState,
    TicketPriority,
    TicketStatus,
)


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


@dataclass(frozen=True)
class NewCase:
    """What a new case starts with: ``country``, whose numbers and services its
    requester mail gives (:meth:`mailroom.settings.SignpostingByCountry.country_of`
    the requester); ``platforms``, those its first message names; ``sla_due_at``,
    when its first answer is due (a requester's case: :func:`mailroom.cases.sla.first_due`)."""

    subject: str
    requester: Address | None
    at: datetime
    prefix: str
    country: str | None = None
    platforms: tuple[str, ...] = ()
    sla_due_at: datetime | None = None


def open_ticket(session: Session, case: NewCase) -> Ticket:
    """A new case, written in one statement with its reference (the id it is given,
    after the prefix: :func:`make_reference`) and everything it starts with, so that
    nothing of it is written again unless it changes; its requester is its first
    participant (written with the session's next flush)."""
    values: dict[str, Any] = {
        "status": TicketStatus.OPEN, "subject": case.subject[:1000],
        "requester": case.requester.addr if case.requester else None,
        "requester_name": case.requester.name if case.requester else None,
        "flags": [], "platforms": list(case.platforms), "created_at": case.at,
        "updated_at": case.at, "sla_due_at": case.sla_due_at,
        "priority": TicketPriority.NORMAL, "country": case.country,
    }
    number, reference = session.connection().execute(
        _insert_ticket(session), {**values, "prefix": case.prefix}).one()
    ticket = Ticket(id=number, reference=reference, participants=[],
                    **(dict.fromkeys(_UNSET) | values))
    make_transient_to_detached(ticket)  # as written: only what changes from here is written
    session.add(ticket)
    if case.requester:
        ticket.participants.append(Participant(
            address=case.requester.addr.lower(), name=case.requester.name or None,
            role=ParticipantRole.REQUESTER, state=ParticipantState.ALLOWED, added_at=case.at))
    return ticket


_TICKETS = cast(Table, Ticket.__table__)
_SET_AT_OPENING = ("status", "subject", "requester", "requester_name", "flags", "platforms",
                   "created_at", "updated_at", "sla_due_at", "priority", "country")
# The columns a new case leaves empty, named from the table so that a new column is
# one of them until it is given at opening.
_UNSET = tuple(c.key for c in _TICKETS.columns
               if c.key not in ("id", "reference", *_SET_AT_OPENING))


def _insert_ticket(session: Session) -> Insert:
    """``INSERT … SELECT`` of a new case's row with its id and reference: the id the
    database would give it (PostgreSQL: the next value of the id's sequence; SQLite,
    whose writer holds the whole database: one more than the largest), taken in the
    same statement."""
    dialect = session.get_bind().dialect.name
    built = _INSERT_TICKET.get(dialect)
    if built is None:
        built = _INSERT_TICKET[dialect] = _build_insert_ticket(dialect)
    return built


def _build_insert_ticket(dialect: str) -> Insert:
    id_ = _TICKETS.c.id
    if dialect == "postgresql":
        next_id: ColumnElement[int] = func.nextval(func.pg_get_serial_sequence("tickets", "id"))
    else:
        next_id = func.coalesce(select(func.max(id_)).scalar_subquery(), 0) + 1
    new = select(next_id.label("id")).subquery("new")
    # make_reference in SQL: at least six digits (1,000,042 → "000042" after its first digit).
    digits = case((new.c.id < 1_000_000, func.substr(sql_cast(new.c.id + 1_000_000, Text), 2)),
                  else_=sql_cast(new.c.id, Text))
    columns = [_TICKETS.c[name] for name in _SET_AT_OPENING]
    rows = select(new.c.id, bindparam("prefix", type_=Text) + digits,
                  *(bindparam(c.key, type_=c.type) for c in columns))
    return (insert(_TICKETS).from_select(["id", "reference", *(c.key for c in columns)], rows)
            .returning(_TICKETS.c.id, _TICKETS.c.reference))


_INSERT_TICKET: dict[str, Insert] = {}


def touch_ticket(session: Session, ticket_id: int, at: datetime) -> Ticket | None:
    """The case a message joins, with its participants (a requester's reply adds the new
    ones), its ``updated_at`` moved to ``at``: in one statement on PostgreSQL (an
    ``UPDATE … RETURNING`` the read joins), an UPDATE with the session's next flush
    elsewhere."""
    if session.get_bind().dialect.name != "postgresql":
        ticket = session.execute(_WITH_PARTICIPANTS, {"ticket_id": ticket_id}).unique().scalar()
        if ticket is not None:
            ticket.updated_at = at
        return ticket
    return session.execute(_TOUCHED_WITH_PARTICIPANTS, {"ticket_id": ticket_id, "at": at},
                           execution_options={"populate_existing": True}).unique().scalar()


# Built once.
_WITH_PARTICIPANTS = (
    select(Ticket).options(joinedload(Ticket.participants))
    .where(Ticket.id == bindparam("ticket_id"))
)
_TOUCHED = (
    update(_TICKETS).where(_TICKETS.c.id == bindparam("ticket_id"))
    .values(updated_at=bindparam("at")).returning(*_TICKETS.c).cte("touched")
)
_TOUCHED_TICKET = aliased(Ticket, _TOUCHED)
_TOUCHED_WITH_PARTICIPANTS = (
    select(_TOUCHED_TICKET).options(joinedload(_TOUCHED_TICKET.participants))
)


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
