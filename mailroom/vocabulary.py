"""The words mailroom stores: statuses, outcomes, kinds, states and roles, each defined once.

Every enum here is a :class:`enum.StrEnum`, so a member *is* its string: it is
written to the database, to ``--json`` output and to the audit trail as that
string, and a value read back (a plain ``str``) compares equal to the member.
The columns stay ``String`` columns: the strings are the stored contract, and
a new word needs no migration, only a member here.

Two things to know when using them:

- Test membership against a tuple or set of members (``status in
  (TicketStatus.OPEN, TicketStatus.WAITING)``, ``value in tuple(TicketStatus)``),
  never against the class itself: on Python 3.11 ``"open" in TicketStatus``
  raises ``TypeError``.
- ``str()``, f-strings and ``json`` give the value (``"open"``); only
  ``repr()`` shows the member, so log values with ``%s``.

``messages.kind`` draws on three of them: a :class:`Speaker` for inbound mail a
person wrote, an :class:`AutomaticKind` for inbound mail no person wrote, an
:class:`OutboxKind` for outgoing mail.

Each enum lives where the lowest layer that writes or reads it can import it:
here, in the base layer, for everything stored in a column. The signed reply
address's roles and kinds are in :mod:`mailroom.addresses`, the classifier's
kinds in :mod:`mailroom.intake.classify`.
"""

from __future__ import annotations

from enum import StrEnum

# ``events.actor`` of what mailroom did by itself (otherwise an address, or ``cli:<login>``).
SYSTEM_ACTOR = "system"

__all__ = [
    "AutomaticKind",
    "Direction",
    "EscalationOutcome",
    "EscalationStatus",
    "InboxOutcome",
    "InboxStatus",
    "OutboxKind",
    "OutboxStatus",
    "ParticipantRole",
    "ParticipantState",
    "SYSTEM_ACTOR",
    "SET_ASIDE",
    "Speaker",
    "TicketPriority",
    "StaffRole",
    "TicketStatus",
]


class TicketStatus(StrEnum):
    """``tickets.status``: the state of a case."""

    OPEN = "open"  # the helpline's turn
    WAITING = "waiting"  # answered; waiting for the requester
    CLOSED = "closed"
    SPAM = "spam"  # set aside (#spam): not a case; nothing is sent
    OUT_OF_REMIT = "out_of_remit"  # set aside (#out-of-remit): not for this helpline
    TEST = "test"  # set aside (#test): a test of the service, not a case; nothing is sent


# Cases set aside: no longer worked, and not counted as the helpline's cases in reports.
SET_ASIDE = (TicketStatus.SPAM, TicketStatus.OUT_OF_REMIT, TicketStatus.TEST)


class TicketPriority(StrEnum):
    """``tickets.priority`` (``#priority``), most pressing first."""

    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class InboxStatus(StrEnum):
    """``inbox.status``: where a raw message is in its processing."""

    NEW = "new"  # stored by a door, not processed yet
    DONE = "done"  # processed: see its outcome
    BAD = "bad"  # its fault (unparseable, over a limit): kept with the error, retryable
    SHUNT = "shunt"  # our fault (an internal error): kept with the error, retryable


class InboxOutcome(StrEnum):
    """What processing a message came to: ``inbox.outcome`` of a ``done`` row.

    ``skipped`` and ``duplicate`` are reported, never stored: a worker skips a
    row another one has (or that is no longer ``new``), and ``mailroom ingest``
    counts a message it had stored and processed before as a duplicate.
    """

    CREATED = "created"  # opened a case
    THREADED = "threaded"  # joined a case
    BOUNCE = "bounce"
    AUTOMATIC = "automatic"  # an automatic reply: kept, never answered
    LOOP = "loop"  # our own mail come back: kept, never answered
    SKIPPED = "skipped"
    DUPLICATE = "duplicate"


class OutboxStatus(StrEnum):
    """``outbox.status``: where an outgoing mail is."""

    QUEUED = "queued"  # waiting to be sent (again, after a temporary failure)
    SENDING = "sending"  # claimed by a sender, under a lease
    SENT = "sent"  # the relay accepted it
    FAILED = "failed"  # given up (or cancelled by an erasure): never sent


