"""Data-protection requests (SPEC section 10): export, or erase, what is held about one address.

Where an address is looked for: ticket requesters, participants, message
senders and recipients, inbound envelope senders, outgoing recipients, audit
event actors and details; for an erasure also bounces and mail on no case.
Free text written by *other* people on a case (another case's body naming
this person) is not searched: no tool can find a person in prose reliably,
so a reviewer must.

**Export** (:func:`export_requester`) writes a directory (mode 0700; files
0600), by default under ``var/exports/`` (0700), that an admin reviews and
hands over, zipped in whatever way their process requires::

    export-<address>-<UTC time>/
      README.txt     what is where
      export.json    the tickets where the address is requester or participant,
                     whole (messages with text and metadata, participants,
                     events, escalations with their context); each message has
                     "theirs": true when they sent it or it was sent to them;
                     messages they sent that belong to no ticket; and an index
                     of the files below, with counts
      raw/in-<inbox id>.eml     inbound mail they sent, as received
      raw/out-<outbox id>.eml   mail sent to them, as sent
      attachments/<id>-<name>   attachment bytes still stored, of those tickets

A case record holds third parties' data too (the practitioners, a platform's
answer, a colleague in Cc): review before sending.

**Erase** (:func:`erase_requester`), in one transaction:

- their open cases (they are the **requester**) are closed, with a
  ``ticket.status`` event: nobody is left to answer;
- tickets where they are the requester are purged as retention would
  (:func:`mailroom.privacy.retention.purge_tickets`: every body, subject, raw mail,
  attachment, name and escalation context), whatever their status;
- on tickets where they only took part, **their own** messages lose text,
  subject, name and URLs, their raw mail and attachments go; raw mail of
  the case that names them is dropped; their address in recipients, texts
  and subjects is replaced;
- mail on **no case** (automatic replies, mail that failed processing,
  duplicates) and **bounces** on any case that name them (sender,
  recipients, text, subject, or the raw bytes once decoded:
  :func:`mailroom.privacy.erasure_files.names_address`) lose their content, raw mail
  and attachments; the inbox rows' envelope and errors lose their address.
  Rows still ``new`` are mail that came after the request: the pipeline
  takes them as it would any mail;
- mail still queued to them (or being sent), or on their cases, or
  carrying their messages to practitioners is cancelled (status ``failed``);
  sent mail of that kind, or that names them, loses its copy of the text and
  its raw mail;
- everywhere, the address becomes a placeholder ``erased-<random>@erased.invalid``
  (random per request: it cannot be turned back into the address, and the
  ``.invalid`` domain means no mail can ever go to it), and names are cleared:
  in recipients of any message, audit events that name it, outbox errors.

Before the commit, files about them go (:mod:`mailroom.privacy.erasure_files`): the
file transport's ``.eml`` files of the mail above or naming them, and their
export directories under ``var/exports/``. Exports written elsewhere
(``--out``) must be deleted by hand, and ``mailroom erase`` says so. A file
that cannot be deleted is listed, it does not stop the erasure. Done before
the commit, a crash in between leaves the database as it was and running the
erasure again finds the same files; done after, the Message-IDs of the mail
to look for would be gone.

What stays is anonymous: ticket rows (dates, category, role, platforms,
first response, status), escalation rows (platform, dates, outcome), so
reports do not change. The audit trail gets a ``requester.erased`` event on
each ticket touched and one without a ticket: the placeholder and counts,
never the address. To let an admin later answer "did you erase me?", the
events carry a fingerprint: HMAC-SHA256 of the address under the helpline's
secret (:func:`erasure_fingerprint`); it can confirm a given address, not
reveal one.

After the commit, blob files no stored attachment uses any more are deleted
and, on SQLite, the write-ahead log is checkpointed and emptied
(:func:`mailroom.store.db.checkpoint`): with ``secure_delete`` on, freed
space in the database file is zeros, and the old page versions in the
``-wal`` file are gone. Another process reading at that moment (a running
daemon) can hold the log for longer than the busy timeout; the result says
so, and the next checkpoint finishes the job. On PostgreSQL the old row
versions stay in the server's files until it vacuums them.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Text, and_, cast, delete, func, or_, select, update
from sqlalchemy.orm import Session, defer

from mailroom.app import App
from mailroom.cases.tickets import record_event, set_status
from mailroom.cases.views import iso, message_view, ticket_detail
from mailroom.errors import MailroomError
from mailroom.intake.filenames import sanitise_filename
from mailroom.outbox.rendered import outgoing_bytes
from mailroom.privacy.erasure_files import (
    delete_exports,
    export_stem,
    names_address,
    sweep_sent_mail,
)
from mailroom.privacy.retention import (
    SENT,
    PurgeCounts,
    blob_candidates,
    delete_unreferenced_blobs,
    execute_update,
    purge_tickets,
)
from mailroom.private import DIR_MODE, create_private_file, make_private_dir
from mailroom.sending.transports import FileTransport, transport_from_url
from mailroom.settings import Settings
from mailroom.store.blobs import BlobStore
from mailroom.store.db import checkpoint
from mailroom.store.models import (
    AttachmentRow,
    Event,
    InboxItem,
    InboxRaw,
    Message,
    MessageTarget,
    OutboxItem,
    Participant,
    Ticket,
    outbox_has_content,
)
from mailroom.store.search import optimise_index
from mailroom.vocabulary import (
    AutomaticKind,
    Direction,
    InboxStatus,
    OutboxKind,
    OutboxStatus,
    TicketStatus,
)

__all__ = [
    "EXPORTS_FOLDER",
    "EXPORT_FORMAT",
    "EraseResult",
    "Holdings",
    "erase_requester",
    "erasure_fingerprint",
    "export_requester",
    "find_holdings",
    "normalise_address",
]

EXPORT_FORMAT = "mailroom-export/1"
PLACEHOLDER_DOMAIN = "erased.invalid"
CANCELLED = "cancelled: a recipient's data was erased"
# "sending": a sender has it; it may still go out
UNSENT = (OutboxStatus.QUEUED, OutboxStatus.SENDING)
EXPORTS_FOLDER = "exports"  # under var/: where exports go unless --out says otherwise


def normalise_address(address: str) -> str:
    text = address.strip().strip("<>").strip().lower()
    if text.count("@") != 1 or text.startswith("@") or text.endswith("@") or " " in text:
        raise MailroomError(f"not an email address: {address!r}")
    return text


def erasure_fingerprint(settings: Settings, address: str) -> str:
    """HMAC-SHA256 of the address under the helpline's secret (confirms, never reveals)."""
    message = b"mailroom-erasure:" + normalise_address(address).encode()
    return hmac.new(settings.secret, message, hashlib.sha256).hexdigest()


