"""The durable outbox: queue in the caller's transaction, send from a job.

``queue_mail`` renders the message when it is queued, so its Message-ID,
headers and text are fixed before anything is sent, and records it as an
outgoing ``Message`` on its ticket (threading finds replies to it). The
MIME message is composed when it is sent (:func:`message_to_send`, from the
rendered form in :mod:`~mailroom.outbound.rendered`), and attachments go by
reference to the blob store and are added then: queueing stays cheap however
large the files, and safeguarding is asked again at that moment. The
sender job claims due rows with a lease (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL), sends each through the transport and marks it ``sent`` right
after the relay accepted it. Temporary failures are retried with exponential
backoff; after the last attempt, or on a permanent refusal, the row is
``failed`` and the practitioners are told by email.
"""

from __future__ import annotations

import email
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, func, insert, or_, select, union, update
from sqlalchemy.orm import Session

from mailroom.app import App
from mailroom.errors import StoreUnavailable
from mailroom.mailtypes import Address, StoredFile
from mailroom.outbound.compose import POLICY, add_attachments, clean_header_text, make_message_id
from mailroom.outbound.rendered import compose_rendered, rendered_form, with_note
from mailroom.outbound.transports import PermanentFailure, TransportError
from mailroom.safeguarding import HELD_ILLEGAL, HELD_LISTED, files_held_at_send
from mailroom.store.db import is_postgres, unavailable_as_store_error
from mailroom.store.models import Message, OutboxItem, Ticket

log = logging.getLogger("mailroom.outbox")

LEASE = timedelta(minutes=10)
CLAIM_BATCH = 20
MAX_BACKOFF = timedelta(hours=6)
# Mail about our own failures is never itself reported when it fails.
UNREPORTED_KINDS = frozenset({"outbox_failed"})


@dataclass(frozen=True)
class Draft:
    """An outgoing mail before rendering."""

    kind: str  # acknowledgement, notification, relay, escalation, follow_up, …
    template: str  # e.g. "requester/acknowledgement"
    context: Mapping[str, Any]
    to: tuple[Address, ...]
    subject: str
    cc: tuple[Address, ...] = ()
    ticket_id: int | None = None
    escalation_id: int | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    reply_to: Address | None = None
    auto_submitted: str | None = "auto-replied"
    attachments: tuple[StoredFile, ...] = ()  # attached from the blob store when sent
    send_after: datetime | None = None
    record_text: str | None = None  # what to show on the ticket (default: the text body)
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    # Acknowledgements: what the mail acknowledged said (see recent_acknowledgements).
    subject_key: str | None = None
    body_key: str | None = None


def sender_address(app: App) -> Address:
    return Address(app.settings.helpline_address, app.settings.helpline_name)


def queue_mail(app: App, session: Session, draft: Draft) -> Queued:
    """Render and queue ``draft`` in the caller's transaction (composed when sent)."""
    settings, now = app.settings, app.now()
    message_id = make_message_id(settings.domain)
    text, html = app.renderer.render(draft.template, draft.context)
    subject = clean_header_text(draft.subject)
    rendered = rendered_form(
        from_addr=sender_address(app), to=draft.to, cc=draft.cc, subject=subject,
        text=text, html=html, message_id=message_id, in_reply_to=draft.in_reply_to,
        references=draft.references, reply_to=draft.reply_to,
        auto_submitted=draft.auto_submitted, loop_token=settings.loop_token,
        extra_headers=draft.extra_headers, date=now,
    )
    recipients = [a.addr for a in (*draft.to, *draft.cc)]
    # Written with Core statements built once: the unit of work cost more than the
    # rows (nothing reads these objects back in the caller's session).
    conn = session.connection()
    item_id = conn.execute(_INSERT_OUTBOX, {
        "ticket_id": draft.ticket_id, "escalation_id": draft.escalation_id, "kind": draft.kind,
        "status": "queued", "attempts": 0, "send_after": draft.send_after or now,
        "message_id": message_id, "mail_from": settings.helpline_address,
        "rcpt_to": recipients, "to_addr": recipients[0] if recipients else "",
        "subject": subject, "raw": None, "rendered": rendered,
        "files": [asdict(f) for f in draft.attachments] or None, "created_at": now,
        "subject_key": draft.subject_key, "body_key": draft.body_key,
    }).scalar_one()
    conn.execute(_INSERT_MESSAGE, {
        "ticket_id": draft.ticket_id, "escalation_id": draft.escalation_id, "direction": "out",
        "kind": draft.kind, "sender": settings.helpline_address,
        "sender_name": settings.helpline_name,
        "recipients": {"to": [a.addr for a in draft.to], "cc": [a.addr for a in draft.cc]},
        "message_id": message_id, "in_reply_to": draft.in_reply_to,
        "references": " ".join(draft.references) or None, "conversation": None,
        "subject": subject, "date": now,
        "text": draft.record_text if draft.record_text is not None else text,
        "urls": [], "flags": [], "created_at": now,
    })
    return Queued(id=item_id, message_id=message_id)


