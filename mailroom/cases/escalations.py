"""Escalations to platforms' trust-and-safety teams, chased until they answer (SPEC §7).

An escalation belongs to a ticket and a platform of the directory
(``mailroom/data/platforms.toml``). Its life::

    sent ──human answer──▶ responded ──outcome──▶ resolved
     │  ▲                      ▲
     │  └ follow-up every follow_up_days business days (max_follow_ups times)
     └── still no answer after the last follow-up ──▶ no_response ──late answer──┘

``decide_escalation`` renders ``templates/escalation/<template>.txt.j2`` (the
platform's ``template``, else its key, else ``default``) and decides its mail to the
platform's address, from the helpline address, with Reply-To the signed
escalation address (``helpline+x-e<id>-<mac>@…``). It is *not* marked
``Auto-Submitted``: a platform's ticketing system should file it and send its
automatic acknowledgement, which carries the platform's case number. The
escalation keeps the Message-ID the mail is queued with when the decision is
applied (:class:`mailroom.cases.decisions.Mail`); ``open_escalation`` decides and
applies at once.

Decisions (documented here because the spec leaves them open):

- **Automatic acknowledgements are not answers.** Mail from the platform that
  a program sent (classified automatic, or saying it is "an automated
  message") records the platform's case number and an
  ``escalation.acknowledged`` event, and nothing else: the escalation stays
  ``sent`` and the follow-ups go on, quoting that case number and threaded to
  the acknowledgement. Only mail a person wrote sets ``responded``, stops the
  chase and is passed on to the practitioners, so "time to first answer"
  measures people, not autoresponders.
- **Which escalation an outcome is for**: the one the practitioner's reply
  address names. The notice of a platform's answer (and of no response), and
  the confirmation of an outcome, carry a practitioner's reply address bound
  to that escalation (``helpline+p-e<id>-…``), so ``#outcome`` in a reply to
  it applies to that escalation, whatever else is open on the case. Every
  outcome is confirmed by mail (``practitioner/outcome_recorded``), with the
  same kind of address: replying with another ``#outcome`` corrects it (as
  does ``mailroom escalations outcome ID VALUE``). A reply to the case's own
  address picks (:func:`choose_escalation`) the only unresolved one of the
  named platform, or of the case; else the only one that has answered; else,
  when nothing is unresolved, the only one there is (a correction); otherwise
  nothing, and the practitioner is told which escalations there are: the
  latest is never guessed. ``no_response`` escalations can still get an
  outcome (the practitioner may learn it another way).
- **Privacy**: the mail describes the reporter only by role (``ticket.role``);
  it never carries the requester's name, address, subject line or Message-ID
  (the escalation starts a new thread), and evidence files go as
  ``evidence-1.png``… so their names cannot identify anyone.
- **Safeguarding**: never an attachment for an illegal-content case
  (:func:`mailroom.cases.safeguarding.is_illegal_case`); otherwise URLs only, unless
  ``evidence=True``: then the requester's attached files that
  :func:`~mailroom.cases.safeguarding.outgoing_attachments` allows (inline parts,
  such as signature logos that would name the school, stay behind).
- A second escalation to the same platform is refused while a pending one
  (``sent``/``responded``) already covers all of its URLs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from mailroom.addresses import ReplyToken, TokenKind, TokenRole
from mailroom.app import App, Clock
from mailroom.cases.decisions import Decisions, Mail, apply_decisions
from mailroom.cases.incoming import Facts, Incoming
from mailroom.cases.repeats import Reported, repeated_reports
from mailroom.cases.replies import (
    practitioner_reply_address,
    reply_address,
    thread_ids,
    ticket_subject,
)
from mailroom.cases.safeguarding import flag_listed_files, is_illegal_case, outgoing_attachments
from mailroom.cases.tickets import record_event, set_status
from mailroom.errors import MailroomError
from mailroom.intake.classify import Classification, ClassificationKind
from mailroom.intake.threads import named_ids
from mailroom.intake.urls import host_of, platform_for_url
from mailroom.mailtypes import Address, StoredFile
from mailroom.outbox.queue import Draft, practitioner_recipients, queue_mail
from mailroom.outbox.render import Renderer
from mailroom.platforms import Platform, Platforms
from mailroom.settings import Settings
from mailroom.store.blobs import BlobStore
from mailroom.store.db import is_postgres, unavailable_as_store_error
from mailroom.store.hashes import listed_rows
from mailroom.store.models import Escalation, Event, Message, Ticket
from mailroom.store.repository import live_ticket
from mailroom.vocabulary import (
    SET_ASIDE,
    SYSTEM_ACTOR,
    Direction,
    EscalationOutcome,
    EscalationStatus,
    OutboxKind,
    Speaker,
    TicketStatus,
)

__all__ = [
    "Opened",
    "Outcome",
    "choose_escalation",
    "decide_escalation",
    "decide_outcome",
    "escalation_for_message",
    "escalation_of_token",
    "escalation_view",
    "evidence_count",
    "find_platform_ref",
    "follow_up_due",
    "handle_platform_reply",
    "is_acknowledgement",
    "open_escalation",
    "outcome_target",
    "record_outcome",
]

log = logging.getLogger("mailroom.cases.escalations")

# Waiting for the platform or for the outcome.
PENDING = (EscalationStatus.SENT, EscalationStatus.RESPONDED)
UNRESOLVED = (*PENDING, EscalationStatus.NO_RESPONSE)
# How the mail names the reporter (``reported to us by a …``) for the configured roles
# that are not nouns for a person; other roles are written as they are ("teacher").
REPORTER_WORDS = {
    "school_staff": "member of school staff", "district_staff": "member of school district staff",
    "police": "police officer", "health": "health professional",
}
FOLLOW_UP_CASE_KEYS = ("helpline_name", "platform", "reference", "category", "urls")
MAX_REFS = 100

_AUTOMATED_TEXT = re.compile(
    r"\bthis is an? automated (?:message|response|reply|e-?mail|notification)\b"
    r"|\b(?:this|the) (?:message|e-?mail|reply|response) (?:was|has been|is) "
    r"(?:sent|generated) automatically\b"
    r"|\bautomatically generated (?:message|response|reply|e-?mail)\b",
    re.IGNORECASE,
)
_SUFFIX = re.compile(r"\.[a-z0-9]{1,10}")


# --- opening --------------------------------------------------------------------------


def open_escalation(
    app: App, session: Session, ticket: Ticket, platform_key: str, *,
    urls: Sequence[str] | None, context: str | None, actor: str,
    message_pk: int | None = None, evidence: bool = False, evidence_names: Sequence[str] = (),
) -> Escalation:
    """Open the escalation and queue its mail at once (:func:`decide_escalation`);
    return the ``sent`` row."""
    opened = decide_escalation(app, session, ticket, platform_key, urls=urls, context=context,
                               actor=actor, message_pk=message_pk, evidence=evidence,
                               evidence_names=evidence_names)
    apply_decisions(app.settings, app.renderer, session, opened.decisions, clock=app.clock)
    return opened.escalation


@dataclass(frozen=True)
class Opened:
    """An escalation opened, and its mail to queue (which gives it its Message-ID)."""

    escalation: Escalation
    decisions: Decisions


def decide_escalation(
    app: App, session: Session, ticket: Ticket, platform_key: str, *,
    urls: Sequence[str] | None, context: str | None, actor: str,
    message_pk: int | None = None, evidence: bool = False, evidence_names: Sequence[str] = (),
) -> Opened:
    """Store the ``sent`` escalation of ``ticket`` to a platform, and decide its mail.

    With ``evidence``, the case's files that may leave go too (only those named in
    ``evidence_names``, when any are). Raises MailroomError (one line) for an unknown
    platform, a URL of another platform, no URL at all, a duplicate of a pending
    escalation, or a named file that is not one of the case's files that may leave;
    then nothing is stored or decided.
    """
    platform = known_platform(app.platforms, platform_key)
    chosen = check_urls(app.platforms, platform, urls) if urls else case_urls(
        app.platforms, session, ticket, platform.key)
    if not chosen:
        raise MailroomError(f"no {platform.name} URLs on case {ticket.reference}: "
                            "give the URLs to report")
    refuse_duplicate(ticket, platform, chosen)
    files, withheld = evidence_files(app.settings, app.blobs, session, ticket, evidence_names,
                                     clock=app.clock) if evidence else ([], 0)
    now = app.now()
    escalation = Escalation(
        ticket=ticket, platform=platform.key, status=EscalationStatus.SENT, urls=chosen,
        context=(context or "").strip() or None, opened_at=now, follow_ups=0,
        next_follow_up_at=app.hours.add_business_days(now, platform.follow_up_days))
    session.add(escalation)
    session.flush()
    reported = repeated_reports(session, chosen)
    mail = Mail(escalation_draft(app.settings, app.renderer, ticket, escalation, platform, files,
                                 reported), opens=escalation)
    ticket.updated_at = now
    record_event(session, action="escalation.opened", actor=actor, at=now, ticket_id=ticket.id,
                 message_pk=message_pk, escalation_id=escalation.id, platform=platform.key,
                 urls=chosen, attachments=len(files), withheld=withheld,
                 next_follow_up_at=_iso(escalation.next_follow_up_at))
    log.info("escalation %s of %s to %s opened", escalation.id, ticket.reference, platform.key)
    return Opened(escalation, Decisions().then(mail))


def known_platform(platforms: Mapping[str, Platform], key: str) -> Platform:
    """The platform of the directory with this key; MailroomError naming the known ones."""
    platform = platforms.get(key.strip().lower())
    if platform is None:
        raise MailroomError(f"unknown platform {key!r} (known: {', '.join(sorted(platforms))})")
    return platform


def check_urls(
    platforms: Mapping[str, Platform], platform: Platform, urls: Iterable[str]
) -> list[str]:
    """The given URLs cleaned (``https://`` added to bare ones), without duplicates.

    A URL of *another* platform of the directory is refused: sending an
    Instagram link to TikTok is a slip that shares a case for nothing.
    Links on no known platform (a shortener, a news page) are allowed.
    """
    clean = []
    for raw in urls:
        url = normal_url(raw)
        owner = platform_for_url(url, platforms)
        if owner is not None and owner != platform.key:
            raise MailroomError(f"{url} is on {platforms[owner].name}, not {platform.name}: "
                                f"escalate it to {owner}")
        clean.append(url)
    return list(dict.fromkeys(clean))


def normal_url(raw: str) -> str:
    """``<vm.tiktok.com/x>`` → ``https://vm.tiktok.com/x``; MailroomError when not a web URL."""
    url = raw.strip().strip("<>").strip()
    if not re.match(r"https?://", url, re.IGNORECASE):
        if "://" in url:
            raise MailroomError(f"not a web (http or https) URL: {raw!r}")
        url = "https://" + url
    if any(ch.isspace() for ch in url) or "." not in host_of(url):
        raise MailroomError(f"not a URL: {raw!r}")
    return url


def urls_for_platform(
    urls: Iterable[str], key: str, platforms: Mapping[str, Platform]
) -> list[str]:
    """The URLs that belong to platform ``key``, in order, without duplicates."""
    return list(dict.fromkeys(u for u in urls if platform_for_url(u, platforms) == key))


def case_urls(platforms: Platforms, session: Session, ticket: Ticket, key: str) -> list[str]:
    """URLs of platform ``key`` that the requester's messages on the case reported."""
    rows = session.execute(
        select(Message.urls).where(
            Message.ticket_id == ticket.id, Message.direction == Direction.IN,
            Message.kind == Speaker.REQUESTER).order_by(Message.id)
    ).scalars()
    return urls_for_platform((url for urls in rows for url in urls or []), key, platforms)


def refuse_duplicate(ticket: Ticket, platform: Platform, urls: Sequence[str]) -> None:
    for other in ticket.escalations:
        if (other.platform == platform.key and other.status in PENDING
                and set(urls) <= set(other.urls or [])):
            raise MailroomError(
                f"case {ticket.reference} is already escalated to {platform.name} with these "
                f"URLs (escalation {other.id}, {other.status})")


def evidence_files(
    settings: Settings, blobs: BlobStore, session: Session, ticket: Ticket,
    names: Sequence[str] = (), *, clock: Clock,
) -> tuple[list[StoredFile], int]:
    """The requester's files that may go to a platform, renamed; and how many stayed behind.

    A listed file on the case (it may have come with a case merged into this one)
    flags the case illegal first (:func:`~mailroom.cases.safeguarding.flag_listed_files`):
    then nothing goes. With ``names`` (the files'
    names as the requester sent them, any case), only those, and each must be one
    that may go: MailroomError naming the files that may, otherwise."""
    messages = list(session.execute(
        select(Message).where(Message.ticket_id == ticket.id, Message.direction == Direction.IN,
                              Message.kind == Speaker.REQUESTER)
        .options(selectinload(Message.attachments)).order_by(Message.id)).scalars())
    listed = listed_rows(session, [row for m in messages for row in m.attachments])
    if listed:
        flag_listed_files(settings, blobs, session, ticket, listed, clock=clock)
    if is_illegal_case(ticket):
        pick_files([], names)  # a file named is refused, not silently left out
        return [], sum(len(m.attachments) for m in messages)
    files: dict[str, StoredFile] = {}  # by content: a file sent twice goes once
    withheld = 0
    for message in messages:
        allowed, held, _ = outgoing_attachments(settings, blobs, ticket, message, clock=clock)
        inline = {row.sha256 for row in message.attachments if row.inline}
        for file in allowed:
            if file.sha256 in inline:
                withheld += 1
            else:
                files.setdefault(file.sha256, file)
        withheld += held
    chosen = pick_files(list(files.values()), names) if names else list(files.values())
    return [replace(file, filename=evidence_name(i, file.filename))
            for i, file in enumerate(chosen, 1)], withheld


def pick_files(files: Sequence[StoredFile], names: Sequence[str]) -> list[StoredFile]:
    """The files named (by their name, any case); MailroomError for a name that is none."""
    by_name = {file.filename.lower(): file for file in files}
    missing = [name for name in names if name.lower() not in by_name]
    if missing:
        may = ", ".join(file.filename for file in files) or "none"
        raise MailroomError(f"{', '.join(missing)}: not a file of the case that may be sent "
                            f"(withheld files never are; files that may: {may})")
    return list({id(by_name[name.lower()]): by_name[name.lower()] for name in names}.values())


def evidence_count(session: Session, escalation: Escalation) -> int:
    """How many files went with the escalation mail."""
    detail = session.execute(select(Event.detail).where(
        Event.escalation_id == escalation.id, Event.action == "escalation.opened")).scalar()
    return int((detail or {}).get("attachments", 0))


def evidence_name(number: int, filename: str) -> str:
    """``Jo Smith's screenshot.PNG`` → ``evidence-1.png``: the name cannot identify anyone."""
    suffix = PurePosixPath(filename.lower()).suffix
    return f"evidence-{number}{suffix if _SUFFIX.fullmatch(suffix) else ''}"


# --- the mail to the platform -----------------------------------------------------------


def escalation_draft(
    settings: Settings, renderer: Renderer, ticket: Ticket, escalation: Escalation,
    platform: Platform, files: Sequence[StoredFile], reported: Sequence[Reported] = (),
) -> Draft:
    """The mail to the platform. ``reported``: how many professionals reported these
    accounts and since when (counts and dates only: nothing of other cases)."""
    context = {**escalation_context(settings.helpline_name, ticket, escalation, platform),
               "attachments": [file.filename for file in files],
               "reported": [{"url": r.url, "professionals": r.professionals, "since": r.since}
                            for r in reported]}
    return Draft(
        kind=OutboxKind.ESCALATION, template=escalation_template(renderer, platform),
        context=context,
        to=(platform_address(platform),),
        subject=escalation_subject(settings, ticket, platform),
        ticket_id=ticket.id, escalation_id=escalation.id,
        reply_to=platform_reply_address(settings, escalation), auto_submitted=None,
        attachments=tuple(files),
    )


def escalation_context(
    helpline_name: str, ticket: Ticket, escalation: Escalation, platform: Platform
) -> dict[str, Any]:
    """What the escalation templates may say: the case, never the person who reported it."""
    return {
        "helpline_name": helpline_name, "platform": platform.name,
        "reference": ticket.reference, "category": ticket.category,
        "urls": list(escalation.urls or []), "context": escalation.context or "",
        "reporter_role": reporter_words(ticket.role), "organisation_type": None,
        "reported": [],  # filled by escalation_draft: counts of repeat reports
    }


def reporter_words(role: str | None) -> str | None:
    """``police`` → ``police officer``; no role or ``other`` → None ("a professional")."""
    if not role or role == "other":
        return None
    return REPORTER_WORDS.get(role, role)


def escalation_template(renderer: Renderer, platform: Platform) -> str:
    """``escalation/<template>``, else ``escalation/<key>``, else ``escalation/default``."""
    for name in (platform.template, platform.key):
        if name != "follow_up" and renderer.exists(f"escalation/{name}"):
            return f"escalation/{name}"
    return "escalation/default"


def escalation_subject(settings: Settings, ticket: Ticket, platform: Platform) -> str:
    """``[Helpline #12] Escalation HL-000012: impersonation on TikTok`` (no requester words)."""
    what = (ticket.category or "content report").replace("_", " ")
    return ticket_subject(settings, ticket,
                          f"Escalation {ticket.reference}: {what} on {platform.name}")


def platform_address(platform: Platform) -> Address:
    return Address(platform.address, f"{platform.name} Trust and Safety")


def platform_reply_address(settings: Settings, escalation: Escalation) -> Address:
    """The escalation's signed Reply-To (``helpline+x-e<id>-<mac>@…``): the platform's."""
    return reply_address(settings, escalation.id, TokenRole.PLATFORM, kind=TokenKind.ESCALATION)


# --- the platform's answer -----------------------------------------------------------------


def escalation_for_message(session: Session, facts: Facts) -> Escalation | None:
    """The escalation an inbound message answers, or None.

    A valid signed escalation address (kind ``e``, role ``x``) names it; any
    other valid token means the message is not the platform's. Without a
    token, the nearest In-Reply-To/References id of a message that belongs to
    an escalation (our escalation or follow-up, or the platform's earlier mail)
    decides. Practitioner notices never carry an escalation id, so replies to
    them never count.
    """
    token = facts.speaking.token
    if token is not None and token.valid:
        if token.kind == TokenKind.ESCALATION and token.role == TokenRole.PLATFORM:
            return session.get(Escalation, token.ident)
        return None
    parsed = facts.parsed
    ordered = named_ids(parsed.message_id, parsed.in_reply_to, parsed.references)[:MAX_REFS]
    if not ordered:
        return None
    links = facts.links
    if links is not None and links.named.issuperset(ordered):
        found = links.escalations  # read with the message's other links
    else:
        rows = session.execute(select(Message.message_id, Message.escalation_id).where(
            Message.message_id.in_(ordered), Message.escalation_id.is_not(None)))
        found = {message_id: escalation_id for message_id, escalation_id in rows
                 if message_id and escalation_id}
    for ident in ordered:
        if ident in found:
            return session.get(Escalation, found[ident])
    return None


def escalation_of_token(session: Session, token: ReplyToken | None) -> Escalation | None:
    """The escalation a valid signed escalation address names (the platform's, or a
    practitioner's bound to it), or None."""
    if token is None or not token.valid or token.kind != TokenKind.ESCALATION:
        return None
    return session.get(Escalation, token.ident)


def handle_platform_reply(app: App, session: Session, incoming: Incoming) -> Decisions:
    """Act on a stored message from a platform: its case number, then answer or
    acknowledgement; an answer's notice to the practitioners is the mail decided.

    Idempotent: a message already acted on is left alone, so calling this
    twice for one message does nothing the second time.
    """
    if incoming.classification.kind == ClassificationKind.LOOP:
        return Decisions()
    escalation, message = escalation_for_message(session, incoming.facts), incoming.message
    if escalation is None or message is None:
        log.info("platform mail %s matches no escalation", incoming.parsed.message_id)
        return Decisions()
    if already_handled(session, escalation, message):
        return Decisions()
    message.escalation_id = escalation.id
    platform = app.platforms.get(escalation.platform)
    ticket = _ticket_of(session, escalation)
    texts = (incoming.parsed.subject, message.text or incoming.parsed.text)
    ref = find_platform_ref(platform, texts, own=ticket.reference) if platform else None
    escalation.platform_ref = escalation.platform_ref or ref
    if is_acknowledgement(incoming.classification, message.text or ""):
        _record(session, escalation, message, "escalation.acknowledged", now=app.now(),
                platform_ref=ref)
        return Decisions()
    record_answer(session, escalation, message, ref, now=app.now())
    return Decisions().then(notify_answer(app, session, ticket, escalation, message))


def already_handled(session: Session, escalation: Escalation, message: Message) -> bool:
    return session.execute(select(Event.id).where(
        Event.escalation_id == escalation.id, Event.message_pk == message.id,
        Event.action.like("escalation.%")).limit(1)).first() is not None


def is_acknowledgement(classification: Classification, text: str) -> bool:
    """A program's receipt (automatic headers, or text saying so), not a person's answer."""
    return classification.is_automatic or bool(_AUTOMATED_TEXT.search(text))


def find_platform_ref(platform: Platform, texts: Iterable[str], *, own: str | None) -> str | None:
    """The platform's case number in the first of ``texts`` that has one.

    Uses the platform's ``case_ref_pattern`` (group ``ref``, else group 1,
    else the match) and skips candidates that cannot be a case number: no
    digit in them ("report *received*") or our own reference quoted back.
    """
    if not platform.case_ref_pattern:
        return None
    pattern = re.compile(platform.case_ref_pattern)
    for text in texts:
        for match in pattern.finditer(text or ""):
            ref = _ref_group(match)
            if ref and any(ch.isdigit() for ch in ref) and not (own and ref.upper() in own):
                return ref
    return None


def _ref_group(match: re.Match[str]) -> str | None:
    if "ref" in match.re.groupindex:
        return match.group("ref")
    return match.group(1) if match.re.groups else match.group(0)


def record_answer(
    session: Session, escalation: Escalation, message: Message, ref: str | None, *,
    now: datetime,
) -> None:
    """A person answered (at ``now``): ``responded`` (first answer), the chase stops, a
    waiting case opens."""
    if escalation.status in (EscalationStatus.SENT, EscalationStatus.NO_RESPONSE):
        before = escalation.status
        escalation.status, escalation.next_follow_up_at = EscalationStatus.RESPONDED, None
        escalation.responded_at = escalation.responded_at or now
        _record(session, escalation, message, "escalation.responded", now=now, before=before,
                platform_ref=ref)
    else:
        _record(session, escalation, message, "escalation.reply", now=now,
                status=escalation.status, platform_ref=ref)
    ticket = _ticket_of(session, escalation)
    if ticket.status == TicketStatus.WAITING:
        set_status(session, ticket, TicketStatus.OPEN, actor=message.sender or Speaker.PLATFORM,
                   at=now, message_pk=message.id)


def notify_answer(
    app: App, session: Session, ticket: Ticket, escalation: Escalation, message: Message
) -> Mail | None:
    attachments, withheld, reason = outgoing_attachments(app.settings, app.blobs, ticket, message,
                                                         clock=app.clock)
    platform_name = _platform_name(app.platforms, escalation)
    context = {
        **_notice_context(app.platforms, ticket, escalation), "sender": message.sender or "unknown",
        "subject": message.subject, "text": message.text or "", "withheld_count": withheld,
        "withheld_reason": reason, "attachments": [
            {"filename": f.filename, "content_type": f.content_type, "size": f.size}
            for f in attachments],
    }
    return notice_mail(app.settings, session, ticket, "practitioner/escalation_response", context,
                       subject=f"{platform_name} answered: {ticket.subject}", now=app.now(),
                       attachments=tuple(attachments), escalation=escalation)


# --- outcomes ---------------------------------------------------------------------------


def record_outcome(
    app: App, session: Session, escalation: Escalation, outcome: str, *, actor: str,
) -> bool:
    """Close (or correct) the escalation with ``outcome`` and queue its confirmation at
    once (:func:`decide_outcome`); False when it already had exactly that."""
    decided = decide_outcome(app.settings, app.platforms, session, escalation, outcome,
                             actor=actor, now=app.now())
    apply_decisions(app.settings, app.renderer, session, decided.decisions, clock=app.clock)
    return decided.changed


@dataclass(frozen=True)
class Outcome:
    """Whether an outcome changed the escalation, and its confirmation to queue."""

    changed: bool
    decisions: Decisions


def decide_outcome(
    settings: Settings, platforms: Platforms, session: Session, escalation: Escalation,
    outcome: str, *, actor: str, now: datetime, message_pk: int | None = None,
    confirm_to: Sequence[Address] = (), answering: Message | None = None,
) -> Outcome:
    """Close (or correct) the escalation with ``outcome`` at ``now``, and decide its
    confirmation by mail (``changed`` False when it already had exactly that).

    The confirmation goes to ``confirm_to`` (the practitioner whose reply set it,
    threaded to ``answering``), else to the case's practitioners (an outcome set from
    the command line), with a reply address bound to the escalation, to correct it.
    """
    if outcome not in tuple(EscalationOutcome):
        raise MailroomError(
            f"unknown outcome {outcome!r} (one of: {', '.join(EscalationOutcome)})")
    before = {"status": escalation.status, "outcome": escalation.outcome}
    changed = not (escalation.status == EscalationStatus.RESOLVED
                   and escalation.outcome == outcome)
    if changed:
        escalation.status, escalation.outcome = EscalationStatus.RESOLVED, outcome
        escalation.next_follow_up_at = None
        escalation.resolved_at = escalation.resolved_at or now
        record_event(session, action="escalation.outcome", actor=actor, at=now,
                     ticket_id=escalation.ticket_id, message_pk=message_pk,
                     escalation_id=escalation.id, platform=escalation.platform,
                     outcome=outcome, before=before)
    ticket = _ticket_of(session, escalation)
    context = {**_notice_context(platforms, ticket, escalation), "outcome": outcome,
               "before": before["outcome"] if changed else outcome, "actor": actor,
               "outcomes": list(EscalationOutcome)}
    confirmation = notice_mail(
        settings, session, ticket, "practitioner/outcome_recorded", context,
        subject=f"Outcome {outcome} recorded for the escalation to "
                f"{_platform_name(platforms, escalation)}: {ticket.subject}", now=now,
        escalation=escalation, to=confirm_to, kind=OutboxKind.OUTCOME, answering=answering)
    return Outcome(changed, Decisions().then(confirmation))


def outcome_target(
    session: Session, ticket: Ticket, platform: str | None = None, *,
    bound: int | None = None,
) -> Escalation:
    """The escalation a practitioner's ``#outcome`` is about: ``bound`` (the escalation
    the reply address names) when it is of this case and of the platform named, if
    any; else :func:`choose_escalation` among the case's."""
    if bound is not None:
        escalation = session.get(Escalation, bound)
        if (escalation is not None and live_ticket(session, escalation.ticket_id) == ticket.id
                and (not platform or escalation.platform == platform.strip().lower())):
            return escalation
    escalations = session.execute(
        select(Escalation).where(Escalation.ticket_id == ticket.id).order_by(Escalation.id)
    ).scalars()
    return choose_escalation(list(escalations), platform, reference=ticket.reference or "")


def choose_escalation(
    escalations: Sequence[Escalation], platform: str | None, *, reference: str
) -> Escalation:
    """Pick the escalation an outcome is for (module docstring); MailroomError when unclear."""
    key = platform.strip().lower() if platform else None
    candidates = [e for e in escalations if key in (None, e.platform)]
    if not candidates:
        raise MailroomError(f"case {reference} has no escalation{f' to {key}' if key else ''}")
    unresolved = [e for e in candidates if e.status in UNRESOLVED]
    answered = [e for e in unresolved if e.status == EscalationStatus.RESPONDED]
    for chosen in (unresolved, answered, [] if unresolved else candidates):
        if len(chosen) == 1:
            return chosen[0]
    among = unresolved or candidates
    keys = sorted({e.platform for e in among})
    which = ", ".join(f"{e.id} ({e.platform}, {e.status})" for e in among)
    hint = f"name the platform (#outcome removed {keys[0]}), or " if len(keys) > 1 else ""
    raise MailroomError(f"case {reference} has {'open ' if unresolved else ''}escalations "
                        f"{which}: {hint}reply to the notice of the one you mean (or use "
                        "`mailroom escalations outcome ID VALUE`)")


# --- chasing ----------------------------------------------------------------------------


def follow_up_due(app: App) -> dict[str, int]:
    """Chase every ``sent`` escalation whose follow-up is due; counts by step taken.

    One escalation per transaction, claimed with ``FOR UPDATE SKIP LOCKED`` on
    PostgreSQL (SQLite serialises writers with ``BEGIN IMMEDIATE``), so two
    processes never chase the same one; the step moves ``next_follow_up_at``
    on or clears it, so running the job again does nothing until the next is due.
    """
    counts: dict[str, int] = {}
    last_id = 0
    while True:
        with unavailable_as_store_error(), app.sessions.begin() as session:
            escalation = claim_due(session, app.now(), after=last_id)
            if escalation is None:
                return counts
            last_id = escalation.id
            step = chase(app, session, escalation)
        counts[step] = counts.get(step, 0) + 1


def claim_due(session: Session, now: datetime, *, after: int) -> Escalation | None:
    stmt = select(Escalation).where(
        Escalation.status == EscalationStatus.SENT, Escalation.next_follow_up_at <= now,
        Escalation.id > after,
    ).order_by(Escalation.id).limit(1)
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    return session.execute(stmt).scalar()


CHASE_STOPPED = "stopped"


def chase(app: App, session: Session, escalation: Escalation) -> str:
    """One step for a due escalation: ``follow_up`` or ``no_response``; ``stopped`` when its
    case was closed or set aside meanwhile (unless ``sla.chase_closed_cases``): the
    escalation stays open for the platform's answer, but is not chased any more."""
    platform = app.platforms.get(escalation.platform)
    ticket = _ticket_of(session, escalation)
    if ticket.status in (TicketStatus.CLOSED, *SET_ASIDE) and \
            not app.settings.sla_chase_closed_cases:
        escalation.next_follow_up_at = None
        _record(session, escalation, None, "escalation.chase_stopped", now=app.now(),
                reason=f"the case is {ticket.status}")
        return CHASE_STOPPED
    if platform is not None and escalation.follow_ups < platform.max_follow_ups:
        send_follow_up(app, session, ticket, escalation, platform)
        return OutboxKind.FOLLOW_UP
    reason = None if platform is not None else "the platform is no longer in the directory"
    give_up(app, session, ticket, escalation, reason)
    return EscalationStatus.NO_RESPONSE


def send_follow_up(
    app: App, session: Session, ticket: Ticket, escalation: Escalation, platform: Platform
) -> None:
    now, number = app.now(), escalation.follow_ups + 1
    parent = _latest_platform_message(session, escalation) or escalation.message_id
    refs = tuple(dict.fromkeys(r for r in (escalation.message_id, parent) if r))
    case = escalation_context(app.settings.helpline_name, ticket, escalation, platform)
    context = {key: case[key] for key in FOLLOW_UP_CASE_KEYS} | {
        "opened_at": escalation.opened_at, "follow_up_number": number,
        "platform_ref": escalation.platform_ref,
    }
    subject = follow_up_subject(app.settings, session, ticket, escalation, platform)
    queue_mail(app.settings, app.renderer, session, Draft(
        kind=OutboxKind.FOLLOW_UP, template="escalation/follow_up", context=context,
        to=(platform_address(platform),), subject=subject, ticket_id=ticket.id,
        escalation_id=escalation.id, in_reply_to=parent, references=refs,
        reply_to=platform_reply_address(app.settings, escalation), auto_submitted=None),
        now=now)
    escalation.follow_ups = number
    escalation.next_follow_up_at = app.hours.add_business_days(now, platform.follow_up_days)
    _record(session, escalation, None, "escalation.follow_up", now=now, number=number,
            next_follow_up_at=_iso(escalation.next_follow_up_at))


def follow_up_subject(
    settings: Settings, session: Session, ticket: Ticket, escalation: Escalation, platform: Platform
) -> str:
    """``Re:`` the escalation's subject, with the platform's case number once known."""
    original = session.execute(select(Message.subject).where(
        Message.message_id == escalation.message_id)).scalar()
    subject = original or escalation_subject(settings, ticket, platform)
    ref = escalation.platform_ref
    if ref and ref not in subject:
        subject = f"{subject} (your case {ref})"
    return ticket_subject(settings, ticket, f"Re: {subject}")


def give_up(
    app: App, session: Session, ticket: Ticket, escalation: Escalation, reason: str | None
) -> None:
    escalation.status, escalation.next_follow_up_at = EscalationStatus.NO_RESPONSE, None
    _record(session, escalation, None, "escalation.no_response", now=app.now(),
            follow_ups=escalation.follow_ups, reason=reason)
    context = {**_notice_context(app.platforms, ticket, escalation),
               "follow_ups": escalation.follow_ups, "reason": reason}
    notice = notice_mail(
        app.settings, session, ticket, "practitioner/escalation_no_response", context,
        subject=f"No answer from {_platform_name(app.platforms, escalation)}: {ticket.subject}",
        now=app.now(), escalation=escalation)
    apply_decisions(app.settings, app.renderer, session, Decisions().then(notice),
                    clock=app.clock)


# --- notices to practitioners -------------------------------------------------------------


def notice_mail(
    settings: Settings, session: Session, ticket: Ticket, template: str, context: dict[str, Any],
    *, subject: str, now: datetime, attachments: tuple[StoredFile, ...] = (),
    escalation: Escalation | None = None, to: Sequence[Address] = (),
    kind: OutboxKind = OutboxKind.NOTIFICATION, answering: Message | None = None,
) -> Mail | None:
    """A notice to the case's practitioners (or to ``to``), on the case thread (or
    answering a practitioner's reply), Reply-To the case, or bound to ``escalation``;
    None when there is nobody to tell.

    It carries no escalation id, so a practitioner's reply to it is never taken for
    the platform's: the reply address bound to an escalation is a practitioner's
    (``p-e<id>``), which only says which escalation the reply is about. ``now``: the day
    that address is issued.
    """
    to = tuple(to) or practitioner_recipients(settings, session, ticket.id)
    if not to:
        log.warning("no practitioner to tell about %s (%s)", ticket.reference, template)
        return None
    root = answering or session.execute(select(Message).where(
        Message.ticket_id == ticket.id, Message.direction == Direction.IN).order_by(Message.id)
        .limit(1)).scalar()
    in_reply_to, refs = thread_ids(root) if root else (None, ())
    reply_to = (practitioner_reply_address(settings, escalation.id, to, now=now,
                                           kind=TokenKind.ESCALATION)
                if escalation is not None
                else practitioner_reply_address(settings, ticket.id, to, now=now))
    return Mail(Draft(
        kind=kind, template=template, context=context, to=to,
        subject=ticket_subject(settings, ticket, subject), ticket_id=ticket.id,
        in_reply_to=in_reply_to, references=refs, reply_to=reply_to,
        auto_submitted="auto-replied" if answering else "auto-generated",
        attachments=attachments))


def _notice_context(platforms: Platforms, ticket: Ticket,
                    escalation: Escalation) -> dict[str, Any]:
    return {
        "reference": ticket.reference, "escalation_id": escalation.id,
        "platform": _platform_name(platforms, escalation),
        "status": escalation.status, "platform_ref": escalation.platform_ref,
        "opened_at": escalation.opened_at, "urls": list(escalation.urls or []),
    }


# --- views and helpers ------------------------------------------------------------------


def escalation_view(escalation: Escalation) -> dict[str, Any]:
    """One escalation as plain data for ``--json``."""
    return {
        "id": escalation.id, "ticket_id": escalation.ticket_id,
        "platform": escalation.platform, "status": escalation.status,
        "platform_ref": escalation.platform_ref, "urls": list(escalation.urls or []),
        "context": escalation.context, "opened_at": _iso(escalation.opened_at),
        "responded_at": _iso(escalation.responded_at),
        "resolved_at": _iso(escalation.resolved_at), "follow_ups": escalation.follow_ups,
        "next_follow_up_at": _iso(escalation.next_follow_up_at), "outcome": escalation.outcome,
        "message_id": escalation.message_id,
    }


def _record(
    session: Session, escalation: Escalation, message: Message | None, action: str, *,
    now: datetime, **detail: Any,
) -> None:
    actor = message.sender if message is not None and message.sender else SYSTEM_ACTOR
    record_event(session, action=action, actor=actor, at=now,
                 ticket_id=_ticket_of(session, escalation).id,
                 message_pk=message.id if message is not None else None,
                 escalation_id=escalation.id, platform=escalation.platform, **detail)


def _ticket_of(session: Session, escalation: Escalation) -> Ticket:
    """The escalation's ticket, or the one it was merged into."""
    ticket = session.get(Ticket, live_ticket(session, escalation.ticket_id))
    assert ticket is not None
    return ticket


def _latest_platform_message(session: Session, escalation: Escalation) -> str | None:
    return session.execute(select(Message.message_id).where(
        Message.escalation_id == escalation.id, Message.direction == Direction.IN,
        Message.message_id.is_not(None)).order_by(Message.id.desc()).limit(1)).scalar()


def _platform_name(platforms: Platforms, escalation: Escalation) -> str:
    platform = platforms.get(escalation.platform)
    return platform.name if platform else escalation.platform


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
