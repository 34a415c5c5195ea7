"""The daily digest: the day's work, by email, to the team at opening time.

It is the email-first dashboard. Once a business day, when the helpline first
opens (:data:`DIGEST` in :mod:`mailroom.runtime.jobs` looks every few
minutes), the team gets one mail listing:

- open cases by SLA state: **overdue** (the first answer, or the next one after
  the professional wrote again, is late), **due today** (before the end of
  today's opening hours), **due later**, and cases **waiting on the
  professional**;
- escalations **awaiting platforms**, with their next chase;
- **failing addresses** (mail of a case bounced, :mod:`mailroom.cases.deliveries`);
- inbox rows left **bad** or **shunt**, to retry or look at.

Who receives it: the team address when there is one, else every practitioner
(the people who may see every case). It names cases by reference, subject and
assignee only: no message text, no requester address; the failing addresses
are shown because practitioners act on them (``#retry``). ``mailroom digest``
prints it; ``mailroom digest --now`` queues it for the team now.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailroom.app import App
from mailroom.hours import OpeningHours
from mailroom.outbox.queue import Draft, practitioner_recipients, queue_mail
from mailroom.platforms import Platforms
from mailroom.settings import Settings
from mailroom.store.db import unavailable_as_store_error
from mailroom.store.models import (
    Escalation,
    InboxItem,
    Message,
    OutboxItem,
    Participant,
    Ticket,
)
from mailroom.vocabulary import (
    SET_ASIDE,
    Direction,
    EscalationStatus,
    InboxStatus,
    OutboxKind,
    TicketStatus,
)

__all__ = ["Digest", "build_digest", "digest_context", "queue_digest", "send_daily_digest"]

SUBJECT_WIDTH = 70


@dataclass(frozen=True)
class CaseLine:
    reference: str
    subject: str
    assignee: str | None
    due: datetime | None
    since: datetime  # last activity; for a case waiting on the professional, its last answer
    first: bool = True  # the first answer is due (else the next one, after the professional wrote)


@dataclass(frozen=True)
class ChaseLine:
    reference: str
    platform: str
    opened_at: datetime
    follow_ups: int
    next_chase: datetime | None
    case_closed: bool = False  # its case is closed or set aside: not chased any more


@dataclass(frozen=True)
class FailingLine:
    reference: str
    address: str
    since: datetime


@dataclass
class Digest:
    """What the digest says, as of ``at``."""

    at: datetime
    breached: list[CaseLine] = field(default_factory=list)
    due_today: list[CaseLine] = field(default_factory=list)
    due_later: list[CaseLine] = field(default_factory=list)
    waiting: list[CaseLine] = field(default_factory=list)
    chases: list[ChaseLine] = field(default_factory=list)
    failing: list[FailingLine] = field(default_factory=list)
    bad: int = 0
    shunt: int = 0

    @property
    def empty(self) -> bool:
        return not (self.breached or self.due_today or self.due_later or self.waiting
                    or self.chases
                    or self.failing or self.bad or self.shunt)


def build_digest(app: App) -> Digest:
    """Read the case, escalation, participant and inbox rows as of now."""
    now = app.now()
    end_of_day = _end_of_business_day(app.settings, app.hours, now)
    digest = Digest(at=now)
    with app.sessions() as session:
        cases = _live_cases(session)
        answered = _last_answers(session, [t.id for t in cases
                                           if t.status == TicketStatus.WAITING])
        for ticket in cases:
            line = _case_line(ticket)
            if ticket.status == TicketStatus.WAITING:
                digest.waiting.append(replace(line, since=answered.get(ticket.id, line.since)))
            elif ticket.sla_due_at is not None and ticket.sla_due_at <= now:
                digest.breached.append(line)
            elif ticket.sla_due_at is not None and end_of_day is not None \
                    and ticket.sla_due_at <= end_of_day:
                digest.due_today.append(line)
            else:
                digest.due_later.append(line)
        digest.chases = _chases(app.settings, app.platforms, session)
        digest.failing = _failing(session)
        counts = dict(session.execute(
            select(InboxItem.status, func.count()).where(
                InboxItem.status.in_((InboxStatus.BAD, InboxStatus.SHUNT)))
            .group_by(InboxItem.status)).all())
        digest.bad, digest.shunt = counts.get(InboxStatus.BAD, 0), counts.get(InboxStatus.SHUNT, 0)
    digest.breached.sort(key=lambda c: c.due or now)
    digest.due_today.sort(key=lambda c: c.due or now)
    digest.due_later.sort(key=lambda c: (c.due is None, c.due or now, c.reference))
    digest.waiting.sort(key=lambda c: c.since)
    return digest


def _live_cases(session: Session) -> list[Ticket]:
    return list(session.execute(select(Ticket).where(
        Ticket.merged_into.is_(None),
        Ticket.status.in_((TicketStatus.OPEN, TicketStatus.WAITING)))).scalars())


def _last_answers(session: Session, ids: list[int]) -> dict[int, datetime]:
    """When each of these cases last had an answer relayed to the professional: how long
    a waiting case has waited (an internal note or a command since does not count)."""
    if not ids:
        return {}
    rows = session.execute(
        select(Message.ticket_id, func.max(Message.created_at))
        .where(Message.ticket_id.in_(ids), Message.direction == Direction.OUT,
               Message.kind == OutboxKind.RELAY)
        .group_by(Message.ticket_id)).all()
    return {ticket_id: at for ticket_id, at in rows if ticket_id is not None and at is not None}


def _case_line(ticket: Ticket) -> CaseLine:
    subject = " ".join((ticket.subject or "").split())
    if len(subject) > SUBJECT_WIDTH:
        subject = subject[:SUBJECT_WIDTH - 1] + "…"
    return CaseLine(ticket.reference or "?", subject, ticket.assignee,
                    ticket.sla_due_at, ticket.updated_at,
                    first=ticket.first_response_at is None)


def _chases(settings: Settings, platforms: Platforms, session: Session) -> list[ChaseLine]:
    """Escalations still waiting for their platform. One whose case was closed or set aside
    is not chased any more (unless ``sla.chase_closed_cases``): it shows no next chase,
    although its ``next_follow_up_at`` is only cleared when that time comes."""
    rows = session.execute(
        select(Escalation, Ticket.reference, Ticket.status)
        .join(Ticket, Escalation.ticket_id == Ticket.id)
        .where(Escalation.status == EscalationStatus.SENT)
        .order_by(Escalation.next_follow_up_at)).all()
    names = {key: p.name for key, p in platforms.items()}
    lines = []
    for e, ref, status in rows:
        stopped = status in (TicketStatus.CLOSED, *SET_ASIDE) \
            and not settings.sla_chase_closed_cases
        lines.append(ChaseLine(ref or "?", names.get(e.platform, e.platform), e.opened_at,
                               e.follow_ups, None if stopped else e.next_follow_up_at,
                               case_closed=stopped))
    return lines


def _failing(session: Session) -> list[FailingLine]:
    rows = session.execute(
        select(Participant.address, Participant.failing_since, Ticket.reference)
        .join(Ticket, Participant.ticket_id == Ticket.id)
        .where(Participant.failing_since.is_not(None), Ticket.merged_into.is_(None),
               Ticket.status.not_in((TicketStatus.CLOSED, *SET_ASIDE)))
        .order_by(Participant.failing_since)).all()
    return [FailingLine(ref or "?", address, since) for address, since, ref in rows
            if since is not None]


def _end_of_business_day(settings: Settings, hours: OpeningHours,
                         now: datetime) -> datetime | None:
    """When today's opening hours end (None: closed today)."""
    local = now.astimezone(settings.timezone)
    window = hours.window(local.date())
    return window[1] if window is not None else None