@dataclass(frozen=True)
class Queued:
    """What the caller of :func:`queue_mail` may need of the row it wrote."""

    id: int
    message_id: str


_OUTBOX = cast(Table, OutboxItem.__table__)
_INSERT_OUTBOX = insert(_OUTBOX).returning(_OUTBOX.c.id)
_INSERT_MESSAGE = insert(cast(Table, Message.__table__))


def queued_files(item: OutboxItem) -> list[StoredFile]:
    return [StoredFile(**f) for f in item.files or []]


# --- sending ------------------------------------------------------------------------


@dataclass
class Outgoing:
    """What a sender needs of a claimed row, read in one short transaction."""

    item_id: int
    kind: str
    rendered: dict[str, Any] | None
    raw: bytes | None  # rows queued before the rendered form
    mail_from: str
    rcpt_to: list[str]
    files: list[StoredFile]
    held: dict[str, str] = field(default_factory=dict)  # sha256 -> why it may not leave


def message_to_send(app: App, outgoing: Outgoing) -> EmailMessage:
    """The queued message, composed, with its files read from the blob store.

    Safeguarding decided again, when the row was read (:func:`read_outgoing`),
    which files may leave: a listed file stays behind, and every file does when
    the case (followed through merges) is illegal by now; so does a file no
    longer in the store (erased, or kept as a hash only since the mail was
    queued). The text goes out as queued, with a note saying which stayed and why.
    Raises ValueError when the row cannot be composed (nothing to send).
    """
    files, missing = _files_to_attach(app, outgoing)
    if outgoing.rendered is not None:
        rendered = outgoing.rendered
        if len(files) < len(outgoing.files):
            rendered = with_note(rendered, _withheld_note(outgoing, missing))
        return compose_rendered(rendered, files)
    if outgoing.raw is None:
        raise ValueError("the mail's content has been erased")
    message = email.message_from_bytes(outgoing.raw, policy=POLICY)
    assert isinstance(message, EmailMessage)
    add_attachments(message, files)
    return message


MISSING = "missing"


def _files_to_attach(
    app: App, outgoing: Outgoing
) -> tuple[list[tuple[str, str, bytes]], list[str]]:
    """The files that go, and the SHA-256 of those allowed but no longer in the store."""
    files, missing = [], []
    for file in outgoing.files:
        if file.sha256 in outgoing.held:
            continue
        data = _read_blob(app, file.sha256)
        if data is None:
            missing.append(file.sha256)
        else:
            files.append((file.filename, file.content_type, data))
    if len(files) < len(outgoing.files):
        why = sorted({*outgoing.held.values(), *([MISSING] if missing else [])})
        log.warning("outbox %s: %d of %d attachment(s) withheld at send time (%s)",
                    outgoing.item_id, len(outgoing.files) - len(files), len(outgoing.files),
                    ", ".join(why))
    return files, missing


_WHY_HELD = {
    HELD_LISTED: ("not sent with this email: {they} the list of known illegal images, "
                  "which are never forwarded."),
    HELD_ILLEGAL: ("not sent with this email. Since it was written, the case has been marked "
                   "as possibly holding illegal images, and its files are never forwarded."),
    MISSING: "could not be sent with this email: no longer stored (erased, or past retention).",
}


def _withheld_note(outgoing: Outgoing, missing: Sequence[str]) -> str:
    """Why the text lists files the mail does not carry (it was rendered when queued)."""
    total = len(outgoing.files)
    why = [*outgoing.held.values(), *[MISSING] * len(missing)]
    notes = []
    for reason in (HELD_LISTED, HELD_ILLEGAL, MISSING):
        count = why.count(reason)
        if not count:
            continue
        which = ("the attachment listed above" if total == 1 else
                 "the attachments listed above" if count == total else
                 f"{count} of the {total} attachments listed above")
        verb = "" if reason == MISSING else ("was " if count == 1 else "were ")
        they = "it matches" if count == 1 else "they match"
        notes.append(f"Note: {which} {verb}{_WHY_HELD[reason].format(they=they)}")
    return "\n\n".join(notes)


def _read_blob(app: App, sha256: str) -> bytes | None:
    try:
        return app.blobs.get(sha256)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        log.error("attachment %s cannot be read: %s", sha256, exc)
        return None


