"""The durable outbox: queue in the caller's transaction, send from a job.

``queue_mail`` renders and composes the message when it is queued, so its
Message-ID and bytes are fixed before anything is sent, and records it as an
outgoing ``Message`` on its ticket (threading finds replies to it). The
sender job claims due rows with a lease (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL), sends each through the transport and marks it ``sent`` right
after the relay accepted it. Temporary failures are retried with exponential
backoff; after the last attempt, or on a permanent refusal, the row is
``failed`` and the practitioners are told by email.
"""

from __future__ import annotations

import email
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from mailroom.app import App
from mailroom.mailtypes import Address
from mailroom.outbound.compose import POLICY, compose_message, make_message_id
from mailroom.outbound.transports import PermanentFailure, TransportError
from mailroom.store.db import is_postgres, unavailable_as_store_error
from mailroom.store.models import Message, OutboxItem, Ticket

log = logging.getLogger("mailroom.outbox")

LEASE = timedelta(minutes=10)
CLAIM_BATCH = 20
MAX_BACKOFF = timedelta(hours=6)
# Mail about our own failures is never itself reported when it fails.
UNREPORTED_KINDS = frozenset({"outbox_failed"})


@dataclass(frozen=True)
class Draft:
    """An outgoing mail before rendering."""

    kind: str  # acknowledgement, notification, relay, escalation, follow_up, …
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
    attachments: tuple[tuple[str, str, bytes], ...] = ()
    send_after: datetime | None = None
    record_text: str | None = None  # what to show on the ticket (default: the text body)
    extra_headers: Mapping[str, str] = field(default_factory=dict)


def sender_address(app: App) -> Address:
    return Address(app.settings.helpline_address, app.settings.helpline_name)


def queue_mail(app: App, session: Session, draft: Draft) -> OutboxItem:
    """Render, compose and queue ``draft`` in the caller's transaction."""
    settings, now = app.settings, app.now()
    message_id = make_message_id(settings.domain)
    text, html = app.renderer.render(draft.template, draft.context)
    msg = compose_message(
        from_addr=sender_address(app), to=draft.to, cc=draft.cc, subject=draft.subject,
        text=text, html=html, message_id=message_id, in_reply_to=draft.in_reply_to,
        references=draft.references, reply_to=draft.reply_to,
        auto_submitted=draft.auto_submitted, loop_token=settings.loop_token,
        attachments=draft.attachments, extra_headers=draft.extra_headers, date=now,
    )
    recipients = [a.addr for a in (*draft.to, *draft.cc)]
    item = OutboxItem(
        ticket_id=draft.ticket_id, escalation_id=draft.escalation_id, kind=draft.kind,
        status="queued", attempts=0, send_after=draft.send_after or now,
        message_id=message_id, mail_from=settings.helpline_address, rcpt_to=recipients,
        to_addr=recipients[0] if recipients else "", subject=str(msg["Subject"]),
        raw=msg.as_bytes(), created_at=now,
    )
    session.add(item)
    session.add(Message(
        ticket_id=draft.ticket_id, escalation_id=draft.escalation_id, direction="out",
        kind=draft.kind, sender=settings.helpline_address, sender_name=settings.helpline_name,
        recipients={"to": [a.addr for a in draft.to], "cc": [a.addr for a in draft.cc]},
        message_id=message_id, in_reply_to=draft.in_reply_to,
        references=" ".join(draft.references) or None, subject=str(msg["Subject"]),
        date=now, text=draft.record_text if draft.record_text is not None else text,
        flags=[], created_at=now,
    ))
    session.flush()
    return item


# --- sending ------------------------------------------------------------------------


def send_due(app: App, *, limit: int = 500) -> dict[str, int]:
    """Send every due outbox row (up to ``limit``); return counts by result."""
    counts: dict[str, int] = {}
    while sum(counts.values()) < limit:
        claimed = claim_due(app, min(CLAIM_BATCH, limit - sum(counts.values())))
        if not claimed:
            break
        for item_id in claimed:
            result = send_one(app, item_id)
            counts[result] = counts.get(result, 0) + 1
    return counts


def claim_due(app: App, count: int) -> list[int]:
    """Lease up to ``count`` due rows to this process; return their ids."""
    now = app.now()
    due = or_(
        (OutboxItem.status == "queued") & (OutboxItem.send_after <= now),
        (OutboxItem.status == "sending") & (OutboxItem.send_after <= now - LEASE),
    )
    with unavailable_as_store_error(), app.sessions.begin() as session:
        stmt = select(OutboxItem.id).where(due).order_by(OutboxItem.id).limit(count)
        if is_postgres(session):
            stmt = stmt.with_for_update(skip_locked=True)
        ids = list(session.execute(stmt).scalars())
        if ids:
            # send_after doubles as the lease start while a row is "sending".
            session.execute(update(OutboxItem).where(OutboxItem.id.in_(ids))
                            .values(status="sending", send_after=now))
    return ids


