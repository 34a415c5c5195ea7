"""Safeguarding rules (SPEC section 8): what must never be forwarded.

Illegal content (child sexual abuse material) is never forwarded: while a
ticket is in the ``illegal_images`` category or flagged ``illegal``, every
outgoing mail goes without attachments and says how many were withheld.
Dangerous file types (executables, scripts) are stored but never forwarded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.mailtypes import StoredFile
from mailroom.store.models import AttachmentRow, Message, Ticket

if TYPE_CHECKING:
    from mailroom.app import App

ILLEGAL_CATEGORY = "illegal_images"
ILLEGAL_FLAG = "illegal"

DANGEROUS_EXTENSIONS = frozenset({
    "exe", "com", "scr", "pif", "bat", "cmd", "msi", "msp", "dll", "cpl", "jar", "js", "jse",
    "vbs", "vbe", "wsf", "wsh", "ps1", "psm1", "hta", "lnk", "reg", "sh", "bash", "py", "pl",
    "apk", "app", "dmg", "iso", "img", "vhd", "xll", "docm", "xlsm", "pptm", "scf", "inf",
})
DANGEROUS_TYPES = frozenset({
    "application/x-msdownload", "application/x-dosexec", "application/x-executable",
    "application/x-msdos-program", "application/x-sh", "application/x-shellscript",
    "application/javascript", "text/javascript", "application/x-ms-shortcut",
    "application/hta", "application/x-msi", "application/java-archive",
    "application/vnd.android.package-archive",
})


def is_illegal_case(ticket: Ticket) -> bool:
    return ticket.category == ILLEGAL_CATEGORY or ILLEGAL_FLAG in (ticket.flags or [])


def is_dangerous(filename: str, content_type: str) -> bool:
    suffix = PurePosixPath(filename.lower()).suffix.lstrip(".")
    return suffix in DANGEROUS_EXTENSIONS or content_type.lower() in DANGEROUS_TYPES


def matches_keywords(text: str, keywords: Sequence[str]) -> list[str]:
    """The configured keywords that occur in ``text`` as whole words."""
    lowered = text.lower()
    return [k for k in keywords if k and re.search(rf"(?<!\w){re.escape(k)}(?!\w)", lowered)]


def outgoing_attachments(
    app: App, ticket: Ticket, message: Message
) -> tuple[list[StoredFile], int, str | None]:
    """The attachments of ``message`` that may be forwarded, and how many were withheld.

    The files go by reference; :func:`may_send_files` is asked again when the
    mail is sent, so a case flagged illegal in between sends nothing.
    """
    rows = list(message.attachments)
    if not rows:
        return [], 0, None
    if is_illegal_case(ticket):
        return [], len(rows), "the case may involve illegal images, which are never forwarded"
    allowed, reasons = [], set()
    for row in rows:
        if is_dangerous(row.filename, row.content_type):
            reasons.add("files that could run programs are never forwarded")
        elif not row.stored or not app.blobs.exists(row.sha256):
            reasons.add("some files were not kept (only their fingerprints are held)")
        else:
            allowed.append(StoredFile(row.filename, row.content_type, row.sha256, row.size))
    withheld = len(rows) - len(allowed)
    return allowed, withheld, ("; ".join(sorted(reasons)) if withheld else None)


def may_send_files(ticket: Ticket | None) -> bool:
    """At send time: files queued with a mail may still go (the case is not illegal)."""
    return ticket is None or not is_illegal_case(ticket)


def keep_only_hashes(app: App, session: Session, ticket: Ticket) -> int:
    """When the settings refuse to keep illegal content: delete the bytes of the case's
    attachments (the hashes stay), unless another case still holds the same file.
    Returns how many rows changed."""
    if app.settings.store_illegal_attachments or not is_illegal_case(ticket):
        return 0
    rows = session.execute(
        select(AttachmentRow).join(Message, AttachmentRow.message_pk == Message.id)
        .where(Message.ticket_id == ticket.id, AttachmentRow.stored.is_(True))
    ).scalars().all()
    for row in rows:
        row.stored = False
    session.flush()
    for sha in {row.sha256 for row in rows}:
        still_used = session.execute(select(AttachmentRow.id).where(
            AttachmentRow.sha256 == sha, AttachmentRow.stored.is_(True)).limit(1)).first()
        if still_used is None:
            app.blobs.delete(sha)
    return len(rows)
