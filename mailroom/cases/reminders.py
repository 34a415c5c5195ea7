"""Reminders a practitioner set with ``#remind DATE``: the job that sends the due ones.

A reminder (a row of ``reminders``) names a case, the practitioner who asked and
when it is due (the helpline's opening time on the day asked for). The job
sends each due one once, to that practitioner only, with the case as it is now
and a reply address of the case bound to them, so that they can act on it by
replying. A reminder of a case merged since is about the case it went into.

One reminder per transaction, claimed with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, as the escalations' follow-ups are, so two processes never send one
twice.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.app import App, Clock
from mailroom.cases.replies import practitioner_reply_address, thread_ids, ticket_subject
from mailroom.mailtypes import Address
from mailroom.outbox.queue import Draft, queue_mail
from mailroom.outbox.render import Renderer
from mailroom.settings import Settings
from mailroom.store.db import is_postgres, unavailable_as_store_error
from mailroom.store.models import Message, Reminder, Ticket
from mailroom.store.repository import live_ticket
from mailroom.vocabulary import OutboxKind

__all__ = ["send_due_reminders"]

log = logging.getLogger("mailroom.cases.reminders")


def send_due_reminders(app: App) -> dict[str, int]:
    """Send every reminder that is due; ``{"sent": n}`` (empty when none was due)."""
    sent = 0
    while True:
        with unavailable_as_store_error(), app.sessions.begin() as session:
            reminder = claim_due(session, app.now())
            if reminder is None:
                return {"sent": sent} if sent else {}
            send_reminder(app.settings, app.renderer, session, reminder, clock=app.clock)
        sent += 1


def claim_due(session: Session, now: datetime) -> Reminder | None:
    stmt = select(Reminder).where(Reminder.sent_at.is_(None), Reminder.due_at <= now).order_by(
        Reminder.due_at, Reminder.id).limit(1)
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    return session.execute(stmt).scalar()


def send_reminder(settings: Settings, renderer: Renderer, session: Session, reminder: Reminder,
                  *, clock: Clock) -> None:
    """Send the reminder to the practitioner who asked, with the case as it is now (the
    ``clock``'s time when it is marked sent, and when its mail is written)."""
    reminder.sent_at = clock()
    ticket = session.get(Ticket, live_ticket(session, reminder.ticket_id))
    if ticket is None:
        return
    asked = session.get(Message, reminder.message_pk) if reminder.message_pk else None
    in_reply_to, refs = thread_ids(asked) if asked else (None, ())
    to = (Address(reminder.practitioner),)
    reply_to = practitioner_reply_address(settings, ticket.id, to, now=clock())
    queue_mail(settings, renderer, session, Draft(
        kind=OutboxKind.REMINDER, template="practitioner/reminder", context={
            "reference": ticket.reference, "subject": ticket.subject, "status": ticket.status,
            "priority": ticket.priority, "assignee": ticket.assignee,
            "set_at": reminder.created_at, "last_at": ticket.updated_at},
        to=to, subject=ticket_subject(settings, ticket, f"Reminder: {ticket.subject}"),
        ticket_id=ticket.id, in_reply_to=in_reply_to, references=refs,
        reply_to=reply_to, auto_submitted="auto-generated"), now=clock())
    log.info("reminder %s of %s sent", reminder.id, ticket.reference)
