"""A practitioner's reply (SPEC section 6): run its command lines, relay its answer.

The pipeline calls :func:`handle_practitioner_reply` once a reply from a
recognised practitioner is stored on its ticket, in the same transaction.
``message.text`` is already the new text: quoted history, ``-- `` and mobile
signatures are gone (:mod:`mailroom.intake.quotes`; HTML-only mail was rendered to
text by the parser). Then, in order:

1. **Check** the command lines at the top and their values against the
   configuration (categories, roles, practitioners, platforms): each command's
   unit in :mod:`mailroom.cases.commands` parses and checks its own. Any error
   and *nothing* happens: no command runs, nothing is relayed; the practitioner
   gets ``practitioner/command_error`` threaded to the reply, and a
   ``command.rejected`` event is kept.
2. **Run** each command in order (its unit's ``run``), each with its audit
   event (actor: the practitioner; message: the reply). A command that changes
   nothing (the category it already has) writes nothing.
3. **Relay** what is left to the requester and the participants a practitioner
   allowed (never a pending one: see :mod:`mailroom.cases.participants`),
   from the helpline address, threaded to the requester's latest message and
   not marked automatic (a person wrote it) — unless ``#note`` keeps the reply
   internal, or nothing is left once commands and the sign-off are removed.
   The practitioner's attachments go along, except inline images (signature
   logos) and whatever :func:`mailroom.cases.safeguarding.outgoing_attachments`
   withholds.
4. **Then** the mail the commands cause (signposting for the new category,
   the closure notice), queued after the relay so that the personal answer
   comes first; and, when part of the reply could not be done (an escalation,
   withheld attachments), a ``practitioner/command_done`` note to the
   practitioner.

Status after a relay: an answer moves an ``open`` case to ``waiting`` (for
the requester), as Zendesk's "pending" and Freshdesk's default do; a
``#status`` or ``#close`` in the same reply wins; a ``closed`` case stays
closed. The requester's next reply reopens it (see the pipeline). The first
relay sets ``first_response_at``.

Signature: the relay template signs with the helpline's name, so the
practitioner's own sign-off block is dropped when it is recognisable: a
closing line ("Kind regards," / "Thanks, Anna") followed by at most six short
lines that are not sentences (name, job title, phone). Practitioners' names
and direct numbers stay out of mail to requesters. A reply that holds only
commands and such a sign-off relays nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from mailroom.addresses import TokenRole
from mailroom.app import App
from mailroom.cases.commands import (
    Known,
    Reply,
    check_commands,
    merge_case_into,
    parse_commands,
    run_commands,
)
from mailroom.cases.incoming import Incoming
from mailroom.cases.participants import copy_recipients
from mailroom.cases.replies import (
    last_message_from,
    practitioner_reply_address,
    queue_requester_mail,
    queue_signposting,
    reply_address,
    thread_ids,
    ticket_subject,
)
from mailroom.cases.safeguarding import outgoing_attachments
from mailroom.cases.tickets import record_event, set_status
from mailroom.mailtypes import Address, StoredFile
from mailroom.outbox.compose import is_writable_address
from mailroom.outbox.queue import Draft, queue_mail
from mailroom.store.models import Message, Ticket
from mailroom.vocabulary import Direction, OutboxKind, Speaker, TicketStatus

__all__ = [
    "ConsoleOutcome",
    "act_from_console",
    "act_on_reply",
    "handle_practitioner_reply",
    "merge_case_into",
    "relay_text",
    "strip_sign_off",
]

MAX_SIGNATURE_LINES = 6
MAX_SIGNATURE_WIDTH = 60

_NAME = r"(?-i:[A-Z][\w.'’-]*)"
_SIGN_OFF = re.compile(
    r"^(?:(?:kind|best|warm|warmest|many|with (?:best|kind|warm))\s+)?"
    r"(?:regards|wishes|thanks|thank you|thx|cheers|best|all the best|sincerely|take care"
    r"|yours(?: sincerely| faithfully| truly)?|speak soon)"
    rf"\s*[,.!]?(?:\s*[,\-–—]?\s*{_NAME}(?:\s+{_NAME}){{0,2}})?\s*[,.!]?$",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.?!:]$")
_BLANK_RUN = re.compile(r"\n{3,}")

Attachments = list[StoredFile]


def handle_practitioner_reply(app: App, session: Session, incoming: Incoming) -> None:
    """Check and run the commands of a practitioner's reply, then relay its answer."""
    ticket, message = incoming.ticket, incoming.message
    assert ticket is not None and message is not None
    reply = Reply(app, session, ticket, message, actor=message.sender or "unknown")
    errors = act_on_reply(reply)
    if errors:
        reject(reply, errors)
        return
    if reply.notices:
        answer_practitioner(reply, OutboxKind.COMMAND_DONE, {
            "reference": ticket.reference, "done": reply.done, "notices": reply.notices})


