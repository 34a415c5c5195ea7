"""Tickets, messages and inbox rows as plain dicts for ``--json`` and text output."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from mailroom.cases.escalations import escalation_view
from mailroom.cases.repeats import repeats_of
from mailroom.store.models import Event, InboxItem, Message, OutboxItem, Ticket, TicketLink


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def ticket_summary(ticket: Ticket) -> dict[str, Any]:
    return {
        "id": ticket.id,
        "reference": ticket.reference,
        "status": ticket.status,
        "priority": ticket.priority,
        "subject": ticket.subject,
        "category": ticket.category,
        "role": ticket.role,
        "country": ticket.country,  # None: opened before it had one (the default set)
        "requester": ticket.requester,
        "assignee": ticket.assignee,
        "flags": list(ticket.flags or []),
        "platforms": list(ticket.platforms or []),
        "created_at": iso(ticket.created_at),
        "updated_at": iso(ticket.updated_at),
        "first_response_at": iso(ticket.first_response_at),
        "sla_due_at": iso(ticket.sla_due_at),
        "closed_at": iso(ticket.closed_at),
        "participants": [
            {"address": p.address, "name": p.name, "role": p.role, "state": p.state,
             "failing_since": iso(p.failing_since), "failing_reason": p.failing_reason}
            for p in ticket.participants
        ],
        "escalations": [escalation_view(e) for e in ticket.escalations],
    }


def message_view(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "direction": message.direction,
        "kind": message.kind,
        "sender": message.sender,
        "to": list((message.recipients or {}).get("to", [])),
        "cc": list((message.recipients or {}).get("cc", [])),
        "subject": message.subject,
        "message_id": message.message_id,
        "in_reply_to": message.in_reply_to,
        "date": iso(message.date or message.created_at),
        "text": message.text,
        "urls": list(message.urls or []),
        "attachments": [
            {"filename": a.filename, "content_type": a.content_type, "size": a.size,
             "sha256": a.sha256, "stored": a.stored}
            for a in message.attachments
        ],
        "flags": list(message.flags or []),
    }


def event_view(event: Event) -> dict[str, Any]:
    return {"at": iso(event.at), "actor": event.actor, "action": event.action,
            "message_id": event.message_pk, "detail": event.detail}


def ticket_detail(session: Session, ticket: Ticket) -> dict[str, Any]:
    view = ticket_summary(ticket)
    messages = session.execute(
        select(Message).where(Message.ticket_id == ticket.id).order_by(Message.id)
        .options(selectinload(Message.attachments))
    ).scalars()
    view["messages"] = [message_view(m) for m in messages]
    events = session.execute(
        select(Event).where(Event.ticket_id == ticket.id).order_by(Event.id)
    ).scalars()
    view["events"] = [event_view(e) for e in events]
    view["related"] = [{"id": t.id, "reference": t.reference, "status": t.status}
                       for t in related_tickets(session, ticket.id)]
    view["repeats"] = [{"target": r.target, "url": r.url, "references": r.references}
                       for r in repeats_of(session, ticket.id)]
    return view


def related_tickets(session: Session, ticket_id: int) -> list[Ticket]:
    """Cases linked to this one as the same conversation, that were not merged."""
    return list(session.execute(
        select(Ticket).join(TicketLink, TicketLink.related_id == Ticket.id)
        .where(TicketLink.ticket_id == ticket_id).order_by(TicketLink.id)).scalars())


def list_tickets(session: Session, statuses: Sequence[str] = (),
                 limit: int = 1000) -> list[Ticket]:
    """Cases not merged into another, newest first; of ``statuses`` when given."""
    stmt = (
        select(Ticket).where(Ticket.merged_into.is_(None))
        .options(selectinload(Ticket.participants), selectinload(Ticket.escalations))
        .order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(limit)
    )
    if statuses:
        stmt = stmt.where(Ticket.status.in_(statuses))
    return list(session.execute(stmt).scalars())


def inbox_view(item: InboxItem) -> dict[str, Any]:
    return {
        "id": item.id, "status": item.status, "outcome": item.outcome, "door": item.door,
        "door_ref": item.door_ref, "mail_from": item.mail_from, "rcpt_to": item.rcpt_to,
        "size": item.size, "received_at": iso(item.received_at), "attempts": item.attempts,
        "error": item.error, "message_pk": item.message_pk,
    }


def outbox_view(item: OutboxItem) -> dict[str, Any]:
    return {
        "id": item.id, "kind": item.kind, "status": item.status, "to": list(item.rcpt_to),
        "subject": item.subject, "message_id": item.message_id, "ticket_id": item.ticket_id,
        "escalation_id": item.escalation_id, "attempts": item.attempts,
        "send_after": iso(item.send_after), "sent_at": iso(item.sent_at),
        "last_error": item.last_error, "created_at": iso(item.created_at),
    }
