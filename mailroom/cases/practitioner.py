"""A practitioner's reply (SPEC section 6): run its command lines, relay its answer.

The pipeline calls :func:`handle_practitioner_reply` once a reply from a
recognised practitioner is stored on its ticket, in the same transaction, and
applies what it returns (:mod:`mailroom.cases.decisions`): the commands change
the case at once, each with its event; the mail, the events of what became of the
answer (relayed, held, kept as a note) and the status an answer leaves are decided,
in the order below, and applied together.
``message.text`` is already the new text: quoted history, ``-- `` and mobile
signatures are gone (:mod:`mailroom.intake.quotes`; HTML-only mail was rendered to
text by the parser). Then, in order:

1. **Sort** the command lines at the top: each command's unit in
   :mod:`mailroom.cases.commands` parses and checks its own against the
   configuration (categories, roles, practitioners, platforms). A command that
   does not parse or check is *refused* (a ``command.rejected`` event); the
   others run.
2. **Run** each valid command in order (its unit's ``run``), each with its
   audit event (actor: the practitioner; message: the reply). A command that
   changes nothing (the category it already has) writes nothing.
3. **Relay** what is left to the requester and the participants a practitioner
   allowed (never a pending one: see :mod:`mailroom.cases.participants`),
   from the helpline address, threaded to the requester's latest message and
   not marked automatic (a person wrote it) — unless ``#note`` keeps the reply
   internal, or nothing is left once commands and the sign-off are removed.
   The practitioner's attachments go along, except inline images (signature
   logos) and whatever :func:`mailroom.cases.safeguarding.outgoing_attachments`
   withholds. The text is **held**, not relayed, when a command of the reply
   was refused (a mistyped ``#note`` must not reach the requester) and when it
   reads as a signature only ("Pat", sent from a phone under ``#close``; the
   writer's own name alone is dropped as a sign-off). A held reply is flagged
   ``text-held``; ``#send`` in a later reply relays it (with its own files).
4. **Then** the mail the commands cause (signposting for the new category,
   the closure notice), queued after the relay so that the personal answer
   comes first; and, when part of the reply was refused, not done (an
   escalation, withheld attachments) or held, **one** mail to that
   practitioner only (``practitioner/command_report``): what was done, what
   was refused and why (with the valid values), what was not done, and the
   held text quoted, to send with ``#send``. Nothing a practitioner wrote is lost.

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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.addresses import TokenKind, TokenRole
from mailroom.app import App, Clock
from mailroom.cases.attachments import store_attachments
from mailroom.cases.commands import (
    ANSWERS,
    Command,
    CommandParse,
    Known,
    Reply,
    merge_case_into,
    parse_commands,
    run_commands,
    sort_commands,
)
from mailroom.cases.decisions import AuditEvent, Decisions, Mail, StatusChange
from mailroom.cases.incoming import Incoming
from mailroom.cases.participants import copy_recipients
from mailroom.cases.replies import (
    has_signposting,
    last_message_from,
    practitioner_reply_address,
    reply_address,
    requester_failing,
    requester_mail,
    signposting_mail,
    thread_ids,
    ticket_subject,
)
from mailroom.cases.safeguarding import outgoing_attachments
from mailroom.cases.sla import answered
from mailroom.cases.tickets import record_event
from mailroom.mailtypes import Address, Attachment, StoredFile
from mailroom.outbox.compose import is_writable_address
from mailroom.outbox.queue import Draft
from mailroom.outbox.render import Renderer
from mailroom.settings import Settings
from mailroom.store.blobs import BlobStore
from mailroom.store.models import Message, Ticket
from mailroom.vocabulary import Direction, OutboxKind, Speaker, TicketStatus

__all__ = [
    "ConsoleOutcome",
    "act_from_console",
    "handle_practitioner_reply",
    "merge_case_into",
    "relay_text",
    "strip_sign_off",
]

MAX_SIGNATURE_LINES = 6
MAX_SIGNATURE_WIDTH = 60
MAX_SIGNATURE_WORDS = 5  # per line, for text that is a signature and nothing else
HELD = "text-held"  # flag of a reply whose text was not relayed
HELD_SENT = "text-sent"  # flag of a held reply whose text #send dealt with
HELD_LOOKBACK = 50  # how many of a practitioner's replies on a case #send looks through

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


def handle_practitioner_reply(app: App, session: Session, incoming: Incoming) -> Decisions:
    """Run the valid commands of a practitioner's reply, relay or hold its answer, and
    report to the practitioner what could not be done: what the reply leads to."""
    ticket, message = incoming.ticket, incoming.message
    assert ticket is not None and message is not None
    reply = Reply(app, session, ticket, message, actor=message.sender or "unknown",
                  escalation_id=bound_escalation(incoming))
    parsed = parse_commands(message.text or "")
    known = Known.of(app.settings, app.platforms, app.renderer)
    commands, unknown = sort_commands(parsed.commands, known)
    refused, held = act(reply, parsed, commands, refused_already=[*parsed.errors, *unknown])
    report(reply, refused, held)
    if reply.help:
        send_help(reply, known)
    return reply.decisions


def act(reply: Reply, parsed: CommandParse, commands: Sequence[Command], *,
        refused_already: Sequence[str] = ()) -> tuple[list[str], Held | None]:
    """What a practitioner's reply does, by mail or from the console: run its valid
    commands, record what was refused, relay or hold its answer, then the consequences
    (signposting, closure). Returns what was refused and what was held back."""
    reply.note_text = relay_text(parsed.body) or None if parsed.is_note else None
    run_commands(reply, commands)
    refused = [*refused_already, *reply.refused]
    if refused:
        reply.decide_event("command.rejected", errors=refused)
        reply.message.flags = sorted({*reply.message.flags, "commands-rejected"})
    if reply.evidence is not None and not reply.evidence_used:
        reply.notices.append("#evidence: there was no #escalate in your reply, so no file was "
                             "sent anywhere")
    app = reply.app
    held = answer(reply, answer_text(app.settings, app.renderer, reply.ticket, parsed.body,
                                     reply.canned), refused=bool(refused))
    decide_consequences(reply)
    return refused, held


def answer_text(settings: Settings, renderer: Renderer, ticket: Ticket, body: str,
                canned: list[str]) -> str:
    """The words to relay: the body without its sign-off, then each canned answer."""
    parts = [relay_text(body)]
    context = {"reference": ticket.reference, "helpline_name": settings.helpline_name}
    parts += [renderer.render(f"{ANSWERS}/{name}", context)[0].strip() for name in canned]
    return "\n\n".join(part for part in parts if part)


def bound_escalation(incoming: Incoming) -> int | None:
    """The escalation a practitioner's reply address names (the notice of a platform's
    answer, the confirmation of an outcome): ``#outcome`` is about that one."""
    token = incoming.token
    if token is not None and token.kind == TokenKind.ESCALATION:
        return token.ident
    return None