def make_placeholder() -> str:
    return f"erased-{secrets.token_hex(5)}@{PLACEHOLDER_DOMAIN}"


# --- finding -----------------------------------------------------------------------


@dataclass
class Holdings:
    """The tickets an address appears on."""

    address: str
    requester_tickets: list[int]  # they opened the case
    other_tickets: list[int]  # they took part (Cc, wrote in) in someone else's case

    @property
    def tickets(self) -> list[int]:
        return sorted({*self.requester_tickets, *self.other_tickets})


def find_holdings(session: Session, address: str) -> Holdings:
    requester = set(session.execute(
        select(Ticket.id).where(func.lower(Ticket.requester) == address)).scalars())
    taking_part = set(session.execute(
        select(Participant.ticket_id).where(func.lower(Participant.address) == address)
    ).scalars())
    taking_part |= {tid for tid in session.execute(
        select(Message.ticket_id).where(func.lower(Message.sender) == address)).scalars()
        if tid is not None}
    return Holdings(address, sorted(requester), sorted(taking_part - requester))


def _their_messages(address: str) -> Any:
    return select(Message.id).where(func.lower(Message.sender) == address)


def _is_recipient(address: str, recipients: Iterable[str]) -> bool:
    return any(address == str(r).lower() for r in recipients)


# --- export ------------------------------------------------------------------------