class OutboxKind(StrEnum):
    """``outbox.kind``, and ``messages.kind`` of the outgoing message: what a mail is for."""

    ACKNOWLEDGEMENT = "acknowledgement"  # to the requester: the new case is received
    SIGNPOSTING = "signposting"  # to the requester: resources for the case's category
    RELAY = "relay"  # to the requester: a practitioner's answer
    CLOSURE = "closure"  # to the requester: the case is closed
    NOTIFICATION = "notification"  # to practitioners: new mail on a case, a platform's news
    COMMAND_ERROR = "command_error"  # to a practitioner: commands of their reply were refused
    COMMAND_DONE = "command_done"  # to a practitioner: part of their reply was not done or held
    OUTCOME = "outcome"  # to practitioners: an escalation's outcome recorded (reply to correct)
    HELP = "help"  # to a practitioner: the commands and canned answers (#help)
    REMINDER = "reminder"  # to a practitioner: the reminder they set (#remind)
    PRACTITIONER_LINK = "practitioner_link"  # to a practitioner: their reply ran nothing
    OUTBOX_FAILED = "outbox_failed"  # to practitioners: a mail could not be delivered
    ESCALATION = "escalation"  # to a platform: the report
    FOLLOW_UP = "follow_up"  # to a platform: the report again, unanswered
    DIGEST = "digest"  # to practitioners: the day's work, at opening time
    SLA_WARNING = "sla_warning"  # to practitioners: a case's answer is due soon
    SLA_BREACH = "sla_breach"  # to practitioners and the SLA supervisor: an answer is overdue
    SIGN_IN = "sign_in"  # to a member of staff: their link to the staff console


class EscalationStatus(StrEnum):
    """``escalations.status``: how far a report to a platform got
    (:mod:`mailroom.cases.escalations` draws its life)."""

    SENT = "sent"  # waiting for the platform's answer; chased
    RESPONDED = "responded"  # a person at the platform answered; waiting for the outcome
    RESOLVED = "resolved"  # the outcome is known
    NO_RESPONSE = "no_response"  # no answer after the last follow-up


class EscalationOutcome(StrEnum):
    """``escalations.outcome``: what the platform did, as a practitioner recorded it."""

    REMOVED = "removed"
    RESTRICTED = "restricted"
    DECLINED = "declined"
    NO_ACTION = "no_action"


class ParticipantState(StrEnum):
    """``participants.state``: whether someone receives a case's mail
    (:mod:`mailroom.cases.participants`)."""

    ALLOWED = "allowed"  # receives it: the requester, and whoever a practitioner allowed
    PENDING = "pending"  # recorded from mail; receives nothing until allowed
    REMOVED = "removed"  # a practitioner took them off


class ParticipantRole(StrEnum):
    """``participants.role``: how someone came to be on a case."""

    REQUESTER = "requester"  # opened it
    CC = "cc"  # anyone else


class Direction(StrEnum):
    """``messages.direction``."""

    IN = "in"  # came in through a door
    OUT = "out"  # queued in the outbox


class Speaker(StrEnum):
    """Who wrote a message a person wrote, as the pipeline made out: ``messages.kind``
    of such mail, and what the case does with it (SPEC section 4)."""

    REQUESTER = "requester"  # the requester, or anyone else writing into a case
    PRACTITIONER = "practitioner"  # a practitioner, through their signed reply address
    PLATFORM = "platform"  # a platform, answering an escalation


class AutomaticKind(StrEnum):
    """``messages.kind`` of inbound mail no person wrote: kept, never answered."""

    AUTO_REPLY = "auto_reply"
    LOOP = "loop"  # our own mail come back
    BOUNCE = "bounce"


class StaffRole(StrEnum):
    """What a member of staff may do in the console; each role may do what the one
    before it may."""

    PRACTITIONER = "practitioner"  # cases: read, search, act
    MANAGER = "manager"  # and reports, the audit trail
    ADMIN = "admin"  # and users
