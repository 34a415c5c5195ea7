"""The durable outbox: mail queued in the caller's transaction.

``queue_mail`` renders the message when it is queued, so its Message-ID,
headers and text are fixed before anything is sent, and records it as an
outgoing ``Message`` on its ticket (threading finds replies to it). The
MIME message is composed when it is sent (:mod:`mailroom.sending.sender`,
from the rendered form in :mod:`~mailroom.outbox.rendered`), and attachments
go by reference to the blob store and are added then: queueing stays cheap
however large the files, and safeguarding is asked again at that moment.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, case, func, insert, select, union
from sqlalchemy.orm import Session

from mailroom.mailtypes import Address, StoredFile
from mailroom.outbox.compose import clean_header_text, make_message_id
from mailroom.outbox.render import Renderer
from mailroom.outbox.rendered import rendered_form
from mailroom.settings import Settings
from mailroom.store.models import Message, OutboxItem, Ticket
from mailroom.vocabulary import Direction, OutboxKind, OutboxStatus

log = logging.getLogger("mailroom.outbox")

@dataclass(frozen=True)
class Draft:
    """An outgoing mail before rendering."""

    kind: OutboxKind
    template: str  # e.g. "requester/acknowledgement"
    context: Mapping[str, Any]
    to: tuple[Address, ...]
    subject: str
    cc: tuple[Address, ...] = ()
    ticket_id: int | None = None
    escalation_id: int | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    reply_to: Address | None = None
    auto_submitted: str | None = "auto-replied"
    attachments: tuple[StoredFile, ...] = ()  # attached from the blob store when sent
    send_after: datetime | None = None
    record_text: str | None = None  # what to show on the ticket (default: the text body)
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    # Acknowledgements: what the mail acknowledged said (see recent_acknowledgements).
    subject_key: str | None = None
    body_key: str | None = None


def sender_address(settings: Settings) -> Address:
    return Address(settings.helpline_address, settings.helpline_name)


def queue_mail(settings: Settings, renderer: Renderer, session: Session, draft: Draft, *,
               now: datetime) -> Queued:
    """Render and queue ``draft`` at ``now``, in the caller's transaction (composed when
    sent): its Date, and when it was queued and may be sent (unless it says later)."""
    message_id = make_message_id(settings.domain)
    text, html = renderer.render(draft.template, draft.context)
    subject = clean_header_text(draft.subject)
    rendered = rendered_form(
        from_addr=sender_address(settings), to=draft.to, cc=draft.cc, subject=subject,
        text=text, html=html, message_id=message_id, in_reply_to=draft.in_reply_to,
        references=draft.references, reply_to=draft.reply_to,
        auto_submitted=draft.auto_submitted, loop_token=settings.loop_token,
        extra_headers=draft.extra_headers, date=now,
    )
    recipients = [a.addr for a in (*draft.to, *draft.cc)]
    # Written with Core statements built once: the unit of work cost more than the
    # rows (nothing reads these objects back in the caller's session).
    conn = session.connection()
    outbox: dict[str, Any] = {
        "ticket_id": draft.ticket_id, "escalation_id": draft.escalation_id, "kind": draft.kind,
        "status": OutboxStatus.QUEUED, "attempts": 0, "send_after": draft.send_after or now,
        "message_id": message_id, "mail_from": settings.helpline_address,
        "rcpt_to": recipients, "to_addr": recipients[0] if recipients else "",
        "subject": subject, "rendered": rendered,
        "files": [asdict(f) for f in draft.attachments] or None, "created_at": now,
        "subject_key": draft.subject_key, "body_key": draft.body_key,
    }
    message: dict[str, Any] = {
        "ticket_id": draft.ticket_id, "escalation_id": draft.escalation_id,
        "direction": Direction.OUT,
        "kind": draft.kind, "sender": settings.helpline_address,
        "sender_name": settings.helpline_name,
        "recipients": {"to": [a.addr for a in draft.to], "cc": [a.addr for a in draft.cc]},
        "message_id": message_id, "in_reply_to": draft.in_reply_to,
        "references": " ".join(draft.references) or None, "conversation": None,
        "subject": subject, "date": now,
        "text": draft.record_text if draft.record_text is not None else text,
        "urls": [], "flags": [], "created_at": now,
    }
    if conn.dialect.name == "postgresql":  # one statement: two data-modifying WITH clauses
        item_id = conn.execute(_POSTGRES_QUEUE, {
            **outbox, **{f"m_{key}": value for key, value in message.items()}}).scalar_one()
    else:
        item_id = conn.execute(_INSERT_OUTBOX, outbox).scalar_one()
        conn.execute(_INSERT_MESSAGE, message)
    return Queued(id=item_id, message_id=message_id)


@dataclass(frozen=True)
class Queued:
    """What the caller of :func:`queue_mail` may need of the row it wrote."""

    id: int
    message_id: str


_OUTBOX = cast(Table, OutboxItem.__table__)
_INSERT_OUTBOX = insert(_OUTBOX).returning(_OUTBOX.c.id)
_MESSAGES = cast(Table, Message.__table__)
_INSERT_MESSAGE = insert(_MESSAGES)
_OUTBOX_FIELDS = ("ticket_id", "escalation_id", "kind", "status", "attempts", "send_after",
                  "message_id", "mail_from", "rcpt_to", "to_addr", "subject", "rendered",
                  "files", "created_at", "subject_key", "body_key")
_MESSAGE_FIELDS = ("ticket_id", "escalation_id", "direction", "kind", "sender", "sender_name",
                   "recipients", "message_id", "in_reply_to", "references", "conversation",
                   "subject", "date", "text", "urls", "flags", "created_at")


def _postgres_queue() -> Select[Any]:
    """The outbox row and its outgoing message in one statement (PostgreSQL)."""
    new = insert(_OUTBOX).values({
        name: bindparam(name, type_=_OUTBOX.c[name].type) for name in _OUTBOX_FIELDS
    }).returning(_OUTBOX.c.id).cte("new_outbox")
    recorded = insert(_MESSAGES).from_select(list(_MESSAGE_FIELDS), select(*(
        bindparam(f"m_{name}", type_=_MESSAGES.c[name].type) for name in _MESSAGE_FIELDS
    )), include_defaults=False).cte("new_message")
    return select(new.c.id).add_cte(recorded)


_POSTGRES_QUEUE = _postgres_queue()


def practitioner_recipients(
    settings: Settings, session: Session, ticket_id: int | None
) -> tuple[Address, ...]:
    """The assignee when there is one, else the team address, else every practitioner."""
    ticket = session.get(Ticket, ticket_id) if ticket_id else None
    if ticket is not None and ticket.assignee:
        return (Address(ticket.assignee),)
    if settings.team_address:
        return (Address(settings.team_address),)
    return tuple(Address(a) for a in settings.practitioners)


@dataclass(frozen=True)
class RecentAcknowledgements:
    """How many acknowledgements were queued lately, to one sender and for one content."""

    to_sender_in_window: int
    to_sender_in_day: int
    same_content: int  # for the same subject or body key, whoever they went to


def recent_acknowledgements(
    session: Session, address: str, *, window_since: datetime, day_since: datetime,
    content_since: datetime, subject_key: str | None, body_key: str | None,
) -> RecentAcknowledgements:
    """Acknowledgements queued to ``address`` since two moments, and those for the same
    content (the subject key or the body key; a None key matches nothing) since a third,
    whoever they went to, in one query (on the connection: ``queue_mail`` writes its rows
    at once, so nothing pending in the session need be flushed first)."""
    row = session.connection().execute(_RECENT_ACKNOWLEDGEMENTS, {
        "address": address, "window_since": window_since, "day_since": day_since,
        "earliest": min(window_since, day_since), "content_since": content_since,
        "subject_key": subject_key, "body_key": body_key}).one()
    return RecentAcknowledgements(int(row[0]), int(row[1]), int(row[2]))


def _since(name: str) -> Any:
    moment = bindparam(name, type_=OutboxItem.created_at.type)
    return func.coalesce(func.sum(case((OutboxItem.created_at >= moment, 1), else_=0)), 0)


def _acknowledgements_with(key: Any, name: str) -> Any:
    return select(OutboxItem.id).where(
        OutboxItem.kind == OutboxKind.ACKNOWLEDGEMENT, key == bindparam(name),
        OutboxItem.created_at >= bindparam("content_since", type_=OutboxItem.created_at.type))


# Built once: the pipeline asks for every new case. Each part reads one index: the
# sender's rows by (kind, to_addr, created_at); the same content as a UNION (a row with
# both keys counts once) of (kind, subject_key, created_at) and (kind, body_key, created_at).
_SAME_CONTENT = select(func.count()).select_from(union(
    _acknowledgements_with(OutboxItem.subject_key, "subject_key"),
    _acknowledgements_with(OutboxItem.body_key, "body_key"),
).subquery()).scalar_subquery()
_RECENT_ACKNOWLEDGEMENTS = select(_since("window_since"), _since("day_since"), _SAME_CONTENT).where(
    OutboxItem.kind == OutboxKind.ACKNOWLEDGEMENT, OutboxItem.to_addr == bindparam("address"),
    OutboxItem.created_at >= bindparam("earliest", type_=OutboxItem.created_at.type))