def export_requester(app: App, address: str, out_dir: Path) -> Path:
    """Write everything held about ``address`` under ``out_dir``; return the new directory."""
    address = normalise_address(address)
    target = _new_directory(Path(out_dir), address, app.now())
    with app.sessions() as session:
        holdings = find_holdings(session, address)
        document = _document(app.settings, app.now(), session, holdings)
        document["inbound_raw"] = _export_inbound(session, address, target)
        document["outbound_raw"] = _export_outbound(session, holdings, target)
        document["attachments"] = _export_attachments(app.blobs, session, holdings, target)
    document["counts"] = _counts(document)
    _write(target / "export.json", json.dumps(document, indent=2, ensure_ascii=False).encode())
    _write(target / "README.txt", _readme(document).encode())
    return target


def _new_directory(out_dir: Path, address: str, now: datetime) -> Path:
    make_private_dir(out_dir)
    stem = f"{export_stem(address)}-{now:%Y%m%dT%H%M%SZ}"
    for attempt in range(1, 1000):
        target = out_dir / (stem if attempt == 1 else f"{stem}-{attempt}")
        try:
            target.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue
        target.chmod(DIR_MODE)  # whatever the umask
        return target
    raise MailroomError(f"cannot create an export directory under {out_dir}")


def _document(settings: Settings, now: datetime, session: Session,
              holdings: Holdings) -> dict[str, Any]:
    address = holdings.address
    tickets = [_ticket_view(session, tid, holdings) for tid in holdings.tickets]
    loose = session.execute(select(Message).where(
        func.lower(Message.sender) == address, Message.ticket_id.is_(None)).order_by(Message.id))
    return {
        "format": EXPORT_FORMAT, "address": address, "helpline": settings.helpline_name,
        "generated_at": iso(now), "tickets": tickets,
        "messages_without_ticket": [_mark(message_view(m), address) for m in loose.scalars()],
    }


def _ticket_view(session: Session, ticket_id: int, holdings: Holdings) -> dict[str, Any]:
    ticket = session.get_one(Ticket, ticket_id)
    view = ticket_detail(session, ticket)
    view["relation"] = "requester" if ticket_id in holdings.requester_tickets else "participant"
    view["requester_name"] = ticket.requester_name
    view["purged_at"] = iso(ticket.purged_at)
    for item, row in zip(view["escalations"], ticket.escalations, strict=True):
        item["context"] = row.context
    view["messages"] = [_mark(m, holdings.address) for m in view["messages"]]
    return view


def _mark(message: dict[str, Any], address: str) -> dict[str, Any]:
    sender = (message.get("sender") or "").lower()
    message["theirs"] = sender == address or _is_recipient(
        address, [*message.get("to", []), *message.get("cc", [])])
    return message


def _export_inbound(session: Session, address: str, target: Path) -> list[dict[str, Any]]:
    stmt = select(InboxItem, Message.message_id).outerjoin(
        Message, InboxItem.message_pk == Message.id).where(
        or_(InboxItem.message_pk.in_(_their_messages(address)),
            and_(InboxItem.message_pk.is_(None), func.lower(InboxItem.mail_from) == address)),
        InboxItem.raw.is_not(None)).order_by(InboxItem.id)
    out = []
    for item, message_id in session.execute(stmt):
        name = f"raw/in-{item.id}.eml"
        _write(target / name, item.raw or b"")
        out.append({"file": name, "inbox_id": item.id, "message_id": message_id,
                    "received_at": iso(item.received_at), "status": item.status})
    return out


def _export_outbound(session: Session, holdings: Holdings,
                     target: Path) -> list[dict[str, Any]]:
    stmt = select(OutboxItem).where(
        or_(OutboxItem.ticket_id.in_(holdings.tickets),
            func.lower(OutboxItem.to_addr) == holdings.address),
        outbox_has_content()).order_by(OutboxItem.id)
    out = []
    for item in session.execute(stmt).scalars():
        if not _is_recipient(holdings.address, item.rcpt_to or []):
            continue
        name = f"raw/out-{item.id}.eml"
        _write(target / name, outgoing_bytes(item) or b"")
        out.append({"file": name, "outbox_id": item.id, "kind": item.kind,
                    "message_id": item.message_id, "status": item.status,
                    "sent_at": iso(item.sent_at), "to": list(item.rcpt_to)})
    return out


