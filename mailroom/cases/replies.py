"""What the helpline sends after a requester's message: acknowledgement,
signposting and the practitioners' notification, decided here and queued by the
pipeline (:func:`mailroom.cases.decisions.apply_decisions`) in the same
transaction as the message itself.

No loops: nothing automatic answers automatic mail (the pipeline never calls
this for auto-replies, bounces or our own mail), null senders, ``noreply``
addresses, our own domains or staff; and each sender gets at most
``per_window`` acknowledgements per window and ``per_day`` per day.

Two rules hold against autoresponders that wear no automatic-reply headers:

* **Vacation text.** A message whose new text is an out-of-office notice
  (:func:`mailroom.intake.classify.vacation_reasons`) gets no acknowledgement
  (``no-ack:vacation-text``).
* **The circuit breaker across senders.** An autoresponder that answers each
  acknowledgement from a new address defeats the per-sender limits, but says
  the same thing every round. Each acknowledgement's outbox row keeps two keys
  of the mail it answered: its subject normalised (no ``Re:``/``AW:``/``Fwd:``…,
  no tags of ours, white space collapsed, case folded) and its new text
  normalised (quoted lines, digits and white space removed, case folded; only
  when at least ``MIN_BODY_CHARS`` are left: "see attached" says nothing). When
  ``same_content_per_window`` acknowledgements were queued for the same subject
  key or the same body key within ``same_content_window_minutes``, whoever they
  went to, no further one goes for that content until the window has passed
  (``no-ack:circuit-breaker``). An empty subject gives no key.

  The keys are keyed hashes (BLAKE2b with a key derived from the signing
  secret): the outbox holds no second copy of what people wrote, and a short
  subject cannot be found again by hashing guesses. Changing the secret only
  restarts the count.

  The trade-off: honest professionals who write the same subject within the
  window (three teachers of one school writing "Fake account" the same
  morning) are acknowledged the first ``same_content_per_window`` times; the
  next one is not, though their case opens and the practitioners are told as
  always, so nobody's report is lost, only the automatic receipt. A loop, in
  turn, costs at most that many acknowledgements per window. Like the
  per-sender limits, the count is read, not locked: workers deciding at the
  same moment may each send one more.

Every refusal is a flag ``no-ack:<reason>`` on the message and a log line; the
case still opens and the practitioners are notified.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailroom.addresses import TEAM, ReplyToken, TokenKind, TokenRole, make_reply_address
from mailroom.app import App
from mailroom.cases import participants
from mailroom.cases.decisions import AuditEvent, Decisions, Mail
from mailroom.cases.incoming import Incoming
from mailroom.cases.repeats import repeats_of
from mailroom.cases.safeguarding import outgoing_attachments
from mailroom.hours import OpeningHours
from mailroom.intake.classify import automatic_address_kind, vacation_reasons
from mailroom.mailtypes import Address
from mailroom.outbox.compose import is_writable_address, normalise_subject, tag_subject
from mailroom.outbox.queue import Draft, practitioner_recipients, recent_acknowledgements
from mailroom.outbox.render import Renderer
from mailroom.platforms import Platforms
from mailroom.settings import Settings
from mailroom.store.models import Message, OutboxItem, Ticket
from mailroom.vocabulary import Direction, OutboxKind, ParticipantState

log = logging.getLogger("mailroom.cases.replies")

MIN_BODY_CHARS = 30  # of normalised new text (no white space): shorter texts give no body key


def reply_address(
    settings: Settings, ticket_id: int, role: TokenRole, kind: TokenKind = TokenKind.TICKET
) -> Address:
    """The signed Reply-To of a requester or of a platform (for an escalation)."""
    addr = make_reply_address(local=settings.local_part, domain=settings.domain, kind=kind,
                              ident=ticket_id, role=role, secret=settings.secret)
    return Address(addr, settings.helpline_name)


def practitioner_reply_address(
    settings: Settings, ident: int, to: Sequence[Address], *, now: datetime,
    kind: TokenKind = TokenKind.TICKET,
) -> Address:
    """The case's Reply-To for practitioners, bound to the one practitioner a mail goes to,
    or to the team when it goes to the team mailbox or to several of them, and dated.

    With ``kind`` :attr:`TokenKind.ESCALATION`, ``ident`` is an escalation of the case:
    a reply to it is the practitioner's on that escalation's case, and its ``#outcome``
    is about that escalation. ``now``: the day it is issued."""
    addresses = [a.addr.lower() for a in to]
    bound = (addresses[0] if len(addresses) == 1 and addresses[0] in settings.practitioners
             else TEAM)
    addr = make_reply_address(local=settings.local_part, domain=settings.domain, kind=kind,
                              ident=ident, role=TokenRole.PRACTITIONER, secret=settings.secret,
                              bound=bound, issued=day_number(now))
    return Address(addr, settings.helpline_name)


def day_number(moment: datetime) -> int:
    """Days since 1970-01-01 in UTC: the issue day of a practitioner's token."""
    return (moment.astimezone(UTC).date() - EPOCH).days