# --- the answer: relayed, held, or internal ------------------------------------------------


@dataclass(frozen=True)
class Held:
    """Text of a reply that was not relayed, quoted back to the practitioner for ``#send``."""

    text: str
    reason: str


def answer(reply: Reply, text: str, *, refused: bool) -> Held | None:
    """Relay the answer, unless it must wait; what was held back, if anything.

    A reply with a refused command does not relay its text (a mistyped ``#note``
    must not reach the requester), and text that reads as a signature only is not
    an answer. Both are held on the reply for ``#send``, except the practitioner's
    own name alone, which is only a sign-off.
    """
    if reply.internal:
        reply.decide_event("note.added")
        return None
    if refused and text:
        return hold(reply, text, "a command in it was refused, so its text was not sent")
    if text and is_signature_only(text):
        if names_the_writer(text, reply.message):
            reply.decide_event("sign-off.dropped")
            return None
        return hold(reply, text, "its text reads as a signature only, so it was not sent")
    if reply.send_held:
        send_held(reply, text)
        return None
    relay(reply, text, reply.message)
    return None


def hold(reply: Reply, text: str, reason: str) -> Held:
    reply.message.flags = sorted({*reply.message.flags, HELD})
    reply.decide_event("answer.held", reason=reason)
    return Held(text, reason)


