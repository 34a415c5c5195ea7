"""Warnings before an answer is due, and notices when it is overdue: the job.

A case's clock runs while ``tickets.sla_due_at`` is set (:mod:`mailroom.cases.sla`).
For every case that is open or waiting (not closed, not set aside, not merged) with a
running clock, the job :func:`send_sla_notices`:

- once the due time is within ``sla.warn_before_hours`` business hours (default 1; 0
  turns warnings off), mails the **warning** to the case's assignee, else the team
  address, else every practitioner (:func:`~mailroom.outbox.queue.practitioner_recipients`:
  the people a notification of the case goes to);
- once the due time has passed, mails the **breach notice** to the same people, and a
  copy to ``sla.supervisor`` when one is set (and is not among them already).

Each is sent once per clock: the case remembers the due time it warned of
(``tickets.sla_warned_for``) and the one whose breach it notified
(``sla_breach_notified_for``). A clock started again (the professional wrote after an
answer) or moved (a change of priority) has another due time, so it is warned of
again; the same one never twice. A clock already past due when the job first sees it
gets the breach notice alone. An answer stops the clock, so an answered case is never
warned.

What the mails carry: the case reference, its subject (links replaced by ``[link]``),
priority, category, status, which answer is due (first or next) and when, and the
assignee. Never a message's text, the requester's address or an attachment. The
practitioners' mail has the case's practitioner reply address, as a notification
does; the supervisor's copy has none of it: a reply to it is kept on the case for
the practitioners and reaches nobody else. Requesters and platforms never receive
either. Each is an audit event on the case (``sla.warned``, ``sla.breached``).

One case per transaction, claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, as
reminders are, so two processes never send one twice.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from mailroom.app import App, Clock
from mailroom.cases.replies import practitioner_reply_address, ticket_subject
from mailroom.cases.tickets import record_event
from mailroom.hours import OpeningHours
from mailroom.mailtypes import Address
from mailroom.outbox.queue import Draft, practitioner_recipients, queue_mail
from mailroom.outbox.render import Renderer
from mailroom.settings import Settings
from mailroom.store.db import is_postgres, unavailable_as_store_error
from mailroom.store.models import Ticket
from mailroom.vocabulary import SYSTEM_ACTOR, OutboxKind, TicketStatus

__all__ = ["LIVE", "link_free", "send_sla_notices", "warning_horizon"]

log = logging.getLogger("mailroom.cases.sla_notices")

# The statuses whose clock is watched: the case is being worked (closed and set-aside
# cases are not, whatever their sla_due_at says).
LIVE = (TicketStatus.OPEN, TicketStatus.WAITING)

# A link with a scheme, a www. one, or a bare host name with a path (tiktok.com/@name).
_LINK = re.compile(r"(?:\bhttps?://|(?<![\w@.])www\.|(?<![\w@.])[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}/)"
                   r"\S*", re.IGNORECASE)


def link_free(text: str) -> str:
    """``text`` with every link replaced by ``[link]``."""
    return _LINK.sub("[link]", text)


def warning_horizon(settings: Settings, hours: OpeningHours, now: datetime) -> datetime | None:
    """The latest due time that is within ``sla.warn_before_hours`` business hours of
    ``now`` (None: warnings are off)."""
    before = settings.sla_warn_before_hours
    return hours.add_business_hours(now, before) if before > 0 else None


def send_sla_notices(app: App) -> dict[str, int]:
    """The job: every warning and breach notice that is due, each once; the counts
    (empty when none was due)."""
    counts: dict[str, int] = {}
    while True:
        now = app.now()
        with unavailable_as_store_error(), app.sessions.begin() as session:
            ticket = _claim(session, now, warning_horizon(app.settings, app.hours, now))
            if ticket is None:
                return counts
            assert ticket.sla_due_at is not None
            breached = ticket.sla_due_at <= now
            _notify(app.settings, app.renderer, session, ticket, breached=breached,
                    clock=app.clock)
        key = "breached" if breached else "warned"
        counts[key] = counts.get(key, 0) + 1


def _claim(session: Session, now: datetime, horizon: datetime | None) -> Ticket | None:
    """A case whose breach is not notified yet, or (``horizon`` given) whose due time is
    within it and not warned of yet."""
    due = Ticket.sla_due_at
    wanted = and_(due <= now, Ticket.sla_breach_notified_for.is_distinct_from(due))
    if horizon is not None:
        wanted = or_(wanted, and_(due > now, due <= horizon,
                                  Ticket.sla_warned_for.is_distinct_from(due)))
    stmt = select(Ticket).where(due.is_not(None), Ticket.merged_into.is_(None),
                                Ticket.status.in_(LIVE), wanted).order_by(due, Ticket.id).limit(1)
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    return session.execute(stmt).scalar()


def _notify(settings: Settings, renderer: Renderer, session: Session, ticket: Ticket, *,
            breached: bool, clock: Clock) -> None:
    due = ticket.sla_due_at
    assert due is not None
    ticket.sla_warned_for = due  # a breach notified needs no warning after it
    if breached:
        ticket.sla_breach_notified_for = due
    to = practitioner_recipients(settings, session, ticket.id)
    answer = "first" if ticket.first_response_at is None else "next"
    subject = link_free(" ".join((ticket.subject or "").split()))
    context: dict[str, Any] = {
        "reference": ticket.reference, "subject": subject, "answer": answer, "due": due,
        "priority": ticket.priority, "category": ticket.category, "status": ticket.status,
        "assignee": ticket.assignee}
    if breached:
        context["supervisor_copy"] = False
    kind = OutboxKind.SLA_BREACH if breached else OutboxKind.SLA_WARNING
    template = "practitioner/sla_breach" if breached else "practitioner/sla_warning"
    title = (f"Overdue: {answer} answer of {ticket.reference}" if breached
             else f"Due soon: {answer} answer of {ticket.reference}")
    mail_subject = ticket_subject(settings, ticket, f"{title}: {subject}")
    if to:
        reply_to = practitioner_reply_address(settings, ticket.id, to, now=clock())
        queue_mail(settings, renderer, session, Draft(
            kind=kind, template=template, context=context, to=to, subject=mail_subject,
            ticket_id=ticket.id, reply_to=reply_to, auto_submitted="auto-generated"),
            now=clock())
    supervisor = settings.sla_supervisor if breached else None
    if supervisor and supervisor not in {a.addr.lower() for a in to}:
        queue_mail(settings, renderer, session, Draft(
            kind=kind, template=template, context={**context, "supervisor_copy": True},
            to=(Address(supervisor),), subject=mail_subject, ticket_id=ticket.id,
            auto_submitted="auto-generated"), now=clock())
    else:
        supervisor = None
    record_event(session, action="sla.breached" if breached else "sla.warned",
                 actor=SYSTEM_ACTOR, at=clock(), ticket_id=ticket.id, answer=answer,
                 due=due.isoformat(), priority=ticket.priority,
                 to=[a.addr for a in to], supervisor=supervisor)
    log.info("%s: %s answer %s %s", ticket.reference, answer,
             "overdue since" if breached else "due at", due.isoformat())
