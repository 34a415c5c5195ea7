"""A practitioner's reply (SPEC section 6): run its command lines, relay its answer.

The pipeline calls :func:`handle_practitioner_reply` once a reply from a
recognised practitioner is stored on its ticket, in the same transaction.
``message.text`` is already the new text: quoted history, ``-- `` and mobile
signatures are gone (:mod:`mailroom.intake.quotes`; HTML-only mail was rendered to
text by the parser). Then, in order:

1. **Check** the command lines at the top (:mod:`mailroom.cases.commands`) and their
   values against the configuration: categories, roles, practitioners,
   platforms. Any error and *nothing* happens: no command runs, nothing is
   relayed; the practitioner gets ``practitioner/command_error`` threaded to
   the reply, and a ``command.rejected`` event is kept.
2. **Run** each command in order, each with its audit event (actor: the
   practitioner; message: the reply). A command that changes nothing (the
   category it already has) writes nothing.
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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from mailroom.addresses import TokenRole
from mailroom.app import App
from mailroom.cases import participants
from mailroom.cases.commands import Command, parse_commands
from mailroom.cases.escalations import open_escalation, outcome_target, record_outcome
from mailroom.cases.incoming import Incoming
from mailroom.cases.merging import merge_tickets
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
from mailroom.cases.safeguarding import keep_only_hashes, outgoing_attachments, withhold_case_files
from mailroom.cases.tickets import record_event, set_status, ticket_by_reference
from mailroom.errors import MailroomError
from mailroom.mailtypes import Address, StoredFile
from mailroom.outbox.compose import is_writable_address
from mailroom.outbox.queue import Draft, queue_mail
from mailroom.store.models import Message, Ticket
from mailroom.vocabulary import OutboxKind, TicketStatus

__all__ = [
    "Reply",
    "check_commands",
    "handle_practitioner_reply",
    "relay_text",
    "request_escalation",
    "request_outcome",
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


@dataclass
class Reply:
    """One practitioner reply being acted on, and what acting on it caused."""

    app: App
    session: Session
    ticket: Ticket
    message: Message
    actor: str  # the practitioner's address
    status_chosen: bool = False  # a #status/#close decided the status
    closing: bool = False  # a command closed the case
    signposting: str | None = None  # the new category, for its signposting
    done: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    note_text: str | None = None  # the text of a #note reply: context for an escalation

    def record(self, action: str, **detail: Any) -> None:
        """An audit event by the practitioner, from this reply."""
        record_event(self.session, action=action, actor=self.actor, at=self.app.now(),
                     ticket_id=self.ticket.id, message_pk=self.message.id, **detail)


def handle_practitioner_reply(app: App, session: Session, incoming: Incoming) -> None:
    """Check and run the commands of a practitioner's reply, then relay its answer."""
    ticket, message = incoming.ticket, incoming.message
    assert ticket is not None and message is not None
    reply = Reply(app, session, ticket, message, actor=message.sender or "unknown")
    parsed = parse_commands(message.text or "")
    reply.note_text = relay_text(parsed.body) or None if parsed.is_note else None
    errors = [*parsed.errors, *check_commands(app, parsed.commands)]
    if errors:
        reject(reply, errors)
        return
    for command in parsed.commands:
        RUNNERS[command.name](reply, command)
    if parsed.is_note:
        reply.record("note.added")
    else:
        relay(reply, relay_text(parsed.body))
    queue_consequences(reply)
    if reply.notices:
        answer_practitioner(reply, OutboxKind.COMMAND_DONE, {
            "reference": ticket.reference, "done": reply.done, "notices": reply.notices})


# --- checking ----------------------------------------------------------------------------


def check_commands(app: App, commands: tuple[Command, ...]) -> list[str]:
    """One error sentence per command whose value the configuration does not know."""
    errors = []
    for command in commands:
        checker = CHECKS.get(command.name)
        error = checker(app, command) if checker else None
        if error:
            errors.append(error)
    return errors


def normalise_choice(value: str) -> str:
    """``Illegal images`` / ``illegal-images`` → ``illegal_images``."""
    return "_".join(value.lower().replace("-", " ").split())


def _check_assign(app: App, command: Command) -> str | None:
    address = command.args[0]
    if address == "me" or address in app.settings.practitioners:
        return None
    return f'#assign: "{address}" is not a practitioner (use "me" or a practitioner\'s address)'