def act_on_reply(reply: Reply) -> list[str]:
    """Steps 1 to 4 for a stored reply, by mail or from the console: the errors that
    stopped everything, or none once the commands ran and the answer was relayed."""
    parsed = parse_commands(reply.message.text or "")
    reply.note_text = relay_text(parsed.body) or None if parsed.is_note else None
    errors = [*parsed.errors, *check_commands(parsed.commands, Known.of(reply.app))]
    if errors:
        return errors
    run_commands(reply, parsed.commands)
    if reply.internal:
        reply.record("note.added")
    else:
        relay(reply, relay_text(parsed.body))
    queue_consequences(reply)
    return []


# --- from the staff console ------------------------------------------------------------------


@dataclass(frozen=True)
class ConsoleOutcome:
    """What a practitioner's action in the console did, for the page to say."""

    done: tuple[str, ...] = ()
    notices: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


def act_from_console(app: App, session: Session, ticket: Ticket, *, actor: str,
                     text: str) -> ConsoleOutcome:
    """A practitioner's reply written in the staff console: the same as one by mail.

    ``text`` is read as a mail reply is (command lines at the top, then the answer;
    the console's buttons write the command lines: ``#note``, ``#assign me``,
    ``#status closed``), with the same checks, effects, audit events and relay. It
    is stored as the practitioner's message on the case (flagged ``console``), so
    the events name it. With an error nothing is stored or run, as by mail, and the
    page says why instead of a mail (``command.rejected`` is recorded).
    """
    parsed = parse_commands(text)
    errors = [*parsed.errors, *check_commands(parsed.commands, Known.of(app))]
    now = app.now()
    if errors:
        record_event(session, action="command.rejected", actor=actor, at=now,
                     ticket_id=ticket.id, errors=errors, via="console")
        return ConsoleOutcome(errors=tuple(errors))
    message = Message(
        ticket_id=ticket.id, direction=Direction.IN, kind=Speaker.PRACTITIONER, sender=actor,
        recipients={"to": [], "cc": []}, subject=f"Re: {ticket.subject}"[:2000], date=now,
        text=text, urls=[], flags=["console"], created_at=now, attachments=[])
    session.add(message)
    ticket.updated_at = now
    session.flush()
    record_event(session, action="message.received", actor=actor, at=now, ticket_id=ticket.id,
                 message_pk=message.id, kind=Speaker.PRACTITIONER, via="console")
    reply = Reply(app, session, ticket, message, actor=actor)
    errors = act_on_reply(reply)
    return ConsoleOutcome(tuple(reply.done), tuple(reply.notices), tuple(errors))


# --- refusing ------------------------------------------------------------------------------


def reject(reply: Reply, errors: list[str]) -> None:
    """Nothing runs: record why and tell the practitioner."""
    reply.record("command.rejected", errors=errors)
    reply.message.flags = [*reply.message.flags, "commands-rejected"]
    answer_practitioner(reply, OutboxKind.COMMAND_ERROR,
                        {"reference": reply.ticket.reference, "errors": errors})


# --- relaying ----------------------------------------------------------------------------


def relay_text(body: str) -> str:
    """The words to relay: the body without its sign-off, blank runs collapsed."""
    lines = [line.rstrip() for line in strip_sign_off(body).split("\n")]
    return _BLANK_RUN.sub("\n\n", "\n".join(lines)).strip()


def strip_sign_off(text: str) -> str:
    """``text`` without a closing block ("Kind regards,\\nAnna\\nPractitioner")."""
    lines = text.rstrip().split("\n")
    checked = 0
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index].strip()
        if not line:
            continue
        if _SIGN_OFF.match(line):
            return "\n".join(lines[:index]).rstrip()
        checked += 1
        if checked > MAX_SIGNATURE_LINES or not _is_signature_line(line):
            break
    return text


def _is_signature_line(line: str) -> bool:
    """A name, a job title, a phone number: short and not a sentence."""
    return len(line) <= MAX_SIGNATURE_WIDTH and not _SENTENCE_END.search(line)