# --- the mail ------------------------------------------------------------------------------


def digest_context(settings: Settings, digest: Digest) -> dict[str, Any]:
    """The template's context: plain values only."""
    def cases(lines: list[CaseLine]) -> list[dict[str, Any]]:
        return [{"reference": c.reference, "subject": c.subject, "assignee": c.assignee,
                 "due": c.due, "since": c.since, "first": c.first} for c in lines]

    return {
        "helpline_name": settings.helpline_name, "at": digest.at,
        "breached": cases(digest.breached), "due_today": cases(digest.due_today),
        "due_later": cases(digest.due_later),
        "waiting": cases(digest.waiting),
        "chases": [{"reference": c.reference, "platform": c.platform, "opened_at": c.opened_at,
                    "follow_ups": c.follow_ups, "next_chase": c.next_chase,
                    "case_closed": c.case_closed}
                   for c in digest.chases],
        "failing": [{"reference": f.reference, "address": f.address, "since": f.since}
                    for f in digest.failing],
        "bad": digest.bad, "shunt": digest.shunt, "empty": digest.empty,
    }


def queue_digest(app: App, session: Session, digest: Digest) -> bool:
    """Queue the digest for the team; False when there is nobody to send it to."""
    to = practitioner_recipients(app.settings, session, None)  # the team, else every practitioner
    if not to:
        return False
    local = digest.at.astimezone(app.settings.timezone)
    queue_mail(app.settings, app.renderer, session, Draft(
        kind=OutboxKind.DIGEST, template="practitioner/digest",
        context=digest_context(app.settings, digest), to=to,
        subject=f"{app.settings.helpline_name}: the day's work, {local:%A} {local.day} "
                f"{local:%B}",
        auto_submitted="auto-generated",
    ), now=app.now())
    return True


def send_daily_digest(app: App) -> dict[str, int]:
    """The job: once a business day, when the helpline is open, queue the digest."""
    now = app.now()
    if not app.settings.digest_enabled or not app.hours.is_open(now):
        return {}
    local = now.astimezone(app.settings.timezone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    digest = build_digest(app)
    with unavailable_as_store_error(), app.sessions.begin() as session:
        sent_today = session.execute(select(func.count()).select_from(OutboxItem).where(
            OutboxItem.kind == OutboxKind.DIGEST,
            OutboxItem.created_at >= midnight)).scalar_one()
        if sent_today:
            return {}
        queued = queue_digest(app, session, digest)
    return {"digest": 1} if queued else {}