EPOCH = datetime(1970, 1, 1, tzinfo=UTC).date()


def token_expired(settings: Settings, ticket: Ticket, token: ReplyToken, *,
                  now: datetime) -> bool:
    """A practitioner's token lapses ``link_days_after_close`` days after the later of
    the case's closing and the token's issue; never while the case is open."""
    if ticket.closed_at is None or token.issued is None:
        return False
    closed = day_number(ticket.closed_at)
    return day_number(now) > max(closed, token.issued) + settings.practitioner_link_days


@dataclass(frozen=True)
class Audience:
    """What practitioners must know, with a requester-side message, about who is on the case."""

    new_sender: str | None = None  # the sender is not on the case: they receive nothing
    unverified: str | None = None  # the From domain failed authentication (why)
    related: tuple[Ticket, ...] = ()  # cases of the same conversation, not merged
    acknowledgement: Acknowledgement | None = None  # a new case's, decided before storing
    sender_known: bool = True  # the sender may receive the case's mail


@dataclass(frozen=True)
class Acknowledgement:
    """Whether a requester's new case is acknowledged (``refused``: why not, as in
    ``no-ack:<refused>`` on the message), and the content keys it is counted under."""

    keys: ContentKeys
    refused: str | None


def ticket_subject(settings: Settings, ticket: Ticket, subject: str | None = None) -> str:
    return tag_subject(subject if subject is not None else ticket.subject,
                       settings.subject_tag, ticket.id)


def thread_ids(message: Message) -> tuple[str | None, tuple[str, ...]]:
    """In-Reply-To and References for a mail answering ``message``."""
    refs = tuple((message.references or "").split())
    if message.message_id:
        refs = (*refs, message.message_id)
    return message.message_id, refs


def respond_to_requester(
    app: App, session: Session, incoming: Incoming, audience: Audience
) -> Decisions:
    """Acknowledge a new case, signpost it, and tell the practitioners: the mail to queue.
    ``audience`` was decided before the message was stored, with a new case's
    acknowledgement (a refusal is on the stored message already, as ``no-ack:<why>``)."""
    ticket, message = incoming.ticket, incoming.message
    assert ticket is not None and message is not None
    decisions, now = Decisions(), app.now()
    if incoming.created:
        ack = audience.acknowledgement
        assert ack is not None
        if ack.refused is None:
            decisions = decisions.then(acknowledgement_mail(
                app.settings, app.hours, session, ticket, message, ack.keys,
                delay=acknowledgement_delay(app.settings, incoming), now=now))
            if ticket.category:
                decisions = decisions.then(signposting_mail(
                    app.settings, app.renderer, app.platforms, session, ticket, ticket.category,
                    answering=message))
    return decisions.then(notify_practitioners(
        app, session, ticket, message, new_case=incoming.created, audience=audience,
        listed=incoming.listed))


def acknowledgement_delay(settings: Settings, incoming: Incoming) -> timedelta:
    """A message naming Message-IDs not seen yet is a reply that came before what it
    answers: its acknowledgement waits ``acknowledgements.reply_grace_seconds``, so that
    when the rest of the conversation arrives and the cases are merged, the one case
    has one acknowledgement (:func:`mailroom.cases.merging.merge_tickets` withdraws the
    absorbed case's while it waits)."""
    links = incoming.links
    unseen = links is not None and bool(links.named - set(links.tickets))
    return timedelta(seconds=settings.ack_reply_grace_seconds) if unseen else timedelta(0)


