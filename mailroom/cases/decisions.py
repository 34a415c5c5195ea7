"""What a case handler decides about an inbound message, and the one place it is applied.

The handlers that act on a message (:func:`~mailroom.cases.replies.respond_to_requester`
and :func:`~mailroom.cases.replies.refuse_practitioner_reply`,
:func:`~mailroom.cases.practitioner.handle_practitioner_reply` and its console twin
:func:`~mailroom.cases.practitioner.act_from_console`,
:func:`~mailroom.cases.escalations.handle_platform_reply`,
:func:`~mailroom.cases.deliveries.mark_failing`) make the changes that are their own at
once, each recorded with its audit event where it is made (a command's effect, as
:func:`~mailroom.cases.tickets.set_status` records its own). What follows from the
message they return as :class:`Decisions`: the mail to queue (whom to notify, what to
relay), the events of what became of the message (relayed, held, kept as a note,
refused) and the status an answer leaves the case in.

:func:`apply_decisions` applies them in the caller's transaction, in the order they were
decided: the outbox rows are queued, and the events written, in that order. The mail
that opens an escalation carries it (:attr:`Mail.opens`): the escalation keeps the
Message-ID its mail is queued with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from mailroom.app import Clock
from mailroom.cases.tickets import record_event, set_status
from mailroom.outbox.queue import Draft, queue_mail
from mailroom.outbox.render import Renderer
from mailroom.settings import Settings
from mailroom.store.models import Escalation, Ticket
from mailroom.vocabulary import TicketStatus

__all__ = ["AuditEvent", "Decision", "Decisions", "Mail", "StatusChange", "apply_decisions"]


@dataclass(frozen=True)
class Mail:
    """A mail to queue. ``opens``: the escalation this mail opens, which keeps the
    Message-ID it is queued with (the platform's answers thread to it)."""

    draft: Draft
    opens: Escalation | None = None


@dataclass(frozen=True)
class AuditEvent:
    """An event for the audit trail (:func:`mailroom.cases.tickets.record_event`)."""

    action: str
    actor: str
    at: datetime
    ticket_id: int | None = None
    message_pk: int | None = None
    escalation_id: int | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StatusChange:
    """The status a case is left in (:func:`mailroom.cases.tickets.set_status`)."""

    ticket: Ticket
    status: TicketStatus
    actor: str
    at: datetime
    message_pk: int | None = None


Decision = Mail | AuditEvent | StatusChange


@dataclass(frozen=True)
class Decisions:
    """What was decided, in the order it was decided."""

    steps: tuple[Decision, ...] = ()

    def then(self, *more: Decision | Decisions | None) -> Decisions:
        """These decisions, then ``more`` (a None decides nothing)."""
        steps = list(self.steps)
        for item in more:
            if isinstance(item, Decisions):
                steps.extend(item.steps)
            elif item is not None:
                steps.append(item)
        return Decisions(tuple(steps))

    def mail_with_files(self, ticket_id: int) -> int:
        """How many of the mails decided for the case carry files."""
        return sum(1 for step in self.steps if isinstance(step, Mail)
                   and step.draft.ticket_id == ticket_id and step.draft.attachments)

    def events(self, action: str) -> tuple[AuditEvent, ...]:
        """The events of ``action`` decided."""
        return tuple(step for step in self.steps
                     if isinstance(step, AuditEvent) and step.action == action)


def apply_decisions(settings: Settings, renderer: Renderer, session: Session,
                    decisions: Decisions, *, clock: Clock) -> None:
    """Queue each mail (rendered, at the time of the ``clock`` then) and write each event
    and status, in the caller's transaction, in the order they were decided."""
    for step in decisions.steps:
        if isinstance(step, Mail):
            queued = queue_mail(settings, renderer, session, step.draft, now=clock())
            if step.opens is not None:
                step.opens.message_id = queued.message_id
        elif isinstance(step, AuditEvent):
            record_event(session, action=step.action, actor=step.actor, at=step.at,
                         ticket_id=step.ticket_id, message_pk=step.message_pk,
                         escalation_id=step.escalation_id, **step.detail)
        else:
            set_status(session, step.ticket, step.status, actor=step.actor, at=step.at,
                       message_pk=step.message_pk)