def send_held(reply: Reply, text: str) -> None:
    """``#send``: relay the held text of the practitioner's reply that this one answers
    (else their latest held one), or the text of this reply instead of it."""
    held = held_reply(reply)
    if held is None:
        reply.notices.append("#send: you have no held answer on this case to send")
        relay(reply, text, reply.message)
        return
    held.flags = sorted({*held.flags, HELD_SENT})
    if text:
        reply.done.append("your new text was sent instead of the held answer")
        relay(reply, text, reply.message)
        return
    parsed = parse_commands(held.text or "")
    known = reply.app.renderer.names(ANSWERS)
    canned = [c.args[0] for c in parsed.named("reply") if c.args[0] in known]
    app = reply.app
    relay(reply, answer_text(app.settings, app.renderer, reply.ticket, parsed.body, canned), held)


def held_reply(reply: Reply) -> Message | None:
    """The practitioner's held reply on this case that this reply answers, else their
    latest held one not sent yet."""
    rows = reply.session.execute(select(Message).where(
        Message.ticket_id == reply.ticket.id, Message.direction == Direction.IN,
        Message.kind == Speaker.PRACTITIONER, Message.sender == reply.message.sender,
        Message.id != reply.message.id).order_by(Message.id.desc()).limit(HELD_LOOKBACK)
    ).scalars()
    held = [m for m in rows if HELD in m.flags and HELD_SENT not in m.flags]
    named = {*(reply.message.in_reply_to or "").split(), *(reply.message.references or "").split()}
    return next((m for m in held if m.message_id in named), held[0] if held else None)


def is_signature_only(text: str) -> bool:
    """A few short lines that are not sentences: a name, a job title, a phone number."""
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    return 0 < len(lines) <= MAX_SIGNATURE_LINES and all(
        _is_signature_line(line) and len(line.split()) <= MAX_SIGNATURE_WORDS and "?" not in line
        for line in lines)


def names_the_writer(text: str, message: Message) -> bool:
    """Whether the first line of ``text`` holds the writer's name (from the From header)."""
    names = {*_words(message.sender_name or ""), *_words((message.sender or "").split("@")[0])}
    first = text.strip().split("\n", 1)[0]
    return bool(names & set(_words(first)))


def _words(text: str) -> list[str]:
    return [word for word in re.split(r"[^\w]+", text.lower()) if len(word) > 1]


# --- telling the practitioner ------------------------------------------------------------


def report(reply: Reply, refused: list[str], held: Held | None) -> None:
    """One mail to the practitioner when part of the reply was refused, not done or held:
    what was done, what was refused and why, and the text held back for ``#send``."""
    if not (refused or reply.notices or held):
        return
    answer_practitioner(reply, OutboxKind.COMMAND_ERROR if refused else OutboxKind.COMMAND_DONE,
                        "practitioner/command_report", {
                            "reference": reply.ticket.reference, "done": reply.done,
                            "refused": refused, "notices": reply.notices,
                            "held": held.text if held else "",
                            "held_reason": held.reason if held else ""})


def send_help(reply: Reply, known: Known) -> None:
    """``#help``: the commands, and the canned answers with their first line."""
    answers = []
    for name in known.answers:
        text, _ = reply.app.renderer.render(f"{ANSWERS}/{name}", {
            "reference": reply.ticket.reference,
            "helpline_name": reply.app.settings.helpline_name})
        first = next((line.strip() for line in text.split("\n") if line.strip()), "")
        answers.append({"name": name, "first_line": first})
    answer_practitioner(reply, OutboxKind.HELP, "practitioner/help",
                        {"reference": reply.ticket.reference, "answers": answers})


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