def decide_acknowledgement(settings: Settings, session: Session, incoming: Incoming, *,
                           now: datetime) -> Acknowledgement:
    """Whether a requester's new case is acknowledged at ``now``. The pipeline asks
    before the message is stored (nothing it reads changes when the message is
    written: who sent it, what it says, what was queued lately), so that the message's
    row is written once, with its ``no-ack:`` flag."""
    keys = acknowledgement_keys(settings, incoming)
    reason = refusal_reason(settings, session, incoming, keys, now=now)
    if reason:
        log.info("no acknowledgement for inbox %s: %s", incoming.item.id, reason)
    return Acknowledgement(keys, reason)


def refusal_reason(
    settings: Settings, session: Session, incoming: Incoming, keys: ContentKeys | None = None,
    *, now: datetime,
) -> str | None:
    """Why a requester's new case gets no acknowledgement at ``now``, or None when it may
    get one: who sent it, then what it says, then how many went out lately (one query)."""
    reason = sender_refusal(settings, incoming) or age_refusal(settings, incoming, now=now)
    if reason is None and vacation_refusal(incoming):
        reason = "vacation-text"
    if reason is None:
        reason = rate_refusal(settings, session, incoming,
                              keys or acknowledgement_keys(settings, incoming), now=now)
    return reason


def sender_refusal(settings: Settings, incoming: Incoming) -> str | None:
    sender = incoming.parsed.sender
    if sender is None:
        return "no-sender"
    reason = address_refusal(sender.addr, incoming.item.mail_from)
    if reason is not None:
        return reason
    if not is_writable_address(sender.addr):
        return "invalid-address"  # e.g. a non-ASCII local part (SMTPUTF8) or "jo..x@"
    if sender.addr.rsplit("@", 1)[-1] in settings.domains or sender.addr in settings.practitioners:
        return "our-address"
    return None


def address_refusal(sender: str, mail_from: str | None) -> str | None:
    """Why mail from this author (``From``) and envelope sender (``MAIL FROM``, None
    when the door does not know it) is never acknowledged, whatever the classifier
    said: ``null-sender`` (``""`` or ``<>``), ``noreply`` or ``list-role`` for a
    program's author (MAILER-DAEMON, postmaster, noreply, ``*-bounces``, ``*-request``,
    ``*-admin``, ``*-owner``, ``listserv@``…), ``envelope-noreply`` or
    ``envelope-list-role`` for a person's mail sent on by a list or a mail system."""
    if mail_from is not None and mail_from.strip() in ("", "<>"):
        return "null-sender"
    kind = automatic_address_kind(sender)
    if kind is not None:
        return kind
    envelope = automatic_address_kind(mail_from or "")
    return f"envelope-{envelope}" if envelope is not None else None


def age_refusal(settings: Settings, incoming: Incoming, *, now: datetime) -> str | None:
    """``old-mail``: a message from files (``mailroom ingest`` of a mailbox) written more
    than ``acknowledgements.max_age_days_on_import`` days ago: its sender is not waiting
    for a receipt, and acknowledging years of mail would surprise hundreds of people."""
    date = incoming.parsed.date
    if incoming.item.door != "file" or date is None:
        return None
    limit = timedelta(days=settings.ack_max_age_days_on_import)
    return "old-mail" if now - date > limit else None


def vacation_refusal(incoming: Incoming) -> bool:
    """The message reads as an out-of-office notice that came without its headers."""
    vacation = vacation_reasons(incoming.parsed.subject, new_text(incoming))
    if vacation:
        log.info("inbox %s reads as an out-of-office notice (%s)", incoming.item.id,
                 ", ".join(vacation))
    return bool(vacation)