def _export_attachments(blobs: BlobStore, session: Session, holdings: Holdings,
                        target: Path) -> list[dict[str, Any]]:
    stmt = select(AttachmentRow, Message.message_id).join(
        Message, AttachmentRow.message_pk == Message.id).where(
        or_(Message.ticket_id.in_(holdings.tickets),
            Message.id.in_(_their_messages(holdings.address)))).order_by(AttachmentRow.id)
    out = []
    for row, message_id in session.execute(stmt):
        entry = {"file": None, "message_id": message_id, "filename": row.filename,
                 "content_type": row.content_type, "size": row.size, "sha256": row.sha256}
        if row.stored and blobs.exists(row.sha256):
            name = f"{row.id}-{sanitise_filename(row.filename, row.content_type)}"
            entry["file"] = f"attachments/{name}"
            _write(target / "attachments" / name, blobs.get(row.sha256))
        out.append(entry)
    return out


def _counts(document: dict[str, Any]) -> dict[str, int]:
    return {
        "tickets": len(document["tickets"]),
        "messages": sum(len(t["messages"]) for t in document["tickets"])
        + len(document["messages_without_ticket"]),
        "inbound_raw": len(document["inbound_raw"]),
        "outbound_raw": len(document["outbound_raw"]),
        "attachments": sum(1 for a in document["attachments"] if a["file"]),
    }


def _write(path: Path, data: bytes) -> None:
    make_private_dir(path.parent)
    fd = create_private_file(path)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _readme(document: dict[str, Any]) -> str:
    counts = document["counts"]
    return (
        f"Data held by {document['helpline']} about {document['address']}\n"
        f"Exported {document['generated_at']} ({document['format']}).\n\n"
        f"export.json       {counts['tickets']} tickets, {counts['messages']} messages, "
        "participants, events, escalations\n"
        f"raw/in-*.eml      {counts['inbound_raw']} messages they sent, as received\n"
        f"raw/out-*.eml     {counts['outbound_raw']} messages sent to them, as sent\n"
        f"attachments/      {counts['attachments']} attachment files\n\n"
        "In export.json a message has \"theirs\": true when they sent it or it was sent\n"
        "to them. The case records also hold other people's data: review before sending.\n"
    )


# --- erase ---------------------------------------------------------------------------


@dataclass
class EraseResult:
    """What an erasure did (``mailroom erase --json`` prints :meth:`as_dict`)."""

    placeholder: str
    fingerprint: str
    tickets: list[str] = field(default_factory=list)  # they were the requester: purged
    other_tickets: list[str] = field(default_factory=list)  # they took part
    counts: PurgeCounts = field(default_factory=PurgeCounts)
    addresses: int = 0  # rows whose address was replaced by the placeholder
    cancelled: int = 0  # queued mail that will not be sent
    closed: int = 0  # their cases that were still open
    loose: int = 0  # mail on no case, and bounces, that named them
    blobs: int = 0
    sent_files: int = 0  # .eml files of the file transport
    exports: int = 0  # export directories under var/exports
    checkpointed: bool | None = None  # SQLite's log emptied (None: PostgreSQL)
    left_behind: list[str] = field(default_factory=list)  # files that could not be deleted

    def as_dict(self) -> dict[str, Any]:
        return {"placeholder": self.placeholder, "fingerprint": self.fingerprint,
                "tickets": self.tickets, "other_tickets": self.other_tickets,
                **asdict(self.counts), "addresses": self.addresses,
                "cancelled": self.cancelled, "closed": self.closed, "loose": self.loose,
                "blobs": self.blobs, "sent_files": self.sent_files, "exports": self.exports,
                "checkpointed": self.checkpointed, "left_behind": self.left_behind}

    def summary(self) -> str:
        counts = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in asdict(self.counts).items())
        lines = [
            f"erased: now {self.placeholder}; purged {len(self.tickets)} cases they opened "
            f"({', '.join(self.tickets) or 'none'}), {self.closed} of them closed now; "
            f"cleaned {len(self.other_tickets)} others "
            f"({', '.join(self.other_tickets) or 'none'}) and {self.loose} messages on no "
            f"case or bounces naming them",
            f"{counts}; addresses replaced: {self.addresses}; queued mail cancelled: "
            f"{self.cancelled}",
            f"files deleted: {self.blobs} attachments, {self.sent_files} sent mail files, "
            f"{self.exports} exports in the data directory; {self._log_state()}",
            "exports written anywhere else (export --out) must be deleted by hand",
        ]
        lines += [f"not deleted: {item}" for item in self.left_behind]
        return "\n".join(lines)

    def _log_state(self) -> str:
        if self.checkpointed is None:
            return "PostgreSQL frees the old row versions at its next vacuum"
        if self.checkpointed:
            return "database log emptied"
        return ("database log still held by another process: old page versions stay in "
                "the -wal file until its next checkpoint")