def relay(reply: Reply, text: str, source: Message) -> None:
    """Send the answer to the requester and the allowed participants, with the files of
    the reply it was written in (``source``); the status follows."""
    ticket, now = reply.ticket, reply.app.now()
    if not text:
        return
    if not ticket.requester or not is_writable_address(ticket.requester):
        reply.notices.append("the case has no requester address mailroom can write to: "
                             "your answer was not sent")
        return
    app = reply.app
    attachments, withheld, reason = relayable_attachments(app.settings, app.blobs, ticket, source,
                                                          clock=app.clock)
    cc = copy_recipients(ticket)
    bounced = requester_failing(ticket)
    if bounced:
        reply.notices.append(f"mail to {ticket.requester} bounced, so your answer did not go "
                             f"to them; once the address works, reply with "
                             f"#retry {ticket.requester} and send it again")
        if not cc:
            return
    decide_relay(reply, text, attachments, cc, to_requester=not bounced)
    reply.decide_event("message.relayed", to=None if bounced else ticket.requester,
                 cc=[a.addr for a in cc],
                 attachments=[file.filename for file in attachments], withheld=withheld,
                 **({"held_message": source.id} if source is not reply.message else {}))
    copies = f"{len(cc)} in copy"
    if bounced:
        reply.done.append(f"answer sent to the {copies} only")
    else:
        reply.done.append(f"answer sent to {ticket.requester}" + (f" (and {copies})" if cc else ""))
    if withheld:
        reply.notices.append(f"{withheld} attachment(s) were not sent with your answer: {reason}")
    if ticket.first_response_at is None:
        ticket.first_response_at = now
    answered(ticket)
    if not reply.status_chosen and ticket.status == TicketStatus.OPEN:
        reply.decide(StatusChange(ticket, TicketStatus.WAITING, actor=reply.actor, at=now,
                                  message_pk=reply.message.id))


def relayable_attachments(
    settings: Settings, blobs: BlobStore, ticket: Ticket, message: Message, *, clock: Clock
) -> tuple[Attachments, int, str | None]:
    """What may go with the answer: not inline images, not what safeguarding withholds
    (:func:`~mailroom.cases.safeguarding.outgoing_attachments`)."""
    allowed, _, reason = outgoing_attachments(settings, blobs, ticket, message, clock=clock)
    inline = {(row.filename, row.sha256) for row in message.attachments if row.inline}
    kept = [file for file in allowed if (file.filename, file.sha256) not in inline]
    meant = len(message.attachments) - len(inline)
    withheld = max(meant - len(kept), 0)
    return kept, withheld, reason if withheld else None


def decide_relay(reply: Reply, text: str, attachments: Attachments,
                 cc: tuple[Address, ...], *, to_requester: bool = True) -> None:
    """The relay mail: from the helpline, threaded to the requester's latest message."""
    app, session, ticket = reply.app, reply.session, reply.ticket
    assert ticket.requester is not None
    answering = last_message_from(session, ticket, ticket.requester)
    in_reply_to, refs = thread_ids(answering) if answering else (None, ())
    context = {"text": text, "reference": ticket.reference,
               "helpline_name": app.settings.helpline_name}
    reply.decide(Mail(Draft(
        kind=OutboxKind.RELAY, template="requester/relay", context=context,
        to=(Address(ticket.requester, ticket.requester_name or ""),) if to_requester else (),
        cc=cc, subject=ticket_subject(app.settings, ticket, f"Re: {ticket.subject}"),
        ticket_id=ticket.id, in_reply_to=in_reply_to, references=refs,
        reply_to=reply_address(app.settings, ticket.id, TokenRole.REQUESTER),
        auto_submitted=None, attachments=tuple(attachments),
    )))


# --- what follows --------------------------------------------------------------------------


def decide_consequences(reply: Reply) -> None:
    """Signposting for a new category, the closure notice: after the relay."""
    app, session, ticket = reply.app, reply.session, reply.ticket
    if reply.signposting and has_signposting(app.renderer, reply.signposting):
        reply.decide(signposting_mail(app.settings, app.renderer, app.platforms, session, ticket,
                                      reply.signposting, answering=None))
        reply.done.append(f"signposting for {reply.signposting} sent to the requester")
    if reply.closing and ticket.status == TicketStatus.CLOSED and ticket.requester:
        context = {"helpline_name": app.settings.helpline_name,
                   "reference": ticket.reference, "subject": ticket.subject}
        reply.decide(requester_mail(app.settings, session, ticket, OutboxKind.CLOSURE,
                                    "requester/closure", context, answering=None))
        reply.done.append("closure notice sent to the requester")