def relay(reply: Reply, text: str) -> None:
    """Send the answer to the requester and the allowed participants; the status follows."""
    ticket, now = reply.ticket, reply.app.now()
    if not text:
        return
    if not ticket.requester or not is_writable_address(ticket.requester):
        reply.notices.append("the case has no requester address mailroom can write to: "
                             "your answer was not sent")
        return
    attachments, withheld, reason = relayable_attachments(reply)
    cc = copy_recipients(ticket)
    queue_relay(reply, text, attachments, cc)
    reply.record("message.relayed", to=ticket.requester, cc=[a.addr for a in cc],
                 attachments=[file.filename for file in attachments], withheld=withheld)
    reply.done.append(f"answer sent to {ticket.requester}" + (f" (and {len(cc)} in copy)"
                                                               if cc else ""))
    if withheld:
        reply.notices.append(f"{withheld} attachment(s) were not sent with your answer: {reason}")
    if ticket.first_response_at is None:
        ticket.first_response_at = now
    if not reply.status_chosen and ticket.status == TicketStatus.OPEN:
        set_status(reply.session, ticket, TicketStatus.WAITING, actor=reply.actor, at=now,
                   message_pk=reply.message.id)


def relayable_attachments(reply: Reply) -> tuple[Attachments, int, str | None]:
    """What may go with the answer: not inline images, not what safeguarding withholds."""
    allowed, _, reason = outgoing_attachments(reply.app, reply.ticket, reply.message)
    inline = {(row.filename, row.sha256) for row in reply.message.attachments if row.inline}
    kept = [file for file in allowed if (file.filename, file.sha256) not in inline]
    meant = len(reply.message.attachments) - len(inline)
    withheld = max(meant - len(kept), 0)
    return kept, withheld, reason if withheld else None


def queue_relay(reply: Reply, text: str, attachments: Attachments,
                cc: tuple[Address, ...]) -> None:
    """The relay mail: from the helpline, threaded to the requester's latest message."""
    app, session, ticket = reply.app, reply.session, reply.ticket
    assert ticket.requester is not None
    answering = last_message_from(session, ticket, ticket.requester)
    in_reply_to, refs = thread_ids(answering) if answering else (None, ())
    context = {"text": text, "reference": ticket.reference,
               "helpline_name": app.settings.helpline_name}
    queue_mail(app, session, Draft(
        kind=OutboxKind.RELAY, template="requester/relay", context=context,
        to=(Address(ticket.requester, ticket.requester_name or ""),), cc=cc,
        subject=ticket_subject(app, ticket, f"Re: {ticket.subject}"), ticket_id=ticket.id,
        in_reply_to=in_reply_to, references=refs,
        reply_to=reply_address(app, ticket.id, TokenRole.REQUESTER),
        auto_submitted=None, attachments=tuple(attachments),
    ))


# --- what follows --------------------------------------------------------------------------


def queue_consequences(reply: Reply) -> None:
    """Signposting for a new category, the closure notice: after the relay."""
    app, session, ticket = reply.app, reply.session, reply.ticket
    if reply.signposting and queue_signposting(app, session, ticket, reply.signposting,
                                               answering=None):
        reply.done.append(f"signposting for {reply.signposting} sent to the requester")
    if reply.closing and ticket.status == TicketStatus.CLOSED and ticket.requester:
        context = {"helpline_name": app.settings.helpline_name,
                   "reference": ticket.reference, "subject": ticket.subject}
        queue_requester_mail(app, session, ticket, OutboxKind.CLOSURE, "requester/closure",
                             context,
                             answering=None)
        reply.done.append("closure notice sent to the requester")


def answer_practitioner(reply: Reply, kind: OutboxKind, context: dict[str, Any]) -> None:
    """An automatic answer to the practitioner, threaded to their reply."""
    app, ticket = reply.app, reply.ticket
    in_reply_to, refs = thread_ids(reply.message)
    to = (Address(reply.actor),)
    queue_mail(app, reply.session, Draft(
        kind=kind, template=f"practitioner/{kind}", context=context,
        to=to, subject=ticket_subject(app, ticket, f"Re: {ticket.subject}"),
        ticket_id=ticket.id, in_reply_to=in_reply_to, references=refs,
        reply_to=practitioner_reply_address(app, ticket.id, to), auto_submitted="auto-replied",
    ))