@dataclass
class _Erasure:
    """One erasure in progress: the session, who, and what it did so far."""

    session: Session
    holdings: Holdings
    result: EraseResult
    now: datetime
    shas: set[str] = field(default_factory=set)  # attachment blobs that may now be unused
    outgoing_ids: set[str] = field(default_factory=set)  # Message-IDs of mail dropped

    @property
    def address(self) -> str:
        return self.holdings.address

    @property
    def placeholder(self) -> str:
        return self.result.placeholder

    def scrub(self, value: Any) -> Any:
        return scrub_address(value, self.address, self.placeholder)


def erase_requester(app: App, address: str, *, actor: str) -> EraseResult:
    """Remove what is held about ``address``, keeping anonymous statistics."""
    address = normalise_address(address)
    result = EraseResult(make_placeholder(), erasure_fingerprint(app.settings, address))
    with app.sessions.begin() as session:
        work = _Erasure(session, find_holdings(session, address), result, app.now())
        _erase(work, actor)
        _record(work, actor)
        session.flush()
        optimise_index(session)  # the search index keeps no token of what was erased
        _erase_files(app.settings, work)  # before the commit: see the module docstring
    result.blobs = delete_unreferenced_blobs(app.sessions, app.blobs, work.shas)
    result.checkpointed = checkpoint(app.engine)
    return result


def _erase(work: _Erasure, actor: str) -> None:
    """Every step in the database, in order."""
    session, holdings = work.session, work.holdings
    work.shas = blob_candidates(session, holdings.requester_tickets)
    work.shas |= _their_blobs(session, work.address)
    _close_their_cases(work, actor)
    if holdings.requester_tickets:
        work.result.counts.add(purge_tickets(session, holdings.requester_tickets, now=work.now))
    _erase_their_messages(work)
    _erase_copies(work)
    _erase_inbound(work)
    _erase_outbound(work)
    _erase_loose_mail(work)
    _replace_addresses(work)
    _scrub_messages(work)
    _scrub_inbox(work)
    _scrub_events(work)
    work.result.tickets = _references(session, holdings.requester_tickets)
    work.result.other_tickets = _references(session, holdings.other_tickets)


def _their_blobs(session: Session, address: str) -> set[str]:
    stmt = select(AttachmentRow.sha256).where(
        AttachmentRow.message_pk.in_(_their_messages(address)), AttachmentRow.stored.is_(True))
    return set(session.execute(stmt.distinct()).scalars())


def _close_their_cases(work: _Erasure, actor: str) -> None:
    """A case whose requester is erased has nobody to answer: it closes (an audit event)."""
    stmt = select(Ticket).where(Ticket.id.in_(work.holdings.requester_tickets),
                                Ticket.status != TicketStatus.CLOSED)
    for ticket in work.session.execute(stmt).scalars():
        set_status(work.session, ticket, TicketStatus.CLOSED, actor=actor, at=work.now)
        work.result.closed += 1
    work.session.flush()


def _erase_their_messages(work: _Erasure) -> None:
    """Their messages outside the purged tickets: content out, attachments unstored."""
    session, address, counts = work.session, work.address, work.result.counts
    elsewhere = and_(func.lower(Message.sender) == address, or_(
        Message.ticket_id.is_(None), Message.ticket_id.not_in(work.holdings.requester_tickets)))
    counts.messages += execute_update(session, update(Message).where(elsewhere).values(
        text=None, subject="", sender_name=None, urls=[]))
    counts.reported_targets += execute_update(session, delete(MessageTarget).where(
        MessageTarget.message_pk.in_(select(Message.id).where(elsewhere))))
    counts.attachments += execute_update(session, update(AttachmentRow).where(
        AttachmentRow.message_pk.in_(select(Message.id).where(elsewhere)),
        or_(AttachmentRow.stored.is_(True), AttachmentRow.filename != "")).values(
        stored=False, filename=""))


