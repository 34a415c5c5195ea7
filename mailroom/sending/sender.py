"""Sending the outbox: claim what is due, hand it to the transport, settle.

The sender job claims due rows with a lease (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL), composes each from its rendered form with the files that may
still leave (:func:`mailroom.cases.safeguarding.files_held_at_send` is asked
again now), sends it through the transport and marks it ``sent`` right after
the relay accepted it. Temporary failures are retried with exponential
backoff; after the last attempt, or on a permanent refusal, the row is
``failed`` and the practitioners are told by email.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from enum import StrEnum
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from mailroom.app import App
from mailroom.cases.safeguarding import HELD_ILLEGAL, HELD_LISTED, files_held_at_send
from mailroom.errors import StoreUnavailable
from mailroom.mailtypes import StoredFile
from mailroom.outbox.queue import Draft, practitioner_recipients, queue_mail
from mailroom.outbox.rendered import compose_rendered, with_note
from mailroom.sending.transports import PermanentFailure, TransportError
from mailroom.sending.unsettled import Unsettled
from mailroom.store.blobs import BlobStore
from mailroom.store.db import is_postgres, unavailable_as_store_error
from mailroom.store.models import OutboxItem, Ticket
from mailroom.vocabulary import OutboxKind, OutboxStatus

log = logging.getLogger("mailroom.sending")

LEASE = timedelta(minutes=10)
CLAIM_BATCH = 20
MAX_BACKOFF = timedelta(hours=6)
# Mail about our own failures is never itself reported when it fails.
UNREPORTED_KINDS = frozenset({OutboxKind.OUTBOX_FAILED})


class SendResult(StrEnum):
    """What one try at a claimed row came to: the keys of :func:`send_due`'s counts."""

    SENT = "sent"  # the relay accepted it: the row is ``sent``
    RETRY = "retry"  # a temporary failure: the row is ``queued`` again, for later
    FAILED = "failed"  # given up: the row is ``failed`` and the practitioners are told
    SKIPPED = "skipped"  # gone, or its lease ran out and another sender has it



def queued_files(item: OutboxItem) -> list[StoredFile]:
    return [StoredFile(**f) for f in item.files or []]


@dataclass
class Outgoing:
    """What a sender needs of a claimed row, read in one short transaction."""

    item_id: int
    kind: str
    rendered: dict[str, Any] | None
    mail_from: str
    rcpt_to: list[str]
    files: list[StoredFile]
    held: dict[str, str] = field(default_factory=dict)  # sha256 -> why it may not leave


def message_to_send(blobs: BlobStore, outgoing: Outgoing) -> EmailMessage:
    """The queued message, composed, with its files read from the blob store.

    Safeguarding decided again, when the row was read (:func:`read_outgoing`),
    which files may leave: a listed file stays behind, and every file does when
    the case (followed through merges) is illegal by now; so does a file no
    longer in the store (erased, or kept as a hash only since the mail was
    queued). The text goes out as queued, with a note saying which stayed and why.
    Raises ValueError when the row cannot be composed (nothing to send).
    """
    if outgoing.rendered is None:
        raise ValueError("the mail's content has been erased")
    files, missing = _files_to_attach(blobs, outgoing)
    rendered = outgoing.rendered
    if len(files) < len(outgoing.files):
        rendered = with_note(rendered, _withheld_note(outgoing, missing))
    return compose_rendered(rendered, files)


MISSING = "missing"


def _files_to_attach(
    blobs: BlobStore, outgoing: Outgoing
) -> tuple[list[tuple[str, str, bytes]], list[str]]:
    """The files that go, and the SHA-256 of those allowed but no longer in the store."""
    files, missing = [], []
    for file in outgoing.files:
        if file.sha256 in outgoing.held:
            continue
        data = _read_blob(blobs, file.sha256)
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


def _read_blob(blobs: BlobStore, sha256: str) -> bytes | None:
    try:
        return blobs.get(sha256)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        log.error("attachment %s cannot be read: %s", sha256, exc)
        return None


def send_due(app: App, *, limit: int = 500) -> dict[str, int]:
    """Send every due outbox row (up to ``limit``); return counts by result.

    First writes what an earlier call could not (:mod:`~mailroom.sending.unsettled`).
    Raises :class:`~mailroom.errors.StoreUnavailable` when the database goes
    away; what this call had claimed is remembered and settled next time.
    """
    settle(app.sessions, app.unsettled)
    counts: dict[str, int] = {}
    while sum(counts.values()) < limit:
        token = secrets.token_hex(8)
        try:
            claimed = claim_due(app.sessions, app.now(),
                                min(CLAIM_BATCH, limit - sum(counts.values())), token)
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