def rate_refusal(
    settings: Settings, session: Session, incoming: Incoming, keys: ContentKeys, *,
    now: datetime,
) -> str | None:
    """The per-sender limits, then the circuit breaker across senders, counted back
    from ``now``."""
    s = settings
    sender = incoming.parsed.sender
    assert sender is not None
    recent = recent_acknowledgements(
        session, sender.addr, window_since=now - timedelta(minutes=s.ack_window_minutes),
        day_since=now - timedelta(days=1),
        content_since=now - timedelta(minutes=s.ack_same_content_window_minutes),
        subject_key=keys.subject, body_key=keys.body)
    if recent.to_sender_in_window >= s.ack_per_window:
        return "rate-window"
    if recent.to_sender_in_day >= s.ack_per_day:
        return "rate-day"
    if recent.same_content >= s.ack_same_content_per_window:
        log.info("circuit breaker: %d acknowledgements for the same subject or text went out "
                 "in the last %d minutes, whoever the senders; none for inbox %s until the "
                 "window has passed", recent.same_content, s.ack_same_content_window_minutes,
                 incoming.item.id)
        return "circuit-breaker"
    return None


def new_text(incoming: Incoming) -> str:
    """The message's new text (quotes stripped) once extracted, else its whole text."""
    return incoming.extracted.text if incoming.extracted else incoming.parsed.text


# --- the circuit breaker's keys ---------------------------------------------------------


@dataclass(frozen=True)
class ContentKeys:
    """Keyed hashes of what a mail said, or None where it said too little to compare."""

    subject: str | None
    body: str | None


def acknowledgement_keys(settings: Settings, incoming: Incoming) -> ContentKeys:
    return content_keys(incoming.parsed.subject, new_text(incoming),
                        tag_template=settings.subject_tag, secret=settings.secret)


def content_keys(subject: str, text: str, *, tag_template: str, secret: bytes) -> ContentKeys:
    """The subject key (None for a subject with nothing left once normalised) and the
    body key (None below ``MIN_BODY_CHARS`` of normalised text)."""
    subject_text = normalise_subject(subject, tag_template)
    body_text = normalise_new_text(text)
    return ContentKeys(
        subject=keyed_hash(secret, "subject", subject_text) if subject_text else None,
        body=keyed_hash(secret, "body", body_text) if len(body_text) >= MIN_BODY_CHARS else None,
    )


_QUOTED_LINE = re.compile(r"^[ \t]*>.*$", re.MULTILINE)
_DIGITS_AND_SPACE = re.compile(r"[\d\s]+")


def normalise_new_text(text: str) -> str:
    """New text as the circuit breaker compares it: lines quoted with ``>`` left out,
    digits (dates, case numbers, references) and all white space removed, case folded."""
    return _DIGITS_AND_SPACE.sub("", _QUOTED_LINE.sub("", text)).casefold()


def keyed_hash(secret: bytes, kind: str, text: str) -> str:
    """32 hex digits of BLAKE2b keyed with a key derived from the signing secret."""
    key = hashlib.sha256(b"mailroom content key\0" + secret).digest()
    data = f"{kind}\0{text}".encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, key=key, digest_size=16).hexdigest()


def acknowledgement_mail(
    settings: Settings, hours: OpeningHours, session: Session, ticket: Ticket, message: Message,
    keys: ContentKeys | None = None, delay: timedelta = timedelta(0), *, now: datetime,
) -> Mail | None:
    """The requester's receipt, saying whether the helpline is open at ``now``."""
    context = {
        "helpline_name": settings.helpline_name, "reference": ticket.reference,
        "subject": ticket.subject, "is_open": hours.is_open(now),
        "next_opening": hours.next_opening(now), "hours_text": hours.describe(),
        "signposting": signposting_context(settings, ticket),
    }
    return requester_mail(settings, session, ticket, OutboxKind.ACKNOWLEDGEMENT,
                          "requester/acknowledgement", context, answering=message, keys=keys,
                          send_after=now + delay)


def has_signposting(renderer: Renderer, category: str) -> bool:
    """Whether the category has resources to send the requester (a template)."""
    return renderer.exists(f"requester/signposting/{category}")


def signposting_mail(
    settings: Settings, renderer: Renderer, platforms: Platforms, session: Session,
    ticket: Ticket, category: str, *, answering: Message | None,
) -> Mail | None:
    """The category's resources for the requester, when there is a template for it."""
    if not has_signposting(renderer, category):
        return None
    context = {"reference": ticket.reference, "helpline_name": settings.helpline_name,
               "platforms": ticket_platform_names(platforms, ticket),
               "signposting": signposting_context(settings, ticket)}
    return requester_mail(settings, session, ticket, OutboxKind.SIGNPOSTING,
                          f"requester/signposting/{category}", context, answering=answering)