def answer_practitioner(
    reply: Reply, kind: OutboxKind, template: str, context: dict[str, Any]
) -> None:
    """An automatic answer to the practitioner (to them only), threaded to their reply."""
    app, ticket = reply.app, reply.ticket
    in_reply_to, refs = thread_ids(reply.message)
    to = (Address(reply.actor),)
    reply.decide(Mail(Draft(
        kind=kind, template=template, context=context,
        to=to, subject=ticket_subject(app.settings, ticket, f"Re: {ticket.subject}"),
        ticket_id=ticket.id, in_reply_to=in_reply_to, references=refs,
        reply_to=practitioner_reply_address(app.settings, ticket.id, to, now=app.now()),
        auto_submitted="auto-replied",
    )))


# --- from the staff console ------------------------------------------------------------------


@dataclass(frozen=True)
class ConsoleOutcome:
    """What a practitioner's action in the console did, for the page to say, and what it
    leads to, for the page to apply (:func:`mailroom.cases.decisions.apply_decisions`)."""

    done: tuple[str, ...] = ()
    notices: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    decisions: Decisions = Decisions()


def act_from_console(app: App, session: Session, ticket: Ticket, *, actor: str,
                     text: str, files: Sequence[Attachment] = (),
                     escalation_id: int | None = None) -> ConsoleOutcome:
    """A practitioner's reply written in the staff console: the same as one by mail.

    ``text`` is read as a mail reply is (command lines at the top, then the answer;
    the console's buttons write the command lines: ``#note``, ``#assign me``,
    ``#status closed``), with the same checks, effects, audit events and relay. It
    is stored as the practitioner's message on the case (flagged ``console``), so
    the events name it, and ``files`` as its attachments, by the rules of a mail's
    (:func:`mailroom.cases.attachments.store_attachments`): the relay sends them
    with the answer, to the same people, as it sends a mail reply's, and a note
    keeps them on the case. A command that cannot be read or is not known stops
    everything before anything is stored (``command.rejected`` is decided): the
    practitioner is on the page to correct it, and nothing of their words is lost.
    A command refused when it runs, or text that reads as a signature only, holds
    the answer back as by mail, and the page says so. ``escalation_id`` is the
    escalation an ``#outcome`` is about, as a reply address bound to one names it
    by mail (the outcome form of each escalation on the case page).
    """
    parsed = parse_commands(text)
    known = Known.of(app.settings, app.platforms, app.renderer)
    commands, unknown = sort_commands(parsed.commands, known)
    errors = [*parsed.errors, *unknown]
    now = app.now()
    if errors:
        rejected = AuditEvent("command.rejected", actor=actor, at=now, ticket_id=ticket.id,
                              detail={"errors": errors, "via": "console"})
        return ConsoleOutcome(errors=tuple(errors), decisions=Decisions().then(rejected))
    message = Message(
        ticket_id=ticket.id, direction=Direction.IN, kind=Speaker.PRACTITIONER, sender=actor,
        recipients={"to": [], "cc": []}, subject=f"Re: {ticket.subject}"[:2000], date=now,
        text=text, urls=[], flags=["console"], created_at=now, attachments=[])
    session.add(message)
    ticket.updated_at = now
    session.flush()
    store_attachments(app.settings, app.blobs, session, message, ticket, files, clock=app.clock)
    detail: dict[str, Any] = {"kind": Speaker.PRACTITIONER, "via": "console"}
    if files:
        detail["files"] = [row.filename for row in message.attachments]
    record_event(session, action="message.received", actor=actor, at=now, ticket_id=ticket.id,
                 message_pk=message.id, **detail)
    reply = Reply(app, session, ticket, message, actor=actor, escalation_id=escalation_id)
    refused, held = act(reply, parsed, commands)
    if reply.help:
        send_help(reply, known)
    notices = [*reply.notices, *([f"your answer was not sent: {held.reason}"] if held else [])]
    if files and not reply.internal and held is None and not files_relayed(reply.decisions):
        notices.append("your files stay on the case: no answer went out to carry them")
    return ConsoleOutcome(tuple(reply.done), tuple(notices), tuple(refused), reply.decisions)


def files_relayed(decisions: Decisions) -> bool:
    """Whether the reply's relay carries its own files (not those of a held answer that
    its ``#send`` sends)."""
    return any("held_message" not in event.detail for event in decisions.events("message.relayed"))
