"""A message's files, stored under the safeguarding rules: the attachments of mail (the
pipeline) and the files a practitioner attaches to a reply written in the staff
console. Both go through :func:`store_attachments`, so a file is kept, or kept as its
hashes only, by the same rules whichever way it came, and the relay
(:func:`mailroom.cases.practitioner.relay`) sends the same files to the same people.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Sequence

from sqlalchemy.orm import Session

from mailroom.app import Clock
from mailroom.cases.safeguarding import (
    flag_listed_files,
    is_illegal_case,
    settle_case_files,
    withheld_name,
)
from mailroom.intake.filenames import sanitise_filename
from mailroom.mailtypes import Attachment
from mailroom.settings import Settings
from mailroom.store.blobs import BlobStore
from mailroom.store.hashes import listed_hashes
from mailroom.store.models import AttachmentRow, Message, Ticket

_CONTENT_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+")
_TYPES = mimetypes.MimeTypes(filenames=())  # the built-in table: the host's may not change it


def listed_among(session: Session, files: Sequence[Attachment]) -> set[str]:
    """The SHA-256 of each file whose SHA-256 or MD5 is on the hash blocklist."""
    if not files:
        return set()
    hits = listed_hashes(session, [a.sha256 for a in files], [a.md5 for a in files])
    return {a.sha256 for a in files if a.sha256 in hits or a.md5 in hits}


def store_attachments(settings: Settings, blobs: BlobStore, session: Session, message: Message,
                      ticket: Ticket | None, files: Sequence[Attachment], *, clock: Clock,
                      listed: set[str] | None = None) -> None:
    """Bytes into the content-addressed store, metadata (SHA-256 and MD5) on the message.

    Only the hash, size and type are kept of what is too large and, unless the
    settings keep them, of a file the safeguarding rules withhold as illegal (a
    listed one, or any file of an illegal case), whose name goes too. Then the
    files of an illegal case are settled (listed, other cases holding them flagged, each
    change recorded at the ``clock``'s time).
    ``listed``: what :func:`listed_among` answered for these files in this
    transaction, when the caller asked already.
    """
    if not files:
        return
    listed = listed if listed is not None else listed_among(session, files)
    illegal_case = ticket is not None and is_illegal_case(ticket)
    for attachment in files:
        illegal = illegal_case or attachment.sha256 in listed
        hash_only = illegal and not settings.store_illegal_attachments
        keep = not (hash_only or attachment.size > settings.max_attachment_size)
        sha = blobs.put(attachment.data) if keep else attachment.sha256
        message.attachments.append(AttachmentRow(
            filename=withheld_name(sha, attachment.content_type) if hash_only
            else attachment.filename,
            content_type=attachment.content_type, size=attachment.size, sha256=sha,
            md5=attachment.md5, stored=keep, inline=attachment.inline,
        ))
        if not keep:
            reason = "illegal-content" if hash_only else "too-large"
            message.flags = sorted({*message.flags, f"attachment-hash-only:{reason}"})
    if ticket is not None and listed and not illegal_case:
        session.flush()
        flag_listed_files(settings, blobs, session, ticket, listed, clock=clock,
                          message_pk=message.id)
    elif illegal_case and ticket is not None:
        settle_case_files(settings, blobs, session, ticket, clock=clock, message_pk=message.id)


def uploaded_file(name: str | None, declared_type: str | None, data: bytes) -> Attachment:
    """A file uploaded in the console, as an attachment of mail would be: its name made
    safe to show (:func:`~mailroom.intake.filenames.sanitise_filename`), its type the
    one the browser declared when it is a well-formed one, else guessed from the name."""
    content_type = (declared_type or "").split(";", 1)[0].strip().lower()
    if not _CONTENT_TYPE.fullmatch(content_type) or content_type == "application/octet-stream":
        guessed, _ = _TYPES.guess_type(name or "", strict=False)
        content_type = guessed or content_type or "application/octet-stream"
        if not _CONTENT_TYPE.fullmatch(content_type):
            content_type = "application/octet-stream"
    return Attachment(sanitise_filename(name, content_type), content_type, data)