def _erase_copies(work: _Erasure) -> None:
    """Notifications that carried their messages to practitioners: text and raw mail go."""
    session, counts = work.session, work.result.counts
    theirs = select(Message.message_id).where(
        func.lower(Message.sender) == work.address, Message.message_id.is_not(None))
    copies = select(Message.message_id).where(
        Message.direction == Direction.OUT, Message.kind == OutboxKind.NOTIFICATION,
        Message.in_reply_to.in_(theirs))
    counts.messages += execute_update(session, update(Message).where(
        Message.message_id.in_(copies), or_(Message.text.is_not(None), Message.subject != "")
    ).values(text=None, subject=""))
    for item in session.execute(select(OutboxItem).where(
            OutboxItem.message_id.in_(copies))).scalars():
        work.outgoing_ids.add(item.message_id)
        if item.status in UNSENT:
            item.status, item.last_error = OutboxStatus.FAILED, CANCELLED
            work.result.cancelled += 1
        if item.status in SENT and item.rendered is not None:
            item.rendered, item.subject, item.files = None, "", None
            counts.outbound_raw += 1


def _erase_inbound(work: _Erasure) -> None:
    """Raw mail they sent, and raw mail of their cases that names them."""
    session, address, counts = work.session, work.address, work.result.counts
    theirs = select(InboxItem.id).where(or_(
        InboxItem.message_pk.in_(_their_messages(address)),
        func.lower(InboxItem.mail_from) == address))
    counts.inbound_raw += execute_update(
        session, delete(InboxRaw).where(InboxRaw.inbox_id.in_(theirs)))
    stmt = select(InboxRaw).join(InboxItem, InboxRaw.inbox_id == InboxItem.id).join(
        Message, InboxItem.message_pk == Message.id).where(
        Message.ticket_id.in_(work.holdings.tickets))
    for stored in session.execute(stmt).scalars():
        if names_address(stored.raw, address):
            session.delete(stored)
            counts.inbound_raw += 1


def _erase_outbound(work: _Erasure) -> None:
    """Mail to them or on their cases: raw dropped once sent, cancelled while queued;
    their address in recipients and errors replaced."""
    session, address = work.session, work.address
    stmt = select(OutboxItem).where(or_(
        OutboxItem.ticket_id.in_(work.holdings.tickets),
        func.lower(OutboxItem.to_addr) == address, _mentions(OutboxItem.rcpt_to, address),
        _mentions(OutboxItem.last_error, address)))
    for item in session.execute(stmt).scalars():
        to_them = _is_recipient(address, item.rcpt_to or []) or item.to_addr.lower() == address
        their_case = item.ticket_id in work.holdings.requester_tickets
        about_them = to_them or their_case or names_address(outgoing_bytes(item), address)
        if about_them:
            work.outgoing_ids.add(item.message_id)
        if item.status in UNSENT and (to_them or their_case):
            item.status, item.last_error = OutboxStatus.FAILED, CANCELLED
            work.result.cancelled += 1
        has_content = item.rendered is not None
        if has_content and item.status in SENT and about_them:
            item.rendered, item.files, item.subject = None, None, ""
            work.result.counts.outbound_raw += 1
        if to_them:
            item.rcpt_to, item.to_addr = work.scrub(list(item.rcpt_to)), work.scrub(item.to_addr)
            work.result.addresses += 1
        item.last_error = work.scrub(item.last_error)


def _erase_loose_mail(work: _Erasure) -> None:
    """Mail on no case (automatic replies, mail that failed processing, duplicates) and
    bounces on any case, that name them anywhere: sender, recipients, text, subject or
    raw bytes. Their content, raw mail and attachments go."""
    session = work.session
    message_ids = _loose_messages_naming(session, work.address)
    if message_ids:
        _blank_messages(work, message_ids)
    unprocessed = _unprocessed_naming(session, work.address)
    inbox_ids = _inbox_of(session, message_ids) | unprocessed
    if inbox_ids:
        work.result.counts.inbound_raw += execute_update(
            session, delete(InboxRaw).where(InboxRaw.inbox_id.in_(inbox_ids)))
    work.result.loose += len(message_ids) + len(unprocessed)