def signposting_context(settings: Settings, ticket: Ticket) -> dict[str, Any]:
    """The numbers and services of the case's country (the default set's when it has
    none, or none configured any more), for the requester's mail."""
    return settings.signposting.for_country(ticket.country).as_context()


def shown_country(settings: Settings, ticket: Ticket) -> str | None:
    """The case's country for the practitioners' summary line, when the helpline has
    numbers and services for more than one (a case without one has the default's)."""
    signposting = settings.signposting
    if len(signposting.known_countries) < 2:
        return None
    return ticket.country or signposting.default_country


def requester_mail(
    settings: Settings, session: Session, ticket: Ticket, kind: OutboxKind, template: str,
    context: dict[str, Any], *, answering: Message | None, auto: bool = True,
    cc: tuple[Address, ...] = (), record_text: str | None = None,
    keys: ContentKeys | None = None, send_after: datetime | None = None,
) -> Mail | None:
    """A mail to the requester on the case thread, with the signed requester Reply-To;
    None when it has nobody to go to. ``keys``: what the mail acknowledged said
    (acknowledgements only)."""
    if not ticket.requester or not is_writable_address(ticket.requester):
        log.warning("ticket %s: no mail to requester %r (no usable address)",
                    ticket.reference, ticket.requester)
        return None
    to: tuple[Address, ...] = (Address(ticket.requester, ticket.requester_name or ""),)
    if requester_failing(ticket):
        to = ()  # their mail bounced (mailroom.cases.deliveries): the Cc only, if any
        if not cc:
            log.info("ticket %s: no %s queued (the requester's mail bounces)",
                     ticket.reference, kind)
            return None
    answering = answering or last_message_from(session, ticket, ticket.requester)
    in_reply_to, refs = thread_ids(answering) if answering else (None, ())
    return Mail(Draft(
        kind=kind, template=template, context=context, to=to, cc=cc,
        subject=ticket_subject(settings, ticket, f"Re: {ticket.subject}"), ticket_id=ticket.id,
        in_reply_to=in_reply_to, references=refs,
        reply_to=reply_address(settings, ticket.id, TokenRole.REQUESTER),
        auto_submitted="auto-replied" if auto else None, record_text=record_text,
        subject_key=keys.subject if keys else None, body_key=keys.body if keys else None,
        send_after=send_after,
    ))


def requester_failing(ticket: Ticket) -> bool:
    """Whether mail of the case to its requester bounced, and nobody lifted that since."""
    person = participants.find(ticket, ticket.requester or "")
    return person is not None and person.failing_since is not None


def notify_practitioners(
    app: App, session: Session, ticket: Ticket, message: Message, *, new_case: bool,
    audience: Audience, listed: set[str] | None = None,
) -> Mail | None:
    """The practitioners' notification of the message; None when nobody is to be told.
    ``listed``: the message's files on the hash blocklist when the caller asked
    already (see :func:`~mailroom.cases.safeguarding.outgoing_attachments`)."""
    to = practitioner_recipients(app.settings, session, ticket.id)
    if not to:
        return None
    attachments, withheld, reason = outgoing_attachments(app.settings, app.blobs, ticket, message,
                                                         clock=app.clock, listed=listed)
    context = {**audience_context(ticket, audience),
        "reference": ticket.reference, "subject": message.subject,
        "sender": _display(message), "category": ticket.category, "role": ticket.role,
        "priority": ticket.priority, "country": shown_country(app.settings, ticket),
        "platforms": ticket_platform_names(app.platforms, ticket), "sla_due": ticket.sla_due_at,
        "repeats": [{"url": r.url, "account": r.is_account, "references": r.references}
                    for r in repeats_of(session, ticket.id)],
        "text": message.text or "", "withheld_count": withheld, "withheld_reason": reason,
        "attachments": [{"filename": f.filename, "content_type": f.content_type,
                         "size": f.size} for f in attachments],
    }
    in_reply_to, refs = thread_ids(message)
    return Mail(Draft(
        kind=OutboxKind.NOTIFICATION,
        template="practitioner/" + ("new_case" if new_case else "follow_up"),
        context=context, to=to, subject=ticket_subject(app.settings, ticket, message.subject),
        ticket_id=ticket.id, in_reply_to=in_reply_to, references=refs,
        reply_to=practitioner_reply_address(app.settings, ticket.id, to, now=app.now()),
        auto_submitted="auto-generated", attachments=tuple(attachments),
    ))