def send_one(app: App, item_id: int) -> str:
    """Send a claimed row; return ``sent``, ``retry`` or ``failed``."""
    with unavailable_as_store_error(), app.sessions() as session:
        item = session.get(OutboxItem, item_id)
        if item is None or item.status != "sending":
            return "skipped"
        raw, mail_from, rcpt_to = item.raw or b"", item.mail_from, list(item.rcpt_to)
    try:
        message = email.message_from_bytes(raw, policy=POLICY)
        app.transport.send(message, mail_from=mail_from, rcpt_to=rcpt_to)
    except TransportError as exc:
        return record_failure(app, item_id, exc)
    with unavailable_as_store_error(), app.sessions.begin() as session:
        session.execute(update(OutboxItem).where(OutboxItem.id == item_id).values(
            status="sent", sent_at=app.now(), attempts=OutboxItem.attempts + 1, last_error=None))
    log.info("sent outbox %s (%s) to %s", item_id, _kind_of(app, item_id), ", ".join(rcpt_to))
    return "sent"


def _kind_of(app: App, item_id: int) -> str:
    with unavailable_as_store_error(), app.sessions() as session:
        return str(session.execute(select(OutboxItem.kind).where(
            OutboxItem.id == item_id)).scalar())


def record_failure(app: App, item_id: int, exc: TransportError) -> str:
    """Schedule a retry with backoff, or mark failed and tell the practitioners."""
    settings, now = app.settings, app.now()
    with unavailable_as_store_error(), app.sessions.begin() as session:
        item = session.get(OutboxItem, item_id)
        assert item is not None
        item.attempts += 1
        item.last_error = str(exc)[:2000]
        permanent = isinstance(exc, PermanentFailure)
        if permanent or item.attempts >= settings.outbound_max_attempts:
            item.status = "failed"
            log.warning("outbox %s failed after %s attempts: %s", item_id, item.attempts, exc)
            if item.kind not in UNREPORTED_KINDS:
                queue_failure_notice(app, session, item)
            return "failed"
        item.status, item.send_after = "queued", now + backoff(settings, item.attempts)
        log.info("outbox %s: temporary failure (%s), retry at %s", item_id, exc, item.send_after)
        return "retry"


def backoff(settings: Any, attempts: int) -> timedelta:
    delay = timedelta(seconds=settings.outbound_retry_seconds * 2 ** max(attempts - 1, 0))
    return min(delay, MAX_BACKOFF)


def queue_failure_notice(app: App, session: Session, failed: OutboxItem) -> None:
    """Tell the practitioners that a mail could not be delivered."""
    to = practitioner_recipients(app, session, failed.ticket_id)
    if not to:
        log.error("outbox %s failed and there is no practitioner to tell", failed.id)
        return
    ticket = session.get(Ticket, failed.ticket_id) if failed.ticket_id else None
    context = {
        "reference": ticket.reference if ticket else None, "kind": failed.kind,
        "recipients": list(failed.rcpt_to), "subject": failed.subject,
        "message_id": failed.message_id, "attempts": failed.attempts,
        "error": failed.last_error or "",
    }
    queue_mail(app, session, Draft(
        kind="outbox_failed", template="practitioner/outbox_failed", context=context, to=to,
        subject=f"Undelivered: {failed.subject}"[:250], ticket_id=failed.ticket_id,
        auto_submitted="auto-generated",
    ))


def practitioner_recipients(
    app: App, session: Session, ticket_id: int | None
) -> tuple[Address, ...]:
    """The assignee when there is one, else the team address, else every practitioner."""
    ticket = session.get(Ticket, ticket_id) if ticket_id else None
    if ticket is not None and ticket.assignee:
        return (Address(ticket.assignee),)
    if app.settings.team_address:
        return (Address(app.settings.team_address),)
    return tuple(Address(a) for a in app.settings.practitioners)


def recent_acknowledgements(session: Session, address: str, since: datetime) -> int:
    rows = session.execute(select(OutboxItem.id).where(
        OutboxItem.kind == "acknowledgement", OutboxItem.to_addr == address,
        OutboxItem.created_at >= since))
    return len(rows.all())