def _loose_messages_naming(session: Session, address: str) -> set[int]:
    loose = or_(Message.ticket_id.is_(None), Message.kind == AutomaticKind.BOUNCE)
    candidates = session.execute(select(
        Message.id, Message.sender, Message.recipients, Message.text, Message.subject,
    ).where(loose, or_(
        func.lower(Message.sender) == address, _mentions(Message.recipients, address),
        _mentions(Message.text, address), _mentions(Message.subject, address))))
    found = {pk for pk, *values in candidates if _names_in(values, address)}
    raws = session.execute(
        select(Message.id, InboxRaw.raw)
        .join(InboxItem, InboxItem.message_pk == Message.id)
        .join(InboxRaw, InboxRaw.inbox_id == InboxItem.id)
        .where(loose).execution_options(yield_per=20))
    return found | {pk for pk, raw in raws if pk not in found and names_address(raw, address)}


def _unprocessed_naming(session: Session, address: str) -> set[int]:
    """Inbox rows with no message (bad, shunted, duplicates) whose raw names them; rows
    still ``new`` are left to the pipeline (mail that came after the request)."""
    raws = session.execute(
        select(InboxItem.id, InboxRaw.raw).join(InboxRaw, InboxRaw.inbox_id == InboxItem.id)
        .where(InboxItem.message_pk.is_(None), InboxItem.status != InboxStatus.NEW)
        .execution_options(yield_per=20))
    return {inbox_id for inbox_id, raw in raws if names_address(raw, address)}


def _inbox_of(session: Session, message_ids: set[int]) -> set[int]:
    if not message_ids:
        return set()
    return set(session.execute(select(InboxItem.id).where(
        InboxItem.message_pk.in_(message_ids))).scalars())


def _blank_messages(work: _Erasure, ids: set[int]) -> None:
    session, counts = work.session, work.result.counts
    work.shas |= set(session.execute(select(AttachmentRow.sha256).where(
        AttachmentRow.message_pk.in_(ids), AttachmentRow.stored.is_(True))).scalars())
    counts.messages += execute_update(session, update(Message).where(
        Message.id.in_(ids), or_(Message.text.is_not(None), Message.subject != "",
                                 Message.sender_name.is_not(None))).values(
        text=None, subject="", sender_name=None, urls=[]))
    counts.reported_targets += execute_update(session, delete(MessageTarget).where(
        MessageTarget.message_pk.in_(ids)))
    counts.attachments += execute_update(session, update(AttachmentRow).where(
        AttachmentRow.message_pk.in_(ids),
        or_(AttachmentRow.stored.is_(True), AttachmentRow.filename != "")).values(
        stored=False, filename=""))


def _replace_addresses(work: _Erasure) -> None:
    """The address columns: requester, participants, senders, envelope senders."""
    session, address, placeholder = work.session, work.address, work.placeholder
    statements = (
        ("tickets", update(Ticket).where(func.lower(Ticket.requester) == address).values(
            requester=placeholder, requester_name=None)),
        ("participants", update(Participant).where(
            func.lower(Participant.address) == address).values(address=placeholder, name=None)),
        ("messages", update(Message).where(func.lower(Message.sender) == address).values(
            sender=placeholder, sender_name=None)),
        ("inbox", update(InboxItem).where(func.lower(InboxItem.mail_from) == address).values(
            mail_from=placeholder)),
    )
    for table, stmt in statements:
        changed = execute_update(session, stmt)
        work.result.addresses += changed
        if table == "participants":
            work.result.counts.participants += changed


def _scrub_messages(work: _Erasure) -> None:
    """Their address in recipients, texts and subjects of the messages of their cases,
    and in the recipients of any message."""
    stmt = select(Message).where(or_(Message.ticket_id.in_(work.holdings.tickets),
                                     _mentions(Message.recipients, work.address)))
    for message in work.session.execute(stmt).scalars():
        recipients = work.scrub(dict(message.recipients or {}))
        text, subject = work.scrub(message.text), work.scrub(message.subject)
        if (recipients, text, subject) != (message.recipients, message.text, message.subject):
            message.recipients, message.text, message.subject = recipients, text, subject
            work.result.addresses += 1