def audience_context(ticket: Ticket, audience: Audience) -> dict[str, Any]:
    """Who receives answers on the case, who does not, and why practitioners should look."""
    requester = (ticket.requester or "").lower()
    failing = {p.address for p in ticket.participants if p.failing_since is not None}
    everyone = participants.audience(ticket)
    return {
        "new_sender": audience.new_sender, "unverified": audience.unverified,
        "receiving": sorted(everyone - failing, key=lambda a: (a != requester, a)),
        "failing": sorted(failing & everyone),
        "pending": sorted(p.address for p in ticket.participants
                          if p.state == ParticipantState.PENDING),
        "related": [{"reference": t.reference} for t in audience.related],
    }


# --- practitioners' replies that run nothing ------------------------------------------

REFUSALS = {
    "another-practitioner": "the address you replied to was given to another practitioner "
                            "(this happens when a notification is forwarded)",
    "old-link": "the address you replied to was issued before reply addresses became "
                "personal to each practitioner",
    "expired": "the address you replied to has expired (the case has been closed for a while)",
    "automatic-reply": "it is an automatic reply (an out-of-office or vacation notice), and "
                       "automatic replies are never sent on to the requester",
}
# At most one notice per case and practitioner in this time, by reason: an autoresponder
# that answers the notice itself must not start a loop.
REFUSAL_QUIET = {"automatic-reply": timedelta(days=7)}
DEFAULT_QUIET = timedelta(hours=1)


def refuse_practitioner_reply(
    settings: Settings, session: Session, ticket: Ticket, message: Message, reason: str, *,
    now: datetime,
) -> Decisions:
    """Keep the reply on the case, run nothing, and send the practitioner a fresh link
    (at most one an hour per case and practitioner, so no autoresponder can loop)."""
    sender = (message.sender or "").lower()
    message.flags = sorted({*message.flags, f"practitioner-refused:{reason}"})
    refused = Decisions().then(AuditEvent(
        "reply.refused", actor=sender or "unknown", at=now, ticket_id=ticket.id,
        message_pk=message.id, detail={"reason": reason}))
    quiet = REFUSAL_QUIET.get(reason, DEFAULT_QUIET)
    if not sender or recent_notice(session, ticket.id, sender, now - quiet):
        return refused
    to = (Address(sender),)
    in_reply_to, refs = thread_ids(message)
    return refused.then(Mail(Draft(
        kind=OutboxKind.PRACTITIONER_LINK, template="practitioner/reply_refused", context={
            "reference": ticket.reference, "reason": REFUSALS.get(reason, reason),
            "text": message.text or ""},
        to=to, subject=ticket_subject(settings, ticket, f"Re: {ticket.subject}"),
        ticket_id=ticket.id,
        in_reply_to=in_reply_to, references=refs,
        reply_to=practitioner_reply_address(settings, ticket.id, to, now=now),
        auto_submitted="auto-replied")))


def recent_notice(session: Session, ticket_id: int, address: str, since: datetime) -> bool:
    found = session.execute(select(func.count(OutboxItem.id)).where(
        OutboxItem.kind == OutboxKind.PRACTITIONER_LINK, OutboxItem.ticket_id == ticket_id,
        OutboxItem.to_addr == address, OutboxItem.created_at >= since)).scalar()
    return bool(found)


def ticket_platform_names(platforms: Platforms, ticket: Ticket) -> list[str]:
    """Display names of the platforms named by URLs anywhere in the case.

    The ticket keeps their keys as its messages arrive (and a merge joins
    them); a key no longer in ``platforms.toml`` is left out."""
    return [platforms[k].name for k in ticket.platforms or [] if k in platforms]


def last_message_from(session: Session, ticket: Ticket, address: str) -> Message | None:
    return session.query(Message).filter(
        Message.ticket_id == ticket.id, Message.sender == address,
        Message.direction == Direction.IN,
    ).order_by(Message.id.desc()).first()


def _display(message: Message) -> str:
    if message.sender_name:
        return f"{message.sender_name} <{message.sender}>"
    return message.sender or "unknown sender"