def settle(sessions: sessionmaker[Session], unsettled: Unsettled) -> None:
    """Mark sent what the relay accepted while the database was away; requeue the rest."""
    pending = unsettled.pending()
    if not pending:
        return
    with unavailable_as_store_error(), sessions.begin() as session:
        for (item_id, token), accepted_at in pending.sent.items():
            _mark_sent(session, item_id, token, accepted_at)
        if pending.release:
            session.execute(update(OutboxItem).where(
                OutboxItem.claimed_by.in_(pending.release),
                OutboxItem.status == OutboxStatus.SENDING,
            ).values(status=OutboxStatus.QUEUED, claimed_by=None))
    unsettled.settled(pending)
    log.info("outbox settled after a database outage: %d marked sent, %d claim(s) given back",
             len(pending.sent), len(pending.release))


def claim_due(sessions: sessionmaker[Session], now: datetime, count: int,
              token: str) -> list[int]:
    """Lease up to ``count`` rows due at ``now`` to this claim (``token``); return their ids."""
    due = or_(
        (OutboxItem.status == OutboxStatus.QUEUED) & (OutboxItem.send_after <= now),
        (OutboxItem.status == OutboxStatus.SENDING) & (OutboxItem.send_after <= now - LEASE),
    )
    with unavailable_as_store_error(), sessions.begin() as session:
        stmt = select(OutboxItem.id).where(due).order_by(OutboxItem.id).limit(count)
        if is_postgres(session):
            stmt = stmt.with_for_update(skip_locked=True)
        ids = list(session.execute(stmt).scalars())
        if ids:
            # send_after doubles as the lease start while a row is "sending".
            session.execute(update(OutboxItem).where(OutboxItem.id.in_(ids))
                            .values(status=OutboxStatus.SENDING, send_after=now,
                                    claimed_by=token))
    return ids


def send_one(app: App, item_id: int, token: str) -> SendResult:
    """Send a row of this claim; return what came of it (:class:`SendResult`)."""
    with unavailable_as_store_error(), app.sessions() as session:
        item = session.get(OutboxItem, item_id)
        if item is None or item.status != OutboxStatus.SENDING or item.claimed_by != token:
            return SendResult.SKIPPED
        outgoing = read_outgoing(session, item)
    try:
        message = message_to_send(app.blobs, outgoing)
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
    return SendResult.SENT


def _mark_sent(session: Session, item_id: int, token: str, accepted_at: datetime) -> None:
    """The relay accepted this row of claim ``token`` (a no-op if the claim has lapsed)."""
    session.execute(update(OutboxItem).where(
        OutboxItem.id == item_id, OutboxItem.claimed_by == token,
        OutboxItem.status == OutboxStatus.SENDING,
    ).values(status=OutboxStatus.SENT, sent_at=accepted_at, attempts=OutboxItem.attempts + 1,
             last_error=None, claimed_by=None))


def read_outgoing(session: Session, item: OutboxItem) -> Outgoing:
    """What sending ``item`` needs, with safeguarding's decision about each file now."""
    files = queued_files(item)
    return Outgoing(item.id, item.kind, item.rendered, item.mail_from,
                    list(item.rcpt_to), files, files_held_at_send(session, item.ticket_id, files))


def record_failure(app: App, item_id: int, exc: TransportError) -> SendResult:
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
            item.status = OutboxStatus.FAILED
            log.warning("outbox %s failed after %s attempts: %s", item_id, item.attempts, exc)
            if item.kind not in UNREPORTED_KINDS:
                queue_failure_notice(app, session, item)
            return SendResult.FAILED
        item.status, item.send_after = OutboxStatus.QUEUED, now + backoff(settings, item.attempts)
        log.info("outbox %s: temporary failure (%s), retry at %s", item_id, exc, item.send_after)
        return SendResult.RETRY


def backoff(settings: Any, attempts: int) -> timedelta:
    delay = timedelta(seconds=settings.outbound_retry_seconds * 2 ** max(attempts - 1, 0))
    return min(delay, MAX_BACKOFF)


def queue_failure_notice(app: App, session: Session, failed: OutboxItem) -> None:
    """Tell the practitioners that a mail could not be delivered."""
    to = practitioner_recipients(app.settings, session, failed.ticket_id)
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
    queue_mail(app.settings, app.renderer, session, Draft(
        kind=OutboxKind.OUTBOX_FAILED, template="practitioner/outbox_failed", context=context,
        to=to,
        subject=f"Undelivered: {failed.subject}"[:250], ticket_id=failed.ticket_id,
        auto_submitted="auto-generated",
    ), now=app.now())