def _check_choice(
    what: str, choices: Callable[[App], tuple[str, ...]]
) -> Callable[[App, Command], str | None]:
    def check(app: App, command: Command) -> str | None:
        value = normalise_choice(command.args[0])
        if value in choices(app):
            return None
        return f'#{command.name}: "{command.args[0]}" is not a {what} ' \
               f'(one of: {", ".join(choices(app))})'

    return check


def _check_escalate(app: App, command: Command) -> str | None:
    platform = command.args[0]
    if platform in app.platforms:
        return None
    return f'#escalate: "{platform}" is not a platform in the directory ' \
           f'(one of: {", ".join(sorted(app.platforms))})'


CHECKS: dict[str, Callable[[App, Command], str | None]] = {
    "assign": _check_assign,
    "category": _check_choice("category", lambda app: app.settings.categories),
    "role": _check_choice("role", lambda app: app.settings.roles),
    "escalate": _check_escalate,
}


def reject(reply: Reply, errors: list[str]) -> None:
    """Nothing runs: record why and tell the practitioner."""
    reply.record("command.rejected", errors=errors)
    reply.message.flags = [*reply.message.flags, "commands-rejected"]
    answer_practitioner(reply, OutboxKind.COMMAND_ERROR,
                        {"reference": reply.ticket.reference, "errors": errors})


# --- running -----------------------------------------------------------------------------


def _run_assign(reply: Reply, command: Command) -> None:
    address = reply.actor if command.args[0] == "me" else command.args[0]
    before = reply.ticket.assignee
    if before != address:
        reply.ticket.assignee = address
        reply.record("ticket.assigned", before=before, after=address)
    reply.done.append(f"assigned to {address}")


def _run_status(reply: Reply, command: Command) -> None:
    change_status(reply, command.args[0])


def _run_close(reply: Reply, command: Command) -> None:
    change_status(reply, TicketStatus.CLOSED)


def change_status(reply: Reply, status: str) -> None:
    """A status the practitioner chose: the relay will not change it again."""
    reply.status_chosen = True
    changed = set_status(reply.session, reply.ticket, status, actor=reply.actor,
                         at=reply.app.now(), message_pk=reply.message.id)
    reply.closing = status == TicketStatus.CLOSED and (changed or reply.closing)
    reply.done.append(f"status {status}")


def _run_field(name: str) -> Callable[[Reply, Command], None]:
    """``#category`` and ``#role``: set the ticket's field of that name."""

    def run(reply: Reply, command: Command) -> None:
        value = normalise_choice(command.args[0])
        before = getattr(reply.ticket, name)
        if before != value:
            setattr(reply.ticket, name, value)
            reply.record(f"ticket.{name}", before=before, after=value)
            if name == "category":
                reply.signposting = value
                keep_only_hashes(reply.app, reply.session, reply.ticket, actor=reply.actor)
        reply.done.append(f"{name} {value}")

    return run


def _run_escalate(reply: Reply, command: Command) -> None:
    request_escalation(reply, command.args[0], command.args[1:])


def _run_outcome(reply: Reply, command: Command) -> None:
    request_outcome(reply, command.args[0], *command.args[1:2])


def _run_allow(reply: Reply, command: Command) -> None:
    """``#allow ADDRESS|all``: they receive the case's answers from now on."""
    try:
        changed = participants.allow(reply.session, reply.ticket, command.args[0],
                                     actor=reply.actor, at=reply.app.now(),
                                     message_pk=reply.message.id)
    except participants.ParticipantError as exc:
        reply.notices.append(f"#allow {command.args[0]}: {exc}")
        return
    if changed:
        reply.done.append(f"allowed {', '.join(changed)} (they receive answers on this case)")
    else:
        reply.done.append(f"#allow {command.args[0]}: nobody was waiting to be allowed")


def _run_remove(reply: Reply, command: Command) -> None:
    """``#remove ADDRESS``: they receive nothing more of the case."""
    address = command.args[0]
    try:
        removed = participants.remove(reply.session, reply.ticket, address, actor=reply.actor,
                                      at=reply.app.now(), message_pk=reply.message.id)
    except participants.ParticipantError as exc:
        reply.notices.append(f"#remove {address}: {exc}")
        return
    reply.done.append(f"removed {address}" if removed else f"{address} was not on the case")