def _scrub_inbox(work: _Erasure) -> None:
    """Their address in the envelope recipients and errors of inbox rows."""
    stmt = select(InboxItem).options(defer(InboxItem.raw)).where(or_(
        _mentions(InboxItem.rcpt_to, work.address), _mentions(InboxItem.error, work.address)))
    for item in work.session.execute(stmt).scalars():
        rcpt_to, error = work.scrub(list(item.rcpt_to or [])), work.scrub(item.error)
        if (rcpt_to, error) != (item.rcpt_to, item.error):
            item.rcpt_to, item.error = rcpt_to, error
            work.result.addresses += 1


def _scrub_events(work: _Erasure) -> None:
    stmt = select(Event).where(or_(Event.ticket_id.in_(work.holdings.tickets),
                                   func.lower(Event.actor) == work.address,
                                   _mentions(Event.detail, work.address)))
    for event in work.session.execute(stmt).scalars():
        actor, detail = work.scrub(event.actor), work.scrub(dict(event.detail or {}))
        if (actor, detail) != (event.actor, event.detail):
            event.actor, event.detail = actor, detail
            work.result.counts.events += 1


def _record(work: _Erasure, actor: str) -> None:
    result, session = work.result, work.session
    for ticket_id in work.holdings.tickets:
        relation = "requester" if ticket_id in work.holdings.requester_tickets else "participant"
        record_event(session, action="requester.erased", actor=actor, at=work.now,
                     ticket_id=ticket_id, placeholder=result.placeholder,
                     fingerprint=result.fingerprint, relation=relation)
    record_event(session, action="requester.erased", actor=actor, at=work.now,
                 placeholder=result.placeholder, fingerprint=result.fingerprint,
                 tickets=len(work.holdings.tickets), loose=result.loose,
                 **asdict(result.counts))


def _erase_files(settings: Settings, work: _Erasure) -> None:
    """Sent mail files about them and exports about them under var/exports."""
    sent = sweep_sent_mail(_sent_folders(settings), work.address, work.outgoing_ids)
    exports = delete_exports(settings.var_dir / EXPORTS_FOLDER, work.address)
    work.result.sent_files, work.result.exports = sent.deleted, exports.deleted
    work.result.left_behind = sent.left_behind + exports.left_behind


def _sent_folders(settings: Settings) -> list[Path]:
    """The file transport's folder, and var/outbox-sent (mail sent before a relay was
    configured)."""
    folders = [settings.sent_dir]
    try:
        transport = transport_from_url(settings.outbound_url)
    except ValueError:
        return folders
    if isinstance(transport, FileTransport):
        folders.insert(0, transport.directory)
    return folders


def _references(session: Session, ids: list[int]) -> list[str]:
    if not ids:
        return []
    rows = session.execute(select(Ticket.id, Ticket.reference).where(Ticket.id.in_(ids)))
    return [ref or f"#{tid}" for tid, ref in sorted(rows)]


def _mentions(column: Any, address: str) -> ColumnElement[bool]:
    """The column's text (JSON as written) contains ``address``, in any case."""
    return func.lower(cast(column, Text)).contains(address, autoescape=True)


def scrub_address(value: Any, address: str, placeholder: str) -> Any:
    """``value`` (str, list, dict, nested) with every ``address`` (any case) replaced;
    a longer address that contains it (``bigjo@school.example.org``) is left alone."""
    if isinstance(value, str):
        return _address_re(address).sub(placeholder, value)
    if isinstance(value, list):
        return [scrub_address(v, address, placeholder) for v in value]
    if isinstance(value, dict):
        return {k: scrub_address(v, address, placeholder) for k, v in value.items()}
    return value


def _names_in(value: Any, address: str) -> bool:
    """Whether ``value`` (str, list, dict, nested) names ``address``."""
    return scrub_address(value, address, "") != value


@functools.lru_cache(maxsize=8)
def _address_re(address: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w.!#$%&'*+/=?^`{|}~-])" + re.escape(address)
                      + r"(?![\w-]|\.[\w-])", re.IGNORECASE)