def send_due(app: App, *, limit: int = 500) -> dict[str, int]:
    """Send every due outbox row (up to ``limit``); return counts by result.

    First writes what an earlier call could not (:mod:`~mailroom.outbound.unsettled`).
    Raises :class:`~mailroom.errors.StoreUnavailable` when the database goes
    away; what this call had claimed is remembered and settled next time.
    """
    settle(app)
    counts: dict[str, int] = {}
    while sum(counts.values()) < limit:
        token = secrets.token_hex(8)
        try:
            claimed = claim_due(app, min(CLAIM_BATCH, limit - sum(counts.values())), token)
            for item_id in claimed:
                result = send_one(app, item_id, token)
                counts[result] = counts.get(result, 0) + 1
        except StoreUnavailable:
            # Even a claim whose commit we never heard back about is given back.
            app.unsettled.give_back(token)
            raise
        if not claimed:
            break
    return counts


def settle(app: App) -> None:
    """Mark sent what the relay accepted while the database was away; requeue the rest."""
    pending = app.unsettled.pending()
    if not pending:
        return
    with unavailable_as_store_error(), app.sessions.begin() as session:
        for (item_id, token), accepted_at in pending.sent.items():
            _mark_sent(session, item_id, token, accepted_at)
        if pending.release:
            session.execute(update(OutboxItem).where(
                OutboxItem.claimed_by.in_(pending.release), OutboxItem.status == "sending",
            ).values(status="queued", claimed_by=None))
    app.unsettled.settled(pending)
    log.info("outbox settled after a database outage: %d marked sent, %d claim(s) given back",
             len(pending.sent), len(pending.release))


def claim_due(app: App, count: int, token: str) -> list[int]:
    """Lease up to ``count`` due rows to this claim (``token``); return their ids."""
    now = app.now()
    due = or_(
        (OutboxItem.status == "queued") & (OutboxItem.send_after <= now),
        (OutboxItem.status == "sending") & (OutboxItem.send_after <= now - LEASE),
    )
    with unavailable_as_store_error(), app.sessions.begin() as session:
        stmt = select(OutboxItem.id).where(due).order_by(OutboxItem.id).limit(count)
        if is_postgres(session):
            stmt = stmt.with_for_update(skip_locked=True)
        ids = list(session.execute(stmt).scalars())
        if ids:
            # send_after doubles as the lease start while a row is "sending".
            session.execute(update(OutboxItem).where(OutboxItem.id.in_(ids))
                            .values(status="sending", send_after=now, claimed_by=token))
    return ids


def send_one(app: App, item_id: int, token: str) -> str:
    """Send a row of this claim; return ``sent``, ``retry``, ``failed`` or ``skipped``."""
    with unavailable_as_store_error(), app.sessions() as session:
        item = session.get(OutboxItem, item_id)
        if item is None or item.status != "sending" or item.claimed_by != token:
            return "skipped"  # gone, or its lease ran out and another sender has it
        outgoing = read_outgoing(session, item)
    try:
        message = message_to_send(app, outgoing)
    except ValueError as exc:
        log.error("outbox %s cannot be composed: %s", item_id, exc)
        return record_failure(app, item_id, PermanentFailure(f"cannot be composed: {exc}"))
    try:
        app.transport.send(message, mail_from=outgoing.mail_from, rcpt_to=outgoing.rcpt_to)
    except TransportError as exc:
        return record_failure(app, item_id, exc)
    accepted_at = app.now()
    try:
        with unavailable_as_store_error(), app.sessions.begin() as session:
            _mark_sent(session, item_id, token, accepted_at)
    except StoreUnavailable:
        app.unsettled.accepted(item_id, token, accepted_at)
        raise
    log.info("sent outbox %s (%s) to %s", item_id, outgoing.kind, ", ".join(outgoing.rcpt_to))
    return "sent"


def _mark_sent(session: Session, item_id: int, token: str, accepted_at: datetime) -> None:
    """The relay accepted this row of claim ``token`` (a no-op if the claim has lapsed)."""
    session.execute(update(OutboxItem).where(
        OutboxItem.id == item_id, OutboxItem.claimed_by == token,
        OutboxItem.status == "sending",
    ).values(status="sent", sent_at=accepted_at, attempts=OutboxItem.attempts + 1,
             last_error=None, claimed_by=None))


def read_outgoing(session: Session, item: OutboxItem) -> Outgoing:
    """What sending ``item`` needs, with safeguarding's decision about each file now."""
    files = queued_files(item)
    return Outgoing(item.id, item.kind, item.rendered, item.raw, item.mail_from,
                    list(item.rcpt_to), files, files_held_at_send(session, item.ticket_id, files))