def _run_merge(reply: Reply, command: Command) -> None:
    """``#merge REF``: fold that case into this one; its people come with it (the
    practitioner's decision widens the audience, which nothing else may)."""
    ref = command.args[0]
    try:
        other = merge_case_into(reply.app, reply.session, reply.ticket, ref, actor=reply.actor,
                                message_pk=reply.message.id)
    except MailroomError as exc:
        reply.notices.append(f"#merge {ref}: {exc}")
        return
    reply.done.append(f"merged {other.reference} into {reply.ticket.reference}")


def merge_case_into(
    app: App, session: Session, keep: Ticket, ref: str, *, actor: str,
    message_pk: int | None = None,
) -> Ticket:
    """Merge the case ``ref`` into ``keep`` by a practitioner's decision; the case merged.

    Raises MailroomError (one line) when there is no such case, it is this one, or
    it was merged already."""
    other = ticket_by_reference(session, ref)
    if other is None:
        raise MailroomError(f"there is no case {ref}")
    if other.merged_into is not None:
        raise MailroomError(f"case {other.reference} was already merged into another case")
    if other.id == keep.id:
        raise MailroomError(f"case {other.reference} is this case")
    merged = merge_tickets(session, keep, [other], at=app.now(), reason="practitioner",
                           actor=actor, message_pk=message_pk)
    if merged.became_illegal:
        keep_only_hashes(app, session, keep, actor=actor)
    return other


def _run_withhold(reply: Reply, command: Command) -> None:
    """``#withhold``: every file of the case is withheld from now on, and retroactively."""
    done = withhold_case_files(reply.app, reply.session, reply.ticket, actor=reply.actor,
                               message_pk=reply.message.id)
    line = f"withheld the case's {done.files} file(s): none will be sent, in any case"
    if done.queued_mail:
        line += f" ({done.queued_mail} queued mail(s) will go without them)"
    if done.other_cases:
        line += f"; the same files also flagged {', '.join(done.other_cases)}"
    reply.done.append(line)


def _run_nothing(reply: Reply, command: Command) -> None:
    """``#note``: handled as a whole (nothing is relayed)."""


def request_escalation(reply: Reply, platform: str, urls: tuple[str, ...]) -> None:
    """``#escalate``: open the escalation; a reason it cannot go is told to the practitioner.

    The context sent to the platform is the text of a ``#note`` reply, never the
    answer being relayed to the professional.
    """
    name = reply.app.platforms[platform].name
    try:
        escalation = open_escalation(
            reply.app, reply.session, reply.ticket, platform, urls=list(urls) or None,
            context=reply.note_text, actor=reply.actor, message_pk=reply.message.id)
    except MailroomError as exc:
        reply.record("escalation.refused", platform=platform, reason=str(exc))
        reply.notices.append(f"#escalate {platform}: nothing was sent to {name}: {exc}")
        return
    reply.done.append(f"escalated to {name} ({len(escalation.urls)} URLs)")


def request_outcome(reply: Reply, outcome: str, platform: str | None = None) -> None:
    """``#outcome``: close the escalation it is about with that outcome."""
    try:
        escalation = outcome_target(reply.session, reply.ticket, platform)
        record_outcome(reply.app, reply.session, escalation, outcome, actor=reply.actor,
                       message_pk=reply.message.id)
    except MailroomError as exc:
        reply.record("outcome.refused", outcome=outcome, reason=str(exc))
        reply.notices.append(f"#outcome {outcome}: {exc}")
        return
    reply.done.append(f"outcome {outcome} for {escalation.platform}")


RUNNERS: dict[str, Callable[[Reply, Command], None]] = {
    "assign": _run_assign,
    "status": _run_status,
    "close": _run_close,
    "category": _run_field("category"),
    "role": _run_field("role"),
    "escalate": _run_escalate,
    "outcome": _run_outcome,
    "note": _run_nothing,
    "allow": _run_allow,
    "remove": _run_remove,
    "merge": _run_merge,
    "withhold": _run_withhold,
}


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
        queue_requester_mail(app, session, ticket, OutboxKind.CLOSURE, "requester/closure", context,
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