def record_failure(app: App, item_id: int, exc: TransportError) -> str:
    """Schedule a retry with backoff, or mark failed and tell the practitioners."""
    settings, now = app.settings, app.now()
    with unavailable_as_store_error(), app.sessions.begin() as session:
        item = session.get(OutboxItem, item_id)
        assert item is not None
        item.attempts += 1
        item.last_error = str(exc)[:2000]
        item.claimed_by = None
        permanent = isinstance(exc, PermanentFailure)
        if permanent or item.attempts >= settings.outbound_max_attempts:
            item.status = "failed"
            log.warning("outbox %s failed after %s attempts: %s", item_id, item.attempts, exc)
            if item.kind not in UNREPORTED_KINDS:
                queue_failure_notice(app, session, item)
            return "failed"
        item.status, item.send_after = "queued", now + backoff(settings, item.attempts)
        log.info("outbox %s: temporary failure (%s), retry at %s", item_id, exc, item.send_after)
        return "retry"


def backoff(settings: Any, attempts: int) -> timedelta:
    delay = timedelta(seconds=settings.outbound_retry_seconds * 2 ** max(attempts - 1, 0))
    return min(delay, MAX_BACKOFF)


def queue_failure_notice(app: App, session: Session, failed: OutboxItem) -> None:
    """Tell the practitioners that a mail could not be delivered."""
    to = practitioner_recipients(app, session, failed.ticket_id)
    if not to:
        log.error("outbox %s failed and there is no practitioner to tell", failed.id)
        return
    ticket = session.get(Ticket, failed.ticket_id) if failed.ticket_id else None
    context = {
        "reference": ticket.reference if ticket else None, "kind": failed.kind,
        "recipients": list(failed.rcpt_to), "subject": failed.subject,
        "message_id": failed.message_id, "attempts": failed.attempts,
        "error": failed.last_error or "",
    }
    queue_mail(app, session, Draft(
        kind="outbox_failed", template="practitioner/outbox_failed", context=context, to=to,
        subject=f"Undelivered: {failed.subject}"[:250], ticket_id=failed.ticket_id,
        auto_submitted="auto-generated",
    ))


def practitioner_recipients(
    app: App, session: Session, ticket_id: int | None
) -> tuple[Address, ...]:
    """The assignee when there is one, else the team address, else every practitioner."""
    ticket = session.get(Ticket, ticket_id) if ticket_id else None
    if ticket is not None and ticket.assignee:
        return (Address(ticket.assignee),)
    if app.settings.team_address:
        return (Address(app.settings.team_address),)
    return tuple(Address(a) for a in app.settings.practitioners)


@dataclass(frozen=True)
class RecentAcknowledgements:
    """How many acknowledgements were queued lately, to one sender and for one content."""

    to_sender_in_window: int
    to_sender_in_day: int
    same_content: int  # for the same subject or body key, whoever they went to


def recent_acknowledgements(
    session: Session, address: str, *, window_since: datetime, day_since: datetime,
    content_since: datetime, subject_key: str | None, body_key: str | None,
) -> RecentAcknowledgements:
    """Acknowledgements queued to ``address`` since two moments, and those for the same
    content (the subject key or the body key; a None key matches nothing) since a third,
    whoever they went to, in one query (on the connection: ``queue_mail`` writes its rows
    at once, so nothing pending in the session need be flushed first)."""
    row = session.connection().execute(_RECENT_ACKNOWLEDGEMENTS, {
        "address": address, "window_since": window_since, "day_since": day_since,
        "earliest": min(window_since, day_since), "content_since": content_since,
        "subject_key": subject_key, "body_key": body_key}).one()
    return RecentAcknowledgements(int(row[0]), int(row[1]), int(row[2]))


def _since(name: str) -> Any:
    moment = bindparam(name, type_=OutboxItem.created_at.type)
    return func.coalesce(func.sum(case((OutboxItem.created_at >= moment, 1), else_=0)), 0)


def _acknowledgements_with(key: Any, name: str) -> Any:
    return select(OutboxItem.id).where(
        OutboxItem.kind == "acknowledgement", key == bindparam(name),
        OutboxItem.created_at >= bindparam("content_since", type_=OutboxItem.created_at.type))


# Built once: the pipeline asks for every new case. Each part reads one index: the
# sender's rows by (kind, to_addr, created_at); the same content as a UNION (a row with
# both keys counts once) of (kind, subject_key, created_at) and (kind, body_key, created_at).
_SAME_CONTENT = select(func.count()).select_from(union(
    _acknowledgements_with(OutboxItem.subject_key, "subject_key"),
    _acknowledgements_with(OutboxItem.body_key, "body_key"),
).subquery()).scalar_subquery()
_RECENT_ACKNOWLEDGEMENTS = select(_since("window_since"), _since("day_since"), _SAME_CONTENT).where(
    OutboxItem.kind == "acknowledgement", OutboxItem.to_addr == bindparam("address"),
    OutboxItem.created_at >= bindparam("earliest", type_=OutboxItem.created_at.type))
